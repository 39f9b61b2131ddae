"""The manifest's status tells the truth after any exit path of the driver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# a user's cost function that raises: the sweep fails at run time, after the run directory was written
SPEC = """
name: failing
trainable: tests.fixtures.custom_trainable:train
cost: tests.fixtures.custom_trainable:cost_that_raises
fixed: {epochs: 2}
space:
  hidden: {kind: int, low: 8, high: 16, step: 8}
  act: {kind: choice, values: [relu]}
  lr: {kind: loguniform, low: 1.0e-3, high: 3.0e-2}
sampler: {kind: random, seed: 0, cheap_start: 2}
num_samples: 2
"""


def test_a_sweep_that_fails_says_failed_not_running(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(spec), "--storage", str(tmp_path / "runs"), "--name", "f"]
    r = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 1 and "cost model not fitted" in r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    manifest = json.loads((tmp_path / "runs" / "f" / "wattsweep.json").read_text())
    assert manifest["status"] == "failed"  # it stayed "running" for ever before
