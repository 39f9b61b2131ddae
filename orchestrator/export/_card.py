"""``model_card.json``: what an exported trial is, how it was measured, and where it came from.

Beside the artifacts of one trial: the trial's config and sweep metrics, each artifact's figures (test accuracy
and its change from PyTorch's, parameters, FLOPs, bytes, latency and energy per 1,000 single-sample inferences
with the energy's source), the provenance (run, checkpoint, versions, host, time) and the sha256 of every file.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CARD_VERSION = 1


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar metrics of an epoch record (traces, matrices and per-layer tables left out)."""
    return {
        k: v
        for k, v in metrics.items()
        if v is None or isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v))
    }


def versions() -> dict[str, str]:
    """The versions that made and measured the artifacts."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "onnx", "onnxruntime", "onnxscript", "torch-pruning"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def host() -> dict[str, Any]:
    return {"hostname": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform()}


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing or ``b`` is not positive."""
    return a / b if a is not None and b is not None and b > 0 else None
