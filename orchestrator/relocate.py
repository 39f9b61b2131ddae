"""Where a resumed run is now.

On ``resume`` Tune unpickles what the first driver built (the run recorder with its writer, the searcher with its
Optuna storage), each holding the path the run had then. A run directory may have been moved or copied since; the
resuming driver names where it is, and the restored objects take that path instead (never writing to the old one,
which may be gone or may be the original of a copy).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

_current: Path | None = None


@contextlib.contextmanager
def resuming_at(run_dir: Path) -> Iterator[None]:
    """While Tune restores and runs a resumed sweep: objects it restores point at ``run_dir``."""
    global _current
    before, _current = _current, Path(run_dir)
    try:
        yield
    finally:
        _current = before


def current() -> Path | None:
    """The run directory of the sweep being resumed, or None outside a resume."""
    return _current


def repoint_saved_search(tune_dir: Path, run_dir: Path) -> int:
    """Point the search generator's saved experiment at ``run_dir``; how many saved states were changed.

    why: Tune moves the storage of the trials it restores, but the search generator restores the experiment it
    creates new trials from with the first driver's storage path; in a moved run every trial started after the
    resume would fail its first checkpoint ("Unable to set up cluster storage"). Only local storage moves with a
    run directory; a run on remote storage keeps its URI.
    """
    import os

    import pyarrow.fs
    import ray.cloudpickle as cloudpickle

    changed = 0
    for path in sorted(Path(tune_dir).glob("search_gen_state-*.json")):
        with open(path, "rb") as f:
            state = cloudpickle.load(f)
        experiment = state.get("experiment") if isinstance(state, dict) else None
        storage = experiment.spec.get("storage") if experiment is not None else None
        if storage is None or not isinstance(storage.storage_filesystem, pyarrow.fs.LocalFileSystem):
            continue
        if Path(storage.storage_fs_path) == Path(run_dir):
            continue
        storage.storage_fs_path = str(run_dir)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            cloudpickle.dump(state, f)
        os.replace(tmp, path)
        changed += 1
    return changed
