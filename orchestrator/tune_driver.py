"""Tune's driver-side bookkeeping cut to what wattsweep uses, while a sweep runs (``lean_tune_driver``).

Three things Ray Tune does in the driver grow with trials (x reports), and wattsweep needs none of them:

1. **The experiment snapshot after every epoch of every trial.** Tune writes a snapshot of the whole experiment
   (every trial's state, the pickled searcher, the callbacks' state) so that a driver that dies can be resumed. Its
   period adapts to what the snapshot costs (at least 10 s, at most 5% of the time). But with
   ``CheckpointConfig(num_to_keep=N)`` Tune also forces one after every N-th checkpoint of any trial
   (``_ExperimentCheckpointManager.on_trial_checkpoint``, which Ray's own comment calls a non-performant workaround)
   so that the snapshot never names a checkpoint ``num_to_keep`` has deleted. wattsweep keeps one checkpoint per
   trial and checkpoints every epoch, so the whole experiment was written after every epoch of every trial: with
   ``benchmarks/scale.py`` (300 trials of 2 epochs, 8 slots, 2-core machine) half of the driver's samples were
   there. wattsweep does not need the workaround: a resumed sweep repoints a trial whose snapshot names a deleted
   checkpoint at the one Tune kept (``orchestrator.recorder._repoint_lost_checkpoint``), and the run directory,
   written before Tune registers a checkpoint, holds every epoch. So the snapshot follows Tune's adaptive period
   only (Tune still writes one at the end).

2. **Running statistics of every number in every result.** For each numeric leaf of a result (nested dicts
   flattened) Tune keeps max, min, mean, last and two moving windows per trial (``_TrainingRunMetadata
   .update_metric``), for ``ResultGrid.get_best_result(scope=...)``. wattsweep's results carry the metric contract
   (~20 numbers, more with a user's own metrics), and nothing in wattsweep reads those statistics: they are kept for
   the objectives, the epoch and ``training_iteration`` only (what Tune's own analysis of a sweep would rank by).

3. **The serialised state of every finished trial, kept in memory.** For each trial Tune caches its state and its
   run metadata as indented JSON (~10 KB of text for a wattsweep trial), to write them into the next snapshot
   without serialising them again, and keeps two moving windows (deques) per kept statistic. A finished trial never
   changes, yet both stay for the whole sweep: ~22 KB per finished trial of the driver's heap (tracemalloc over
   ``benchmarks/scale.py``). A finished trial's state is serialised anew for each snapshot instead (Tune's adaptive
   period keeps snapshots within 5% of the sweep's time, so their cost stays bounded) and its windows are dropped
   when it finishes (its ``last-N-avg`` statistics keep their final values; a finished trial is never run again).

Installed around ``Tuner.fit`` (a new sweep and a resume) and undone after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from trainables.metrics import EPOCH


@contextlib.contextmanager
def lean_tune_driver(metrics: Iterable[str]) -> Iterator[None]:
    """While the block runs: Tune's snapshot on its adaptive period only, its per-metric statistics for
    ``metrics`` (with the epoch and ``training_iteration``) only, nothing cached for a finished trial. See the
    module docstring."""
    from ray.tune.execution.experiment_state import _ExperimentCheckpointManager
    from ray.tune.experiment.trial import Trial
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    kept = frozenset([*metrics, EPOCH, "training_iteration"])
    on_checkpoint = _ExperimentCheckpointManager.on_trial_checkpoint
    update_metric = _TrainingRunMetadata.update_metric
    get_json_state, set_status = Trial.get_json_state, Trial.set_status

    def on_trial_checkpoint(self: Any, trial: Any) -> None:
        return None  # why: no forced snapshot per trial checkpoint (1. above)

    def update_kept_metric(self: Any, metric: str, value: Any, step: int | None = 1) -> None:
        if metric in kept:
            update_metric(self, metric, value, step=step)

    def json_state_kept_while_running(self: Any) -> tuple[str, str]:
        state = get_json_state(self)
        if self.status == Trial.TERMINATED:  # why: a finished trial's JSON is not kept for the next snapshot (3.)
            self.invalidate_json_state()
            self.run_metadata.invalidate_cache()
        return state

    def set_status_dropping_windows(self: Any, status: str) -> None:
        set_status(self, status)
        if status == Trial.TERMINATED:
            self.run_metadata.metric_n_steps = {}  # why: a finished trial's statistics never move again (3.)

    _ExperimentCheckpointManager.on_trial_checkpoint = on_trial_checkpoint  # type: ignore[method-assign]
    _TrainingRunMetadata.update_metric = update_kept_metric  # type: ignore[method-assign]
    Trial.get_json_state = json_state_kept_while_running  # type: ignore[method-assign]
    Trial.set_status = set_status_dropping_windows  # type: ignore[method-assign]
    try:
        yield
    finally:
        _ExperimentCheckpointManager.on_trial_checkpoint = on_checkpoint  # type: ignore[method-assign]
        _TrainingRunMetadata.update_metric = update_metric  # type: ignore[method-assign]
        Trial.get_json_state, Trial.set_status = get_json_state, set_status  # type: ignore[method-assign]
