"""What a run directory records about its sweep: config, seed, versions, git revision, host."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from orchestrator.grid import carbon_facts
from rundir.manifest import RunManifest
from search_spaces import SweepSpec

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def git_rev() -> str | None:
    """This checkout's git revision, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Python's and the main packages' versions (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "ray", "optuna", "nvidia-ml-py", "torch-pruning"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def manifest(spec: SweepSpec, run_dir: Path) -> RunManifest:
    """What the run directory records about the sweep: the spec as written and every CLI override (so that
    ``resume`` runs by the same settings), config, seed, versions, git revision."""
    return RunManifest(
        name=spec.name,
        spec=dict(spec.raw),
        overrides=dict(spec.overrides),
        status="running",
        created_at=now(),
        finished_at=None,
        facts={
            "spec_path": spec.source,
            "description": spec.description,
            "trainable": spec.trainable_ref,
            "dataset": spec.dataset.to_dict() if spec.dataset is not None else None,
            "objectives": [asdict(o) for o in spec.objectives],
            "num_samples": spec.num_samples,
            "max_epochs": spec.max_epochs,
            "sampler": asdict(spec.sampler),
            "energy": asdict(spec.energy),
            "tensorboard": spec.tensorboard,
            "git_rev": git_rev(),
            "versions": versions(),
            "host": {"hostname": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform()},
            # why here, after Ray started: the grid may come from the cluster's region (orchestrator.grid)
            "carbon": carbon_facts(spec),
            "command": sys.argv,
        },
    )


def now() -> str:
    """UTC now, ISO 8601 to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
