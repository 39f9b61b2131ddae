"""Nothing lost: records appended whole, torn tails repaired, one driver per run, a partial run still reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rundir import MANIFEST, RunWriter, read_run
from rundir.writer import RunLock, RunLockedError


def _run(tmp_path: Path) -> tuple[RunWriter, Path]:
    w = RunWriter(tmp_path / "run")
    w.write_manifest({"name": "r", "spec": {"name": "r"}})
    w.start_trial("t1", {"lr": 0.1}, 3)
    w.append_epoch("t1", {"epoch": 1, "accuracy": 0.5, "energy_j": 1.0})
    w.append_epoch("t1", {"epoch": 2, "accuracy": 0.6, "energy_j": 2.0})
    return w, tmp_path / "run" / "trials" / "t1" / "epochs.jsonl"


def test_a_torn_last_record_is_skipped_on_read_and_cut_before_the_next(tmp_path: Path) -> None:
    w, epochs = _run(tmp_path)
    with open(epochs, "a") as f:  # a driver killed mid-write leaves half a record, no newline
        f.write('{"epoch": 3, "accuracy": 0.7, "ene')
    trial = read_run(tmp_path / "run").trials[0]
    assert trial.unreadable is None and [e["epoch"] for e in trial.epochs] == [1, 2]  # still on the front
    w.append_epoch("t1", {"epoch": 3, "accuracy": 0.7, "energy_j": 3.0})  # the resumed trial reports again
    lines = epochs.read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]  # not glued to the torn one
    trial = read_run(tmp_path / "run").trials[0]
    assert trial.unreadable is None and trial.final["accuracy"] == 0.7


def test_a_second_driver_is_refused_naming_the_first(tmp_path: Path) -> None:
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    first.acquire()
    with pytest.raises(RunLockedError, match=r"driver \S+ pid \d+ is already driving this run"):
        second.acquire()
    first.release()
    second.acquire()  # free again once the first driver ends (or dies: the kernel drops a dead process's lock)
    second.release()


@pytest.mark.parametrize("damage", ["missing", "corrupt", "not an object"])
def test_a_run_without_a_readable_manifest_still_reads_its_trials(tmp_path: Path, damage: str) -> None:
    _run(tmp_path)
    m = tmp_path / "run" / MANIFEST
    if damage == "missing":
        m.unlink()
    else:
        m.write_text('{"name": "r", "sp' if damage == "corrupt" else "[1, 2]")
    run = read_run(tmp_path / "run")
    assert run.manifest == {} and run.manifest_problem is not None and MANIFEST in run.manifest_problem
    assert [t.trial_id for t in run.trials] == ["t1"] and run.trials[0].final["accuracy"] == 0.6


def test_a_run_without_its_manifest_still_gets_a_report_that_says_so(tmp_path: Path) -> None:
    from reports import build_report

    w, _ = _run(tmp_path)
    w.set_state("t1", "complete", epochs_run=2, budget_epochs=2)
    (tmp_path / "run" / MANIFEST).unlink()
    md = (build_report(tmp_path / "run") / "report.md").read_text()
    assert "Partial report: wattsweep.json is missing" in md and "t1" in md
