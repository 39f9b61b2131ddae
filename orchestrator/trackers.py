"""Experiment trackers (``loggers: [mlflow, wandb]`` / ``--logger``): Ray Tune's own MLflow and W&B callbacks.

Each trial is one tracker run: its config as parameters (W&B: its config), every epoch's numbers as metrics at
step = epoch (accuracy, loss, ``energy_j`` and its components, ``time_s``, the user's own metrics), and the text
facts (``energy_source``, per-component sources, attribution, GPU model) as MLflow tags / W&B values. Lists and
dicts (confusion matrix, power trace, provenance) stay in the run directory.

Off unless asked; where the data goes is the trackers' own configuration, nothing wattsweep sends anywhere:

- MLflow: ``MLFLOW_TRACKING_URI`` when set (the user's server or store), else ``sqlite:///RUN_DIR/mlflow.db``
  (why SQLite: MLflow 3.x refuses new file stores, ``./mlruns``, unless ``MLFLOW_ALLOW_FILE_STORE=true``);
  experiment ``MLFLOW_EXPERIMENT_NAME``, else the run's name.
- W&B: ``WANDB_MODE`` when set, else ``offline``: the runs are files under ``RUN_DIR/wandb/`` until
  ``wandb sync`` uploads them; project ``WANDB_PROJECT``, else ``wattsweep``; group = the run's name.

mlflow (``mlflow-skinny`` suffices) and wandb are optional extras (``pip install '.[mlflow]'`` in the clone):
``check_trackers`` refuses a tracker that is not installed before Ray starts (exit 2).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from orchestrator.tblogger import scalars_only
from search_spaces import SpecError, SweepSpec
from trainables import metrics as m

# why: text a tracker should show beside the numbers (what the energy figures are); everything else textual,
# and every list or dict, is left to the run directory
TEXT_FACTS: tuple[str, ...] = (
    m.ENERGY_SOURCE,
    *(s for _, _, s in m.ENERGY_COMPONENTS),
    m.ENERGY_ATTRIBUTION,
    m.GPU_MODEL,
)
_SKIPPED = frozenset({"config", *m.FINAL_METRICS})
_MODULES = {"mlflow": "mlflow", "wandb": "wandb"}
_EXTRAS = {"mlflow": "mlflow-skinny", "wandb": "wandb"}


def check_trackers(spec: SweepSpec) -> None:
    """SpecError (exit 2) naming ``loggers`` and the install command when a requested tracker is not installed."""
    for name in spec.loggers:
        if importlib.util.find_spec(_MODULES[name]) is None:
            allowed = (
                f"a tracker that is installed: `pip install {_EXTRAS[name]}` (the wattsweep[{name}] extra), "
                "or leave it out of loggers / --logger"
            )
            raise SpecError("loggers", name, allowed)


def epoch_record(result: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """One result as (numbers, text facts): finite numbers flattened with ``/`` (no config, no final-only lists)."""
    numbers = scalars_only({k: v for k, v in result.items() if k not in _SKIPPED})
    text = {k: str(result[k]) for k in TEXT_FACTS if isinstance(result.get(k), str)}
    return numbers, text


def tracker_callbacks(spec: SweepSpec, run_dir: Path) -> list[Any]:
    """The Tune callbacks for ``spec.loggers`` (none when it names none)."""
    if not spec.loggers:
        return []  # why before the import: Ray's W&B integration imports wandb (~5 s on 2 busy cores)
    from orchestrator._tracker_callbacks import EpochMLflowLoggerCallback, EpochWandbLoggerCallback, own_store

    out: list[Any] = []
    if "mlflow" in spec.loggers:
        # why None when the user set MLFLOW_TRACKING_URI: MLflow reads it itself, so a URI with a token in it is
        # never pickled into Tune's experiment state
        own = own_store(run_dir)
        out.append(
            EpochMLflowLoggerCallback(
                tracking_uri=None if os.environ.get("MLFLOW_TRACKING_URI") else own,
                experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME") or spec.name,
                tags={"wattsweep_run": spec.name},
            )
        )
    if "wandb" in spec.loggers:
        out.append(
            EpochWandbLoggerCallback(
                project=os.environ.get("WANDB_PROJECT") or "wattsweep",
                group=spec.name,
                mode=os.environ.get("WANDB_MODE") or "offline",
                dir=str(run_dir),
            )
        )
    for callback in out:
        callback.run_dir = str(run_dir)  # why: a moved or copied run's resume repoints them (FollowsTheRun)
    return out
