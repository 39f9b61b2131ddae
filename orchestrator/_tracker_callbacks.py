"""Ray Tune's MLflow and W&B logger callbacks, fed each epoch (see ``orchestrator.trackers``, which imports this
module only when a tracker is asked for: Ray's W&B integration imports wandb)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from orchestrator.trackers import epoch_record
from trainables import metrics as m

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


def _mlflow_base() -> type:
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    return MLflowLoggerCallback


def _wandb_base() -> type:
    from ray.air.integrations.wandb import WandbLoggerCallback

    return WandbLoggerCallback


class EpochMLflowLoggerCallback(_mlflow_base()):  # type: ignore[misc]
    """Ray's ``MLflowLoggerCallback`` with the step = the trial's epoch (Tune's iteration restarts when a trial
    is retried on a new actor), numbers only as metrics, the energy's text facts as run tags, one batch a result."""

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        import mlflow
        from mlflow.entities import Metric, RunTag

        numbers, text = epoch_record(result)
        run_id = self._trial_runs[trial]  # why Ray's own mapping: the run its log_trial_start made
        step, now_ms = int(result.get(m.EPOCH) or iteration), int(time.time() * 1000)
        # why one batch, not Ray's one call per metric: ~40 metrics an epoch took the driver ~2 s on SQLite
        mlflow.MlflowClient().log_batch(  # why the default client: setup() pointed MLflow at the tracking store
            run_id,
            metrics=[Metric(k, v, now_ms, step) for k, v in numbers.items()],
            tags=[RunTag(k, v) for k, v in text.items()],
        )


class EpochWandbLoggerCallback(_wandb_base()):  # type: ignore[misc]
    """Ray's ``WandbLoggerCallback`` fed each epoch's numbers (history) and the energy's text facts (the run's
    config; no lists or dicts: W&B would make tables of the confusion matrix and the power trace)."""

    def setup(self, *args: Any, **kwargs: Any) -> None:
        mode = self.kwargs.get("mode")
        if mode not in ("offline", "disabled") or os.environ.get("WANDB_MODE") == mode:
            super().setup(*args, **kwargs)
            return
        # why: Ray asks for an API key unless WANDB_MODE says offline, even when the run is told mode="offline";
        # an offline run needs none. Only for this call: the driver's environment is left as it was
        os.environ["WANDB_MODE"] = mode
        try:
            super().setup(*args, **kwargs)
        finally:
            del os.environ["WANDB_MODE"]

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        numbers, text = epoch_record(result)
        # why text under "config": Ray's W&B actor logs only numbers, and takes a result's "config" as config updates
        super().log_trial_result(iteration, trial, {**numbers, "config": text})
