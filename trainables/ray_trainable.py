"""Adapter from the training loop to Ray Tune: config in, tune.report out, checkpoints both ways."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trainables.config import DatasetConfig, TrialConfig
from trainables.metrics import NODE_ID

if TYPE_CHECKING:
    from trainables.data import SplitArrays

CHECKPOINT_FILE = "trial_state.pt"
# Fault injection for testing the sweep's failure handling: "key=value[,key=value]" makes every
# attempt of a matching trial raise after its first reported epoch. Unset in normal use.
INJECT_FAILURE_ENV = "WATTSWEEP_INJECT_FAILURE"


class InjectedFailure(RuntimeError):
    """Raised by a trial that WATTSWEEP_INJECT_FAILURE selects."""


def _failure_selected(config: Mapping[str, Any]) -> bool:
    rule = os.environ.get(INJECT_FAILURE_ENV, "")
    if not rule:
        return False
    pairs = [item.partition("=") for item in rule.split(",")]
    return all(str(config.get(k.strip())) == v.strip() for k, _, v in pairs)


def tune_trainable(
    config: dict[str, Any],
    *,
    dataset: Mapping[str, Any],
    options: Mapping[str, Any],
    splits: SplitArrays | None = None,
) -> None:
    """Ray Tune function trainable. ``config`` is the full trial config (searched + fixed keys).

    ``splits``: the dataset loaded once by the driver (passed through Ray's object store by
    ``tune.with_parameters``); None loads ``dataset`` in this worker.
    """
    import ray
    import torch
    from ray import tune  # why: only the Ray path needs Ray; `trial` runs without it

    # why here: Tune pickles this function by reference in the driver, which then imports this module;
    # importing torch and the training loop at module level would cost the driver ~1.5 s it never uses
    from trainables.train import RunOptions, run_trial

    cfg = TrialConfig.from_mapping(config)
    ds = DatasetConfig.from_mapping(dataset)
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            resume = torch.load(os.path.join(d, CHECKPOINT_FILE), weights_only=True, map_location="cpu")

    inject = _failure_selected(config)
    node_id = ray.get_runtime_context().get_node_id()

    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        metrics = {**metrics, NODE_ID: node_id}
        if inject and metrics["epoch"] >= 2:
            raise InjectedFailure(f"{INJECT_FAILURE_ENV} selected this trial ({os.environ[INJECT_FAILURE_ENV]})")
        if state is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, os.path.join(d, CHECKPOINT_FILE))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    data = splits.to_splits() if splits is not None else None
    run_trial(cfg, ds, report=report, resume=resume, options=RunOptions(**options), splits=data)
