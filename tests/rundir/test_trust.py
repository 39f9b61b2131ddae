"""Resume unpickles a run's saved state: a run this user did not create here is refused unless trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rundir import MANIFEST, TUNE_DIR, RunWriter
from rundir.trust import OWNER, is_mine, mark_as_mine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # this test's user key, not the real one


def _received_run(tmp_path: Path) -> Path:
    manifest = {"name": "got", "spec": {"name": "got"}, "created_at": "2026-12-01T00:00:00+00:00"}
    run_dir = tmp_path / "got"
    RunWriter(run_dir).write_manifest(manifest)
    (run_dir / TUNE_DIR).mkdir()
    (run_dir / TUNE_DIR / "tuner.pkl").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")  # what a pickle can do
    return run_dir


def test_a_run_is_mine_only_with_a_mark_made_under_my_key(tmp_path: Path) -> None:
    run_dir = _received_run(tmp_path)
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert not is_mine(run_dir, manifest)  # no mark
    (run_dir / OWNER).write_text("0" * 64 + "\n")
    assert not is_mine(run_dir, manifest)  # a forged mark
    mark_as_mine(run_dir, manifest)
    assert is_mine(run_dir, manifest)
    assert not is_mine(run_dir, {**manifest, "name": "other"})  # a mark copied onto another run
    assert oct((tmp_path / "config" / "wattsweep" / "run-key").stat().st_mode & 0o777) == "0o600"


def test_resume_refuses_a_received_run_before_unpickling_anything(tmp_path: Path) -> None:
    run_dir = _received_run(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    r = subprocess.run(
        [sys.executable, "-m", "orchestrator", "resume", str(run_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "RUN_DIR" in r.stderr and "--trust" in r.stderr, r.stderr[-2000:]
    assert "pwned" not in r.stdout + r.stderr


def test_trust_lets_a_received_run_past_the_owner_check(tmp_path: Path) -> None:
    run_dir = _received_run(tmp_path)
    RunWriter(run_dir).update_manifest(status="finished")  # so that, once trusted, resume stops before Ray and Tune
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def resume(*flags: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "orchestrator", "resume", str(run_dir), *flags]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert resume().returncode == 2
    trusted = resume("--trust")
    assert trusted.returncode == 0 and "nothing to resume" in trusted.stdout, trusted.stderr[-2000:]
