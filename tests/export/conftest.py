"""Two real sweeps on digits, on a real local Ray cluster, shared by the export tests.

``builtin``: the built-in ResNet with structured and unstructured pruning (4 trials, 2 epochs). ``custom``: the
user trainable of ``digits_mlp.py``: one trial hands its model over, one does not, one stops early.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BUILTIN = """
name: export_builtin
dataset: {name: digits}
fixed: {model: resnet, depth: 8, epochs: 2, optimizer: adam, lr_decay: cosine, batch_size: 64, prune_every: 1}
space:
  width: {kind: choice, values: [4, 8], default: 8}
  lr: {kind: loguniform, low: 1.0e-3, high: 1.0e-2, default: 3.0e-3}
  prune_ratio: {kind: uniform, low: 0.2, high: 0.5, default: 0.3}
  prune_method: {kind: choice, values: [structured, unstructured], default: structured}
sampler: {kind: random, seed: 3}
num_samples: 4
"""

CUSTOM = """
name: export_custom
trainable: tests.export.digits_mlp:train
dataset: {name: digits}
fixed: {epochs: 2, hidden: 16}
space:
  variant: {kind: choice, values: [watched, unwatched, stops]}
  lr: {kind: loguniform, low: 3.0e-3, high: 1.0e-2}
sampler: {kind: random, seed: SEED}
num_samples: 5
"""


def run_cli(*args: str, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m orchestrator ARGS`` from the repository root, as a user runs it."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    cmd = [sys.executable, "-m", "orchestrator", *args]
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)


def _sweep(tmp: Path, spec_text: str, name: str) -> Path:
    spec = tmp / f"{name}.yaml"
    spec.write_text(spec_text)
    r = run_cli("sweep", str(spec), "--storage", str(tmp / "runs"), "--name", name)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return tmp / "runs" / name


@pytest.fixture(scope="session")
def builtin_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sweep(tmp_path_factory.mktemp("builtin"), BUILTIN, "b")


@pytest.fixture(scope="session")
def custom_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sweep(tmp_path_factory.mktemp("custom"), CUSTOM.replace("SEED", "2"), "c")
