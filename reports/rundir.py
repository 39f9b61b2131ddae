"""The run directory: the one on-disk format between a sweep and its report.

Layout of ``<storage>/<name>/`` (written by the sweep's driver, read here
without Ray)::

    wattsweep.json              run manifest (see RunManifest keys below)
    optuna_journal.log          the Optuna study (Optuna's JournalStorage, a file of JSON lines), study
                                name == run name; runs made before 2026-12-01 have optuna.db (SQLite)
    tune/                       Ray Tune's own experiment directory (for resume)
    trials/<trial_id>/config.json   {"trial_id": str, "config": {...trial config...}} (the built-in
                                    trainable's: every TrialConfig key; a user's: its fixed + space keys)
    trials/<trial_id>/epochs.jsonl  one JSON object per reported epoch: names from
                                    trainables.metrics, and the user's own metrics; the last line may
                                    also hold FINAL_METRICS (confusion matrix, layer FLOPs, trace)
    trials/<trial_id>/state.json    {"state": TrialState, "error": str | null,
                                     "epochs_run": int, "budget_epochs": int}
    report/                     what reports.build_report writes

A trial's state: ``running`` (no end seen: still running, or the driver died),
``complete`` (ran its whole epoch budget), ``stopped`` (ended early without an
error: a scheduler or an energy budget stopped it), ``failed`` (raised, after
its retries).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MANIFEST = "wattsweep.json"
TRIALS_DIR = "trials"
REPORT_DIR = "report"
TUNE_DIR = "tune"
OPTUNA_JOURNAL = "optuna_journal.log"
OPTUNA_DB = "optuna.db"  # why: the study file of runs made before the journal

TrialState = Literal["running", "complete", "stopped", "failed"]
TRIAL_STATES: tuple[TrialState, ...] = ("running", "complete", "stopped", "failed")


def end_state(*, error: bool, epochs_run: int, budget_epochs: int) -> TrialState:
    """The one rule for how a trial ended, used by the run directory and the Optuna study alike.

    ``failed``: it raised (after its retries); that includes breaking the trainable contract, e.g. a missing
    or non-finite objective (``trainables.contract``). ``complete``: it reported its whole epoch budget.
    ``stopped``: it ended earlier without an error (a scheduler, an energy budget, or the trainable returned).
    """
    if error:
        return "failed"
    return "complete" if budget_epochs and epochs_run >= budget_epochs else "stopped"


def optuna_storage(run_dir: Path | str) -> Any:
    """The Optuna storage of a run's study, for ``optuna.load_study(study_name=<run name>, storage=...)``.

    A new run's study is the journal file; a run that has only ``optuna.db`` (made before the journal) its SQLite URL.
    """
    run_dir = Path(run_dir)
    if not (run_dir / OPTUNA_JOURNAL).exists() and (run_dir / OPTUNA_DB).exists():
        return f"sqlite:///{(run_dir / OPTUNA_DB).resolve()}"
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str((run_dir / OPTUNA_JOURNAL).resolve())))


class NotARunError(ValueError):
    """The path is not a wattsweep run directory."""


def _write_json_atomic(path: Path, obj: Any) -> None:
    # why: a reader (the report of an unfinished run) must never see half a file
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    # numpy scalars, paths and the like reach us from configs and metrics
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


class RunWriter:
    """Writes a run directory. Used by the sweep driver (one process)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.run_dir / MANIFEST, dict(manifest))

    def update_manifest(self, **changes: Any) -> None:
        current = json.loads((self.run_dir / MANIFEST).read_text())
        current.update(changes)
        _write_json_atomic(self.run_dir / MANIFEST, current)

    def _trial_dir(self, trial_id: str) -> Path:
        # why: the id becomes a directory name; a separator or '..' would write outside trials/
        if not trial_id or trial_id in (".", "..") or any(c in trial_id for c in "/\\\0"):
            raise ValueError(f"trial_id must be a plain directory name, but got {trial_id=}.")
        d = self.run_dir / TRIALS_DIR / trial_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def start_trial(self, trial_id: str, config: Mapping[str, Any], budget_epochs: int) -> None:
        d = self._trial_dir(trial_id)
        _write_json_atomic(d / "config.json", {"trial_id": trial_id, "config": dict(config)})
        if not (d / "state.json").exists():
            self.set_state(trial_id, "running", epochs_run=0, budget_epochs=budget_epochs)

    def append_epoch(self, trial_id: str, metrics: Mapping[str, Any]) -> None:
        d = self._trial_dir(trial_id)
        line = json.dumps(dict(metrics), default=_json_default)
        with open(d / "epochs.jsonl", "a") as f:
            f.write(line + "\n")

    def set_state(
        self,
        trial_id: str,
        state: TrialState,
        *,
        epochs_run: int,
        budget_epochs: int,
        error: str | None = None,
    ) -> None:
        _write_json_atomic(
            self._trial_dir(trial_id) / "state.json",
            {
                "state": state,
                "error": error,
                "epochs_run": epochs_run,
                "budget_epochs": budget_epochs,
                # why: the report orders trials by when they ended (hypervolume against energy spent)
                "updated_at": time.time(),
            },
        )


@dataclass
class TrialRecord:
    """One trial as read back from disk."""

    trial_id: str
    config: dict[str, Any]
    state: TrialState
    epochs: list[dict[str, Any]]
    budget_epochs: int | None
    error: str | None = None
    unreadable: str | None = None  # why the trial's files could not be read, if they could not
    ended_at: float | None = None  # Unix time the trial reached its end state (None: running, or not recorded)

    @property
    def final(self) -> dict[str, Any]:
        """The last reported epoch's metrics ({} when none)."""
        return self.epochs[-1] if self.epochs else {}


@dataclass
class RunRecord:
    """A run directory as read back from disk: its manifest and its trials (sorted by id)."""

    run_dir: Path
    manifest: dict[str, Any]
    trials: list[TrialRecord] = field(default_factory=list)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a run manifest."""
    return (Path(path) / MANIFEST).is_file()


def read_run(run_dir: str | os.PathLike[str]) -> RunRecord:
    """Read a run directory (finished or not). Raises NotARunError naming the path."""
    root = Path(run_dir)
    if not root.exists():
        raise NotARunError(f"run directory {str(root)!r} does not exist")
    if not is_run_dir(root):
        raise NotARunError(f"{str(root)!r} is not a wattsweep run (no {MANIFEST} in it)")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise NotARunError(f"{str(root / MANIFEST)!r} is unreadable: {e}") from e
    trials_root = root / TRIALS_DIR
    trials = [_read_trial(d) for d in sorted(trials_root.iterdir()) if d.is_dir()] if trials_root.is_dir() else []
    return RunRecord(run_dir=root, manifest=manifest, trials=trials)


def _read_trial(d: Path) -> TrialRecord:
    problems: list[str] = []
    config: dict[str, Any] = {}
    try:
        config = json.loads((d / "config.json").read_text())["config"]
        if not isinstance(config, dict):
            problems.append(f"config.json: config is a {type(config).__name__}, not an object")
            config = {}
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        problems.append(f"config.json: {e}")
    epochs: list[dict[str, Any]] = []
    try:
        epochs = _read_epochs(d / "epochs.jsonl", problems)
    except OSError as e:
        problems.append(f"epochs.jsonl: {e}")
    state: TrialState = "running"
    error = None
    budget = None
    ended_at = None
    try:
        s = json.loads((d / "state.json").read_text())
        state, error, budget = s["state"], s.get("error"), s.get("budget_epochs")
        stamp = s.get("updated_at")
        ended_at = float(stamp) if state != "running" and isinstance(stamp, (int, float)) else None
        if state not in TRIAL_STATES:
            problems.append(f"state.json: unknown state {state!r}")
            state = "running"
    except FileNotFoundError:
        problems.append("state.json: missing")
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        problems.append(f"state.json: {e}")
    return TrialRecord(
        trial_id=d.name,
        config=config,
        state=state,
        epochs=epochs,
        budget_epochs=budget,
        error=error,
        unreadable="; ".join(problems) or None,
        ended_at=ended_at,
    )


def _read_epochs(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    # why: one json.loads per file instead of one per line makes reading 10k-trial runs ~3x faster;
    # the checks below send anything odd (a bad line, two objects on a line) to the careful path
    try:
        fast: list[dict[str, Any]] = json.loads("[" + ",".join(lines) + "]")
        if len(fast) == len(lines) and all(isinstance(row, dict) for row in fast):
            return fast
    except json.JSONDecodeError:
        pass
    epochs: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"epochs.jsonl line {n}: {e}")
            continue
        if isinstance(row, dict):
            epochs.append(row)
        else:
            problems.append(f"epochs.jsonl line {n}: not a JSON object")
    return epochs
