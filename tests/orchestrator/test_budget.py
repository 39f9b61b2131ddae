"""The sweep's energy budget (`--energy-budget`), on a real local Ray cluster with real training on digits.

A 6-trial sweep gets a budget of 2 J: one ResNet-8 trial of 9 epochs spends about 12 J here (estimated
from CPU time), so the first two trials (2 slots) exhaust it within their first epochs. The searcher must
then launch nothing more, the running trials must stop at their next MO-ASHA rung (epochs 1 and 3) and the
report must be written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna

from rundir import optuna_storage, read_run

ROOT = Path(__file__).resolve().parents[2]
NUM_SAMPLES = 6
BUDGET_J = 2.0
RUNGS = (1, 3)  # grace period 1, reduction factor 3, 9 epochs

SPEC = """
name: budget_spec
dataset: {name: digits}
fixed: {model: resnet, depth: 8, width: 8, epochs: 9, optimizer: adam, batch_size: 64, prune_every: 3}
space:
  lr: {kind: loguniform, low: 1.0e-3, high: 1.0e-2, default: 3.0e-3}
sampler: {kind: random, seed: 0}
scheduler: {kind: moasha, grace_period: 1, reduction_factor: 3}
num_samples: 6
"""


def test_energy_budget_stops_launching_and_ends_running_trials_at_a_rung(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(spec), "--storage", str(tmp_path / "runs")]
    cmd += ["--name", "budget", "--energy-budget", str(BUDGET_J)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]

    run_dir = tmp_path / "runs" / "budget"
    run = read_run(run_dir)
    launched = [t for t in run.trials if t.epochs]
    assert 1 <= len(launched) < NUM_SAMPLES, [t.trial_id for t in run.trials]
    # every launched trial ended, none ran its 9 epochs, and each stopped at a rung
    assert all(t.state == "stopped" for t in launched), [(t.trial_id, t.state) for t in launched]
    assert all(int(t.final["epoch"]) in RUNGS for t in launched), [t.final["epoch"] for t in launched]
    spent = sum(float(t.final["energy_j"]) for t in launched)
    assert spent >= BUDGET_J
    assert json.loads((run_dir / "wattsweep.json").read_text())["status"] == "finished"
    assert (run_dir / "report" / "report.md").is_file()
    # Optuna knows them as pruned (ended before their budget), never as complete points
    study = optuna.load_study(study_name="budget", storage=optuna_storage(run_dir))
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(launched)
    assert optuna.trial.TrialState.COMPLETE not in states
    # without tensorboard in the spec or --tensorboard: Tune's result logs, no TensorBoard event files
    trial_dirs = [p for p in (run_dir / "tune").iterdir() if p.is_dir() and p.name.startswith("trial_")]
    assert trial_dirs and all((d / "result.json").is_file() for d in trial_dirs)
    assert not list((run_dir / "tune").rglob("events.out.tfevents.*"))
