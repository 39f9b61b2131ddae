"""Reading a run directory back (finished or not), without Ray or torch."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rundir.layout import EPOCHS, MANIFEST, TRIAL_STATES, TRIALS_DIR, NotARunError, TrialState


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
    manifest_problem: str | None = None  # why the manifest could not be read (the trials still could)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a run manifest."""
    return (Path(path) / MANIFEST).is_file()


def read_run(run_dir: str | os.PathLike[str]) -> RunRecord:
    """Read a run directory (finished or not). Raises NotARunError naming the path.

    A run whose manifest is missing or unreadable but that has trial records still reads: its ``manifest`` is
    ``{}`` and ``manifest_problem`` says why, so that a partial report can be drawn from the trials.
    """
    root = Path(run_dir)
    if not root.exists():
        raise NotARunError(f"run directory {str(root)!r} does not exist")
    trials_root = root / TRIALS_DIR
    problem = None
    manifest: dict[str, Any] = {}
    if not is_run_dir(root):
        if not trials_root.is_dir():
            raise NotARunError(f"{str(root)!r} is not a wattsweep run (no {MANIFEST} in it)")
        problem = f"{MANIFEST} is missing"
    else:
        try:
            raw = json.loads((root / MANIFEST).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            if not trials_root.is_dir():
                raise NotARunError(f"{str(root / MANIFEST)!r} is unreadable: {e}") from e
            problem = f"{MANIFEST} is unreadable ({e})"
        else:
            if isinstance(raw, dict):
                manifest = raw
            else:
                problem = f"{MANIFEST} holds a {type(raw).__name__}, not a JSON object"
    trials = [_read_trial(d) for d in sorted(trials_root.iterdir()) if d.is_dir()] if trials_root.is_dir() else []
    return RunRecord(run_dir=root, manifest=manifest, trials=trials, manifest_problem=problem)


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
        epochs = _read_epochs(d / EPOCHS, problems)
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
    text = path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and not text.endswith("\n"):
        try:
            json.loads(lines[-1])
        except json.JSONDecodeError:
            lines.pop()  # why: a torn last record (its driver was killed mid-write); the writer cuts it off next time
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
