"""Ray Tune's MLflow and W&B logger callbacks, fed each epoch (see ``orchestrator.trackers``, which imports this
module only when a tracker is asked for: Ray's W&B integration imports wandb)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.trackers import epoch_record
from trainables import metrics as m

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


def own_store(run_dir: Path) -> str:
    """The MLflow store a run keeps for itself when ``MLFLOW_TRACKING_URI`` is not set."""
    return f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


def _mlflow_base() -> type:
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    return MLflowLoggerCallback


def _wandb_base() -> type:
    from ray.air.integrations.wandb import WandbLoggerCallback

    return WandbLoggerCallback


def _wandb_actor_base() -> type:
    from ray.air.integrations.wandb import _WandbLoggingActor

    return _WandbLoggingActor


class FlushingWandbLoggingActor(_wandb_actor_base()):  # type: ignore[misc]
    """Ray's W&B logging actor, that waits for wandb's service to shut down before it returns.

    why: the callback kills each trial's actor as soon as ``run`` returns; ``wandb.finish`` can return before
    wandb's service process has written the run file's last block, and a file that never filled its first
    32 KiB block was then left with its header only (seen once in the tracker test). ``wandb.teardown`` waits.
    (Ray's private class: this is the one place that uses it.)
    """

    def run(self) -> None:
        super().run()
        self._wandb.teardown()


class FollowsTheRun:
    """A tracker callback whose files live in the run directory follows the run when a moved or copied run resumes.

    why: Tune pickles its callbacks into the run (tuner.pkl) with the first driver's paths; ``resume`` names where
    the run is now (``orchestrator.relocate``), as the recorder and the searcher take it.
    """

    run_dir: str | None = None  # the run directory this callback writes in (set by ``trackers.tracker_callbacks``)

    def __setstate__(self, state: dict[str, Any]) -> None:
        from orchestrator.relocate import current

        self.__dict__.update(state)
        here = current()
        if here is not None and self.run_dir is not None and Path(self.run_dir) != here:
            self.relocate(Path(self.run_dir), here)
            self.run_dir = str(here)

    def relocate(self, old: Path, new: Path) -> None:
        raise NotImplementedError


class EpochMLflowLoggerCallback(FollowsTheRun, _mlflow_base()):  # type: ignore[misc]
    """Ray's ``MLflowLoggerCallback`` with the step = the trial's epoch (Tune's iteration restarts when a trial
    is retried on a new actor), numbers only as metrics, the energy's text facts as run tags, one batch a result."""

    def relocate(self, old: Path, new: Path) -> None:
        if getattr(self, "tracking_uri", None) == own_store(old):  # why only ours: a user's URI is not in the run
            self.tracking_uri = own_store(new)

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


class EpochWandbLoggerCallback(FollowsTheRun, _wandb_base()):  # type: ignore[misc]
    """Ray's ``WandbLoggerCallback`` fed each epoch's numbers (history) and the energy's text facts (the run's
    config; no lists or dicts: W&B would make tables of the confusion matrix and the power trace)."""

    _logger_actor_cls = FlushingWandbLoggingActor

    def relocate(self, old: Path, new: Path) -> None:
        if self.kwargs.get("dir") == str(old):
            self.kwargs["dir"] = str(new)

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
        # why text under "config": Ray's W&B actor logs only numbers, and takes a result's "config" as config updates;
        # why training_iteration = epoch: the actor logs at step = training_iteration, which restarts when a trial is
        # retried on a new actor (W&B drops a step lower than the last), and the step should read as the epoch
        step = {"training_iteration": int(result.get(m.EPOCH) or iteration)}
        super().log_trial_result(iteration, trial, {**numbers, **step, "config": text})
