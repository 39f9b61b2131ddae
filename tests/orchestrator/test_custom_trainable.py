"""A user's own trainable, swept end to end on a real local Ray cluster through both ways in.

``tests/fixtures/custom_trainable.py`` is written as a user would write one (an MLP on digits, keys the
built-ins do not have, its own metric ``f1``). Two real sweeps: one from a spec file through the CLI with
MO-ASHA stopping trials on ``f1`` and energy; one through ``wattsweep.sweep`` where trials break the
contract in each way a user's code can, and the sweep goes on.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import wattsweep
from rundir import read_run

ROOT = Path(__file__).resolve().parents[2]
REF = "tests.fixtures.custom_trainable:train"

SPEC = f"""
name: custom_mlp
trainable: {REF}
cost: tests.fixtures.custom_trainable:cost
fixed: {{epochs: 4}}
space:
  hidden: {{kind: int, low: 8, high: 64, step: 8}}
  act: {{kind: choice, values: [relu, tanh]}}
  lr: {{kind: loguniform, low: 1.0e-3, high: 3.0e-2}}
objectives:
  - {{metric: f1, direction: max}}
  - {{metric: energy_j, direction: min}}
sampler: {{kind: random, seed: 0, cheap_start: 2}}
scheduler: {{kind: moasha, grace_period: 1, reduction_factor: 2}}
num_samples: 8
"""


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def spec_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("custom")
    spec = tmp / "spec.yaml"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(spec), "--storage", str(tmp / "runs"), "--name", "c"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return tmp / "runs" / "c", r


@pytest.mark.slow
def test_spec_sweep_of_a_custom_trainable(spec_sweep: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    run_dir, r = spec_sweep
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "cheap start is off" not in r.stdout  # the spec gives a cost
    trials = _rows(run_dir / "report" / "trials.csv")
    assert len(trials) == 8
    states = {t["state"] for t in trials}
    # MO-ASHA ranks on f1 and energy: with eta 2 over 8 trials, some are stopped at a rung, some complete
    assert "stopped" in states and "complete" in states, states
    for t in trials:
        assert t["state"] != "failed", t["error"]
        assert int(t["epochs_run"]) == 4 if t["state"] == "complete" else int(t["epochs_run"]) < 4
        for key in ("hidden", "act", "lr", "f1", "params", "flops", "energy_j"):
            assert t[key] != "", (key, t)
    pareto = _rows(run_dir / "report" / "pareto.csv")
    assert pareto and {"hidden", "act", "lr", "f1"} <= set(pareto[0])
    assert "depth" not in trials[0] and "shortcut" not in trials[0]  # no built-in column in a custom run
    md = (run_dir / "report" / "report.md").read_text()
    assert "hidden" in md and "f1" in md
    manifest = json.loads((run_dir / "wattsweep.json").read_text())
    assert manifest["trainable"] == REF
    # the study agrees with the run directory, trial by trial
    study = optuna.load_study(study_name="c", storage=wattsweep.SweepResult(run_dir, run_dir / "report").study._storage)
    by_tune = {t.user_attrs["tune_trial_id"]: t.state.name for t in study.trials}
    expected = {"complete": "COMPLETE", "stopped": "PRUNED", "failed": "FAIL"}
    assert by_tune == {t["trial_id"]: expected[t["state"]] for t in trials}
    assert [o.name for o in study.directions] == ["MAXIMIZE", "MINIMIZE"]


def test_python_api_sweep_where_trials_break_the_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fixtures.custom_trainable import train

    result = wattsweep.sweep(
        train,
        space={"mode": wattsweep.choice(["ok", "raise", "missing"])},
        fixed={"epochs": 3, "hidden": 16, "act": "relu", "lr": 0.01},
        objectives={"f1": "max", "energy_j": "min"},
        sampler={"kind": "random", "seed": 10, "cheap_start": 2},  # why seed 10: 4 draws hold every mode
        num_samples=4,
        storage=tmp_path,
        name="api",
    )
    out = capsys.readouterr().out
    assert "cheap start is off" in out  # no cost given: said, and the sweep runs on
    trials = result.trials.set_index("trial_id")
    assert len(trials) == 4
    assert set(trials["mode"]) == {"ok", "raise", "missing"}
    # (the other ways to break the contract, without Ray: tests/trainables/test_contract.py)
    expected_error = {
        "raise": "ValueError: boom from user code at epoch 2 (resumed from epoch 1)",  # retried from its checkpoint
        "missing": "objective 'f1' was never reported; the trial reported: accuracy, effective_flops",
    }
    for tid, t in trials.iterrows():
        if t["mode"] == "ok":
            assert t["state"] == "complete", t["error"]
            continue
        assert t["state"] == "failed", (tid, t["mode"])
        assert expected_error[t["mode"]] in str(t["error"]), (t["mode"], t["error"])
        if t["mode"] == "raise":  # the user's traceback is kept with the trial: their own frame in it
            assert 'custom_trainable.py", line' in str(t["error"])
    assert len(result.front) >= 1 and set(result.front["mode"]) == {"ok"}
    states = {t.user_attrs["tune_trial_id"]: t.state.name for t in result.study.trials}
    assert states == {tid: "COMPLETE" if t["state"] == "complete" else "FAIL" for tid, t in trials.iterrows()}
    run = read_run(result.run_dir)
    assert run.manifest["trainable"].endswith("custom_trainable:train")
    assert (result.report_dir / "index.html").is_file()
