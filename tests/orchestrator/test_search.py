"""The cheap start: which configurations it plans, and that a real Optuna study runs them first."""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

import optuna
import pytest

from orchestrator.search import CheapStartSampler, SearchSpaceFn, cheap_start_plan, cost_function, make_sampler
from search_spaces import SweepSpec, parse_spec
from trainables.cost import training_cost

DIGITS = ((1, 8, 8), 10)


def _spec(cheap_start: int, candidates: int = 4, kind: str = "random", num_samples: int = 12) -> SweepSpec:
    return parse_spec(
        {
            "name": "cheap",
            "fixed": {"model": "resnet", "epochs": 4},
            "space": {
                "depth": {"kind": "choice", "values": [8, 14, 20]},
                "width": {"kind": "choice", "values": [8, 32]},
                "lr": {"kind": "loguniform", "low": 1e-4, "high": 1e-1},
                "prune_ratio": {"kind": "uniform", "low": 0.0, "high": 0.8},
            },
            "sampler": {"kind": kind, "seed": 7, "cheap_start": cheap_start, "cheap_start_candidates": candidates},
            "num_samples": num_samples,
        }
    )


def _cost(spec: SweepSpec, params: dict[str, Any]) -> float:
    return training_cost({**spec.fixed, **params}, *DIGITS)


def _run(sampler: optuna.samplers.BaseSampler, spec: SweepSpec, n: int) -> list[dict[str, Any]]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    fn, out = SearchSpaceFn(spec.space, spec.fixed), []
    for i in range(n):
        trial = study.ask()
        fn(trial)
        out.append(dict(trial.params))
        study.tell(trial, [0.5 + 0.01 * i, 10.0 - i])
    return out


def test_many_candidates_pick_the_cheapest_architecture_and_leave_the_rest_random() -> None:
    # with 64 draws per trial, each planned trial is the one cheapest architecture of the space (depth 8,
    # width 8: a draw has it with probability 1/6, so 64 draws miss it with probability 1e-5, and the
    # seeded plan is fixed); what does not change the cost, lr and prune_ratio, still varies
    spec = _spec(cheap_start=5, candidates=64)
    plan = cheap_start_plan(spec, cost_function(spec, DIGITS))
    assert len(plan) == 5
    assert all((p["depth"], p["width"]) == (8, 8) for p in plan)
    assert len({p["lr"] for p in plan}) == 5 and len({p["prune_ratio"] for p in plan}) == 5
    assert all(1e-4 <= p["lr"] <= 1e-1 and 0.0 <= p["prune_ratio"] <= 0.8 for p in plan)


def test_few_candidates_bias_the_start_to_cheap_networks_without_fixing_it() -> None:
    spec = _spec(cheap_start=200, candidates=2, num_samples=200)
    plan = cheap_start_plan(spec, cost_function(spec, DIGITS))
    archs = [(p["depth"], p["width"]) for p in plan]
    # the cheaper of 2 draws: depth 8 width 8 with probability 1 - (5/6)^2 = 0.31 (uniform draws: 1/6);
    # the costliest architecture only when both draws are it, 1/36
    assert 0.2 < archs.count((8, 8)) / len(archs) < 0.42
    assert archs.count((20, 32)) / len(archs) < 0.08
    assert len(set(archs)) >= 4
    # and each is the cheaper of the two draws it came from: never costlier than the mean draw
    mean_cost = sum(_cost(spec, {"depth": d, "width": w}) for d in (8, 14, 20) for w in (8, 32)) / 6
    assert sum(_cost(spec, p) for p in plan) / len(plan) < mean_cost


def test_a_study_runs_the_plan_first_then_the_base_samplers_own_draws() -> None:
    spec = _spec(cheap_start=3)
    plan = cheap_start_plan(spec, cost_function(spec, DIGITS))
    got = _run(make_sampler(spec, DIGITS), spec, 8)
    assert got[:3] == plan
    # the base sampler did not draw for the planned trials, so what follows is what it alone would give
    plain = _run(make_sampler(replace(spec, sampler=replace(spec.sampler, cheap_start=0))), spec, 5)
    assert got[3:] == plain


def test_the_plan_is_seeded_and_survives_pickling() -> None:
    spec = _spec(cheap_start=4)
    sampler = make_sampler(spec, DIGITS)
    assert isinstance(sampler, CheapStartSampler)
    assert sampler.plan == cheap_start_plan(spec, cost_function(spec, DIGITS))  # same seed, same plan
    # why: Tune pickles the searcher, sampler included, into its experiment state for resume
    restored = pickle.loads(pickle.dumps(sampler))
    assert restored.plan == sampler.plan
    other = cheap_start_plan(replace(spec, sampler=replace(spec.sampler, seed=8)), cost_function(spec, DIGITS))
    assert other != sampler.plan


@pytest.mark.parametrize("kind", ["random", "tpe", "nsga2"])
def test_every_sampler_kind_survives_pickling_and_samples_after_it(kind: str) -> None:
    # why: Tune pickles the searcher, sampler included, before the first trial and into every snapshot; optuna
    # 5.1's NSGA-II holds a threading lock, and an unpicklable sampler failed every sweep before it started
    spec = _spec(cheap_start=2, kind=kind)
    sampler = make_sampler(spec, DIGITS)
    _run(sampler, spec, 6)  # why sampled first: state a sampler builds while it runs must pickle too
    restored = pickle.loads(pickle.dumps(sampler))
    assert len(_run(restored, spec, 6)) == 6


@pytest.mark.parametrize("kind", ["tpe", "nsga2"])
def test_learning_samplers_run_behind_the_cheap_start(kind: str) -> None:
    spec = _spec(cheap_start=2, kind=kind)
    got = _run(make_sampler(spec, DIGITS), spec, 10)
    assert got[:2] == cheap_start_plan(spec, cost_function(spec, DIGITS))
    assert len(got) == 10


def test_the_plan_never_runs_longer_than_the_sweep_and_needs_the_data_shape() -> None:
    spec = _spec(cheap_start=50, num_samples=6)
    assert len(cheap_start_plan(spec, cost_function(spec, DIGITS))) == 6
    with pytest.raises(ValueError, match="cheap_start"):
        make_sampler(spec)
    assert not isinstance(make_sampler(_spec(cheap_start=0)), CheapStartSampler)
