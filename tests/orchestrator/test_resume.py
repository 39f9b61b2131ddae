"""A driver that dies mid-sweep is survived by `resume`: nothing lost, nothing run twice."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna

from rundir import optuna_storage

ROOT = Path(__file__).resolve().parents[2]
SPEC = """
name: resume_spec
dataset: {name: digits}
fixed: {model: resnet, depth: 8, epochs: 8, prune_every: 2}
space:
  width: {kind: choice, values: [8, 16], default: 8}
  lr: {kind: loguniform, low: 1.0e-3, high: 1.0e-2, default: 3.0e-3}
sampler: {kind: nsga2, seed: 1, population_size: 4}
num_samples: 4
"""


def _states(run_dir: Path) -> dict[str, dict]:
    out = {}
    for f in (run_dir / "trials").glob("*/state.json"):
        with contextlib.suppress(OSError, json.JSONDecodeError):
            out[f.parent.name] = json.loads(f.read_text())
    return out


def _resume(run_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "orchestrator", "resume", str(run_dir)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _tree(run_dir: Path) -> dict[str, bytes]:
    return {str(f.relative_to(run_dir)): f.read_bytes() for f in sorted(run_dir.rglob("*")) if f.is_file()}


def _assert_resumed(run_dir: Path, complete_before: set[str]) -> dict[str, dict]:
    """Every trial asked for complete, each epoch recorded once; the trials that were complete before still are."""
    after = _states(run_dir)
    # a trial the dead driver started after Tune's last snapshot (written on Tune's own period, >= 10 s:
    # orchestrator.tune_driver) is never resumed: recorded as orphaned, the epochs it ran kept, another trial run
    # in its place
    orphans = {tid for tid, s in after.items() if s["state"] == "failed" and "orphaned" in (s["error"] or "")}
    for tid in orphans:
        epochs_file = run_dir / "trials" / tid / "epochs.jsonl"
        kept = epochs_file.read_text().splitlines() if epochs_file.exists() else []
        assert len(kept) == after[tid]["epochs_run"] < 8, (tid, after[tid])
    after = {tid: s for tid, s in after.items() if tid not in orphans}
    assert len(after) == 4, after
    assert all(s["state"] == "complete" and s["epochs_run"] == 8 for s in after.values()), after
    assert complete_before <= set(after)
    for tid in after:
        epochs = [json.loads(x)["epoch"] for x in (run_dir / "trials" / tid / "epochs.jsonl").read_text().splitlines()]
        assert epochs == list(range(1, 9)), (tid, epochs)  # each epoch recorded once: resumed, not re-run
    return after


def _kill_driver_then_resume(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    run_dir = tmp_path / "runs" / "r"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(spec), "--storage", str(tmp_path / "runs"), "--name", "r"]
    driver = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    # kill the driver (and the local Ray it started) once a trial is complete and another is mid-way
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            states = _states(run_dir)
            done = [s for s in states.values() if s["state"] == "complete"]
            midway = [s for s in states.values() if s["state"] == "running" and 2 <= s["epochs_run"] < 8]
            if done and midway:
                break
            assert driver.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.1)
        else:
            raise AssertionError(f"never saw a complete and a half-run trial: {_states(run_dir)}")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    before = _states(run_dir)
    complete_before = {tid for tid, s in before.items() if s["state"] == "complete"}
    # the run is copied, then moved before it is resumed: nothing in it may need its old path
    copied = tmp_path / "copied" / "r"
    shutil.copytree(run_dir, copied, symlinks=True)
    first_dir, run_dir = run_dir, tmp_path / "moved" / "r"
    run_dir.parent.mkdir()
    shutil.move(first_dir, run_dir)

    r = _resume(run_dir, env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    after = _assert_resumed(run_dir, complete_before)

    assert not first_dir.exists()  # nothing was written to where the run was before it moved
    study = optuna.load_study(study_name="r", storage=optuna_storage(run_dir))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["tune_trial_id"] for t in complete) == sorted(after)
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    # anything else in the study is a suggestion the dead driver made but never launched, marked as such
    assert all("orphaned" in t.user_attrs for t in study.trials if t.state == optuna.trial.TrialState.FAIL)

    # resuming the finished run changes nothing, and says so
    manifest_before = (run_dir / "wattsweep.json").read_bytes()
    again = _resume(run_dir, env)
    assert again.returncode == 0 and "already finished; nothing to resume" in again.stdout, again.stderr[-2000:]
    assert (run_dir / "wattsweep.json").read_bytes() == manifest_before

    # a second driver on a run that one drives is refused, naming the holder
    from rundir.writer import RunLock

    lock = RunLock(run_dir)
    lock.acquire()
    try:
        second = _resume(run_dir, env)
    finally:
        lock.release()
    assert second.returncode == 2 and f"pid {os.getpid()} is already driving this run" in second.stderr, second.stderr

    # the copy resumes on its own: it ends complete, and the run it was copied from is left as it was
    moved_files = _tree(run_dir)
    r = _resume(copied, env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    _assert_resumed(copied, complete_before)
    assert _tree(run_dir) == moved_files


def test_kill_driver_then_resume(tmp_path: Path) -> None:
    # the kill lands wherever the driver happens to be: after a trial just ended and the next one started
    # (orphan), between Tune deleting a checkpoint and snapshotting its successor (lost checkpoint), or neither
    _kill_driver_then_resume(tmp_path)


def test_resume_repoints_a_checkpoint_deleted_before_the_snapshot(tmp_path: Path) -> None:
    # the state a driver killed between Tune deleting a checkpoint (num_to_keep=1) and snapshotting its
    # successor leaves: the snapshot names checkpoint 0, which is gone; 1 is registered; 2 was never registered
    import copy

    from ray.train._internal.session import _TrainingResult  # why: the record Tune's checkpoint manager keeps
    from ray.tune import Checkpoint, CheckpointConfig
    from ray.tune.experiment import Trial

    from orchestrator.recorder import _repoint_lost_checkpoint

    dirs = [tmp_path / f"checkpoint_{i:06d}" for i in range(3)]
    for i, d in enumerate(dirs):
        d.mkdir()
        (d / "trial_state.pt").write_text(str(i))
    trial = Trial("__fake", stub=True, checkpoint_config=CheckpointConfig(num_to_keep=1))
    manager = trial.run_metadata.checkpoint_manager
    manager.register_checkpoint(_TrainingResult(Checkpoint(str(dirs[0])), {"training_iteration": 1}))
    snapshot = copy.deepcopy(manager)
    manager.register_checkpoint(_TrainingResult(Checkpoint(str(dirs[1])), {"training_iteration": 2}))
    assert not dirs[0].exists()  # real Tune deleted it

    trial.run_metadata.checkpoint_manager = snapshot  # what resume restores
    assert _repoint_lost_checkpoint(trial) == str(dirs[1])
    assert trial.checkpoint is not None and Path(trial.checkpoint.path) == dirs[1]
    assert trial.latest_checkpoint_result is not None
    assert trial.latest_checkpoint_result.metrics["training_iteration"] == 2
    assert _repoint_lost_checkpoint(trial) is None  # a checkpoint that exists is left alone


def test_resume_rejects_non_run(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "orchestrator", "resume", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert str(tmp_path) in r.stderr and "Traceback" not in r.stderr
