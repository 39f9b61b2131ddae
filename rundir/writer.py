"""Writing a run directory: the sweep's driver is its only writer."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rundir.layout import MANIFEST, TRIALS_DIR, TrialState
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
