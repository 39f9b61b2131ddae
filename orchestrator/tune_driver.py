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

3. **Every finished trial, whole, for the whole sweep.** Tune's controller keeps each trial's state and run
   metadata as indented JSON (~10 KB of text for a wattsweep trial; the trial caches the same strings) to write
   the next snapshot without serialising unchanged trials again; each trial keeps two moving windows (deques) per
   kept statistic, and its last result twice (as its last result and as its checkpoint's, ~40 keys each with
   the metric contract). tracemalloc over ``benchmarks/scale.py``: ~30 KB of the driver's heap per finished trial.
   When a trial finishes (after the search, the scheduler and every callback had its last result) its windows
   are dropped (its ``last-N-avg`` statistics keep their final values), both copies of its last result are cut
   to the kept statistics' keys with ``done`` and ``trial_id`` (each result stays whole in the trial's
   ``result.json``), and its JSON is kept zlib-compressed, unpacked when a snapshot is written (~60 us per trial).
   Nothing reads a finished trial again but Tune's ``ResultGrid`` after the sweep, which wattsweep does not use.

Installed around ``Tuner.fit`` (a new sweep and a resume) and undone after it.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from trainables.metrics import EPOCH


class _Packed(NamedTuple):
    """A finished trial's (state, run metadata) JSON, zlib-compressed, as Tune's controller keeps it (3. above)."""

    state: bytes
    metadata: bytes


def _pack(jsons: tuple[str, str]) -> _Packed:
    return _Packed(*(zlib.compress(text.encode(), 1) for text in jsons))


def _unpack(entry: tuple[Any, Any]) -> tuple[str, str]:
    if isinstance(entry, _Packed):
        return zlib.decompress(entry.state).decode(), zlib.decompress(entry.metadata).decode()
    return entry


@contextlib.contextmanager
def lean_tune_driver(metrics: Iterable[str]) -> Iterator[None]:
    """While the block runs: Tune's snapshot on its adaptive period only, its per-metric statistics for
    ``metrics`` (with the epoch and ``training_iteration``) only, a finished trial kept cut and compressed. See
    the module docstring."""
    from ray.tune.execution.experiment_state import _ExperimentCheckpointManager
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment.trial import Trial
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    kept = frozenset([*metrics, EPOCH, "training_iteration"])
    stored = kept | {"done", "trial_id"}
    on_checkpoint = _ExperimentCheckpointManager.on_trial_checkpoint
    update_metric = _TrainingRunMetadata.update_metric
    get_json_state, set_status = Trial.get_json_state, Trial.set_status
    trial_checkpoints = TuneController._get_trial_checkpoints

    def on_trial_checkpoint(self: Any, trial: Any) -> None:
        return None  # why: no forced snapshot per trial checkpoint (1. above)

    def update_kept_metric(self: Any, metric: str, value: Any, step: int | None = 1) -> None:
        if metric in kept:
            update_metric(self, metric, value, step=step)

    def json_state_uncached_when_finished(self: Any) -> tuple[str, str]:
        state = get_json_state(self)
        if self.status == Trial.TERMINATED:  # why: the controller keeps it packed (3. above)
            self._state_json = self.run_metadata._cached_json = None
        return state

    def set_status_finished_lean(self: Any, status: str) -> None:
        set_status(self, status)
        if status != Trial.TERMINATED:
            return
        meta = self.run_metadata  # why: a finished trial is never run again (3. above)
        meta.metric_n_steps = {}
        meta.last_result = {k: v for k, v in meta.last_result.items() if k in stored}
        manager = meta.checkpoint_manager
        for saved in (manager.latest_checkpoint_result, manager.best_checkpoint_result) if manager else ():
            if saved is not None:
                saved.metrics = {k: v for k, v in saved.metrics.items() if k in stored}

    def trial_checkpoints_packed(self: Any) -> dict[str, tuple[str, str]]:
        # Tune's own loop (TuneController._get_trial_checkpoints), a finished trial's JSON kept packed (3. above)
        for trial in self._trials_to_cache:
            jsons = trial.get_json_state()
            self._trial_metadata[trial.trial_id] = _pack(jsons) if trial.status == Trial.TERMINATED else jsons
        self._trials_to_cache.clear()
        return {trial_id: _unpack(entry) for trial_id, entry in self._trial_metadata.items()}

    _ExperimentCheckpointManager.on_trial_checkpoint = on_trial_checkpoint  # type: ignore[method-assign]
    _TrainingRunMetadata.update_metric = update_kept_metric  # type: ignore[method-assign]
    Trial.get_json_state = json_state_uncached_when_finished  # type: ignore[method-assign]
    Trial.set_status = set_status_finished_lean  # type: ignore[method-assign]
    TuneController._get_trial_checkpoints = trial_checkpoints_packed  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        _ExperimentCheckpointManager.on_trial_checkpoint = on_checkpoint  # type: ignore[method-assign]
        _TrainingRunMetadata.update_metric = update_metric  # type: ignore[method-assign]
        Trial.get_json_state, Trial.set_status = get_json_state, set_status  # type: ignore[method-assign]
        TuneController._get_trial_checkpoints = trial_checkpoints  # type: ignore[method-assign]
