"""Each node's own idle baseline, measured once per sweep by the first trial that runs there.

The driver measures its own node before the sweep; a trial on another node (a GPU worker, on a cluster whose
head has no GPU) needs that node's idle power, so the first trial of a sweep on a node measures it while it holds
a file lock (the node's other trials wait on the lock before they start, so the node is idle), and every later
trial of the sweep on that node reads the stored figure.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from ._ledger import ledger_dir


def node_idle_power(
    sweep_key: str, seconds: float, measure: Callable[[float], dict[str, float]], *, directory: Path | None = None
) -> tuple[dict[str, float], bool]:
    """``(idle watts by device key, measured now)``: this node's baseline for the sweep ``sweep_key``.

    ``measure(seconds)`` is ``measure_idle_power``; it runs at most once per sweep per node.
    """
    base = ledger_dir() if directory is None else Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", sweep_key)[:120] or "sweep"
    path, lock_path = base / f"idle-{name}.json", base / f"idle-{name}.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}, False
            except (OSError, ValueError, AttributeError):
                pass
            watts = measure(seconds)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(watts))
            os.replace(tmp, path)
            return watts, True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
