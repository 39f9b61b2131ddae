"""The run directory as a contract of its own: its package imports neither side, and its manifest carries every
setting a resumed sweep needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.manifest import manifest
from orchestrator.sweep import load_run_spec
from rundir import MANIFEST, TUNE_DIR, RunWriter
from rundir.manifest import ManifestError, RunManifest
from search_spaces import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "search_spaces" / "digits_resnet.yaml"


def test_the_run_directory_package_imports_neither_the_sweep_nor_the_report() -> None:
    code = (
        "import sys, rundir, rundir.manifest; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'orchestrator', 'reports', 'ray', 'torch', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _run_dir(tmp_path: Path, m: RunManifest | dict) -> Path:
    run_dir = tmp_path / "run"
    RunWriter(run_dir).write_manifest(m)
    (run_dir / TUNE_DIR).mkdir()
    (run_dir / TUNE_DIR / "tuner.pkl").write_bytes(b"")  # load_run_spec checks that Tune's state is there
    return run_dir


def test_resume_restores_every_cli_override(tmp_path: Path) -> None:
    spec = load_spec(SPEC).with_overrides(
        name="r1", num_samples=5, max_epochs=3, seed=7, energy_budget=250.0, tensorboard=True
    )
    run_dir = _run_dir(tmp_path, manifest(spec, tmp_path / "run"))
    back = load_run_spec(run_dir)
    assert (back.name, back.num_samples, back.max_epochs, back.sampler.seed) == ("r1", 5, 3, 7)
    assert back.energy.budget_j == 250.0 and back.tensorboard is True  # lost on resume before the overrides
    assert back.overrides == spec.overrides


def test_a_manifest_from_before_the_overrides_still_resumes(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    old = {
        "name": "old",
        "spec": dict(spec.raw),
        "num_samples": 4,
        "max_epochs": 2,
        "sampler": {"kind": "random", "seed": 3},
        "status": "running",
    }
    back = load_run_spec(_run_dir(tmp_path, old))
    assert (back.name, back.num_samples, back.max_epochs, back.sampler.seed) == ("old", 4, 2, 3)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ([1, 2], "not a JSON object"),
        ({"spec": {}}, "name"),
        ({"name": "x", "spec": "nope"}, "spec"),
        ({"name": "x", "spec": {}, "status": "exploded"}, "status"),
        ({"name": "x", "spec": {}, "overrides": [1]}, "overrides"),
    ],
)
def test_a_malformed_manifest_is_named(raw: object, says: str) -> None:
    with pytest.raises(ManifestError, match=says):
        RunManifest.from_dict(raw)


def test_a_manifest_round_trips_with_its_facts(tmp_path: Path) -> None:
    m = RunManifest(name="n", spec={"name": "n"}, overrides={"seed": 1}, facts={"slots": 2, "host": {"cpus": 2}})
    RunWriter(tmp_path).write_manifest(m.with_changes(status="finished", finished_at="t", resources={"cpu": 1}))
    back = RunManifest.from_dict(json.loads((tmp_path / MANIFEST).read_text()))
    assert back.status == "finished" and back.facts["resources"] == {"cpu": 1} and back.facts["slots"] == 2
    assert back.overrides == {"seed": 1}
