"""The trainable contract without Ray: what ``ctx.report`` adds, checks and checkpoints, and each way a
user's trainable can break it (the sweep-level consequences: tests/orchestrator/test_custom_trainable.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from tests.fixtures.custom_trainable import train
from trainables import metrics as M
from trainables.contract import Context, TrialContractError, TrialPlan, run_contract

CONFIG = {"hidden": 16, "act": "relu", "lr": 0.01, "epochs": 3}
PLAN = TrialPlan(trainable=train, objectives=(("f1", "max"), (M.ENERGY_J, "min")))


def _run(config: dict[str, Any], plan: TrialPlan = PLAN, **kw: Any) -> list[tuple[dict[str, Any], Any]]:
    out: list[tuple[dict[str, Any], Any]] = []
    run_contract(train, config, plan, lambda m, s: out.append((m, s)), **kw)
    return out


def test_report_adds_the_contract_and_watch_metrics() -> None:
    reports = _run(CONFIG)
    assert [m[M.EPOCH] for m, _ in reports] == [1, 2, 3]
    energies = [m[M.ENERGY_J] for m, _ in reports]
    assert 0 < energies[0] < energies[1] < energies[2]  # cumulative, never 0 J
    for m, state in reports:
        assert m[M.BUDGET_EPOCHS] == 3 and m[M.ENERGY_SOURCE] and isinstance(m[M.ENERGY_ESTIMATED], bool)
        assert m[M.PARAMS] == 64 * 16 + 16 + 16 * 10 + 10  # handed over with ctx.watch
        assert m[M.FLOPS] == m[M.EFFECTIVE_FLOPS] == 2 * (64 * 16 + 16 * 10)
        assert 0 <= m["f1"] <= 1  # the user's own metric passes through
        # the last epoch's checkpoint also holds the watched model whole, for export (tests/export)
        extra = {"final_model"} if m[M.EPOCH] == 3 else set()
        assert set(state) == {"wattsweep", "user", *extra} and set(state["user"]) == {"model", "opt"}
    final_model = reports[-1][1]["final_model"]
    assert isinstance(final_model["model"], torch.nn.Module) and final_model["example"].shape[0] == 1
    final = reports[-1][0]
    assert final[M.INFER_ENERGY_J_PER_1K] > 0 and final[M.LAYER_FLOPS] and final[M.ENERGY_PROVENANCE]
    assert M.INFER_ENERGY_J_PER_1K not in reports[0][0]  # last epoch only


def test_resume_hands_back_the_state_and_continues_the_counters() -> None:
    first = _run(CONFIG)
    resumed = _run(CONFIG, resume=first[0][1])  # as Tune would, from the epoch-1 checkpoint
    assert [m[M.EPOCH] for m, _ in resumed] == [2, 3]
    assert resumed[0][0][M.ENERGY_J] > first[0][0][M.ENERGY_J]  # energy is cumulative across attempts
    assert resumed[-1][0][M.TIME_S] > first[0][0][M.TIME_S]


def test_max_epochs_caps_the_budget() -> None:
    reports = _run(CONFIG, TrialPlan(trainable=train, objectives=PLAN.objectives, max_epochs=2))
    assert [m[M.EPOCH] for m, _ in reports] == [1, 2] and reports[-1][0][M.BUDGET_EPOCHS] == 2


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("missing", "objective 'f1' was never reported; the trial reported: accuracy, effective_flops, flops, params"),
        ("nan", "objective 'f1' is not a finite number: nan"),
        ("silent", "the trainable returned without reporting any epoch"),
        ("raise", "boom from user code at epoch 2"),
    ],
)
def test_each_way_to_break_the_contract_fails_the_trial_with_a_message(mode: str, message: str) -> None:
    with pytest.raises((TrialContractError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")):
        _run({**CONFIG, "mode": mode})


def test_a_watched_objective_missing_says_to_hand_over_the_model() -> None:
    def no_watch(config: dict[str, Any], ctx: Context) -> None:
        ctx.report({"accuracy": 0.5})

    plan = TrialPlan(trainable=no_watch, objectives=((M.ACCURACY, "max"), (M.FLOPS, "min")))
    with pytest.raises(TrialContractError, match=r"objective 'flops' was never reported \(hand over the model"):
        run_contract(no_watch, {"epochs": 1}, plan, lambda m, s: None)


@pytest.mark.parametrize("name", [M.ENERGY_J, M.EPOCH, M.TIME_S])
def test_measured_names_are_refused(name: str) -> None:
    def cheat(config: dict[str, Any], ctx: Context) -> None:
        ctx.report({"accuracy": 1.0, name: 0.0})

    with pytest.raises(TrialContractError, match=f"metrics \\['{name}'\\] are measured by wattsweep"):
        run_contract(cheat, {"epochs": 1}, TrialPlan(trainable=cheat), lambda m, s: None)


def test_reporting_past_the_budget_is_refused() -> None:
    def chatty(config: dict[str, Any], ctx: Context) -> None:
        for _ in range(3):
            ctx.report({"accuracy": 1.0})

    with pytest.raises(TrialContractError, match="after the trial's last epoch"):
        run_contract(chatty, {"epochs": 2}, TrialPlan(trainable=chatty), lambda m, s: None)


def test_seed_and_device_and_the_meter_is_closed_after_an_error() -> None:
    seen: dict[str, Any] = {}

    def probe(config: dict[str, Any], ctx: Context) -> None:
        seen.update(seed=ctx.seed, device=ctx.device, draw=torch.rand(1).item(), meter=ctx._meter)
        raise RuntimeError("user bug")

    with pytest.raises(RuntimeError, match="user bug"):
        run_contract(probe, {"epochs": 1, "seed": 7, "device": "cpu"}, TrialPlan(trainable=probe), lambda m, s: None)
    torch.manual_seed(7)
    assert seen["seed"] == 7 and seen["device"] == torch.device("cpu")
    assert math.isclose(seen["draw"], torch.rand(1).item())  # torch seeded with the trial's seed
    meter = seen["meter"]
    assert meter.read() is meter.read()  # stopped by run_contract: read() returns the final reading, frozen
