"""The examples run by the commands the README gives (at smoke sizes), and the README's diff is the real one."""

from __future__ import annotations

import csv
import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUNE = ROOT / "examples" / "from_ray_tune" / "tune_version.py"
WATTSWEEP = ROOT / "examples" / "from_ray_tune" / "wattsweep_version.py"


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _trials(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "report" / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def readme_diff() -> str:
    """The diff between the two versions of the Ray Tune example, as the README shows it."""
    lines = difflib.unified_diff(
        TUNE.read_text().splitlines(keepends=True),
        WATTSWEEP.read_text().splitlines(keepends=True),
        "tune_version.py",
        "wattsweep_version.py",
    )
    return "".join(lines)


def test_readme_shows_the_real_diff_from_ray_tune() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"```diff\n{readme_diff()}```" in readme, "README's diff is stale: paste tests.test_examples.readme_diff()"


def _sweep(spec: str, tmp: Path, name: str, num_samples: int) -> list[dict[str, str]]:
    """The README's command for a spec example, at smoke size (2 epochs); the trials it recorded."""
    smoke = ["--num-samples", str(num_samples), "--max-epochs", "2", "--storage", str(tmp), "--name", name]
    _run(["-m", "orchestrator", "sweep", spec, *smoke], tmp)
    return _trials(tmp / name)


@pytest.mark.slow
def test_own_cnn_from_a_spec(tmp_path: Path) -> None:
    trials = _sweep("examples/digits_cnn/spec.yaml", tmp_path, "cnn", 3)
    assert len(trials) == 3 and any(t["state"] == "complete" for t in trials)
    assert {"channels", "kernel", "dropout", "lr", "flops"} <= set(trials[0])


@pytest.mark.slow
def test_torchvision_model_with_gradual_structured_pruning(tmp_path: Path) -> None:
    trials = _sweep("examples/torchvision_prune/spec.yaml", tmp_path, "tv", 2)
    pruned = [t for t in trials if t["state"] == "complete" and float(t["prune_ratio"]) > 0.1]
    assert pruned, trials  # the seeded sampler draws a pruning ratio above 0.1
    for t in pruned:
        assert float(t["effective_flops"]) < float(t["flops"]), t  # pruning removed compute
        assert float(t["sparsity"]) > 0


@pytest.mark.slow
def test_ray_tune_trainable_moved_to_wattsweep(tmp_path: Path) -> None:
    r = _run(
        [
            "-m",
            "examples.from_ray_tune.wattsweep_version",
            "--num-samples",
            "2",
            "--max-epochs",
            "2",
            "--storage",
            str(tmp_path),
        ],
        tmp_path,
    )
    assert "energy_j" in r.stdout  # the front it prints
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(_trials(run_dir)) == 2
