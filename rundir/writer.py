"""Writing a run directory: the sweep's driver is its only writer."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rundir.layout import EPOCHS, LOCK, MANIFEST, TRIALS_DIR, TrialState
from rundir.manifest import RunManifest


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


def repair_torn_tail(fd: int) -> int:
    """Cut an unterminated last line off the open file ``fd`` (a record a killed writer left half-written); the
    number of bytes cut. Records end in a newline, so anything after the last one is a torn record."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    keep = size
    while keep > 0:  # why backwards in blocks: a torn record is at most one line, the file may be large
        start = max(0, keep - 65536)
        block = os.pread(fd, keep - start, start)
        nl = block.rfind(b"\n")
        if nl >= 0:
            keep = start + nl + 1
            break
        keep = start
    os.ftruncate(fd, keep)
    return size - keep


class RunLockedError(RuntimeError):
    """Another driver holds this run directory."""


class RunLock:
    """One driver per run directory: an exclusive ``flock`` on ``wattsweep.lock`` for the driver's life, the file
    naming its host and pid. A second driver is refused with that name; a lock whose process died is free (the
    kernel releases a dead process's ``flock``)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise RunLockedError naming the driver that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLockedError(f"{holder} is already driving this run") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"driver {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class RunWriter:
    """Writes a run directory. Used by the sweep driver (one process)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)

    def write_manifest(self, manifest: RunManifest | Mapping[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data = manifest.to_dict() if isinstance(manifest, RunManifest) else dict(manifest)
        _write_json_atomic(self.run_dir / MANIFEST, data)

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
        """Append one epoch record, whole or not at all: one ``write`` of the line and its newline, after cutting
        off a torn last line a killed driver left (it would otherwise be glued to this record, and the trial
        would become unreadable)."""
        d = self._trial_dir(trial_id)
        data = (json.dumps(dict(metrics), default=_json_default) + "\n").encode()
        fd = os.open(d / EPOCHS, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            repair_torn_tail(fd)
            os.write(fd, data)
        finally:
            os.close(fd)

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
