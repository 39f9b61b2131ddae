"""Tune's experiment snapshot on its own period, not after every trial checkpoint.

Tune writes a snapshot of the whole experiment (every trial's state, the pickled searcher, the callbacks' state)
so that a driver that dies can be resumed. Its period adapts to what the snapshot costs (at least 10 s, at most 5%
of the time). But with ``CheckpointConfig(num_to_keep=N)`` Tune also forces a snapshot after every N-th checkpoint
of any trial (``_ExperimentCheckpointManager.on_trial_checkpoint``, marked in Ray as "a non-performant
workaround"), so that the snapshot never names a checkpoint ``num_to_keep`` has deleted. wattsweep keeps one
checkpoint per trial and checkpoints every epoch, so that rule wrote the whole experiment after every epoch of every
trial: work that grows with trials x reports. Measured with ``benchmarks/scale.py`` (300 trials of 2 epochs, 8
slots, 2-core machine): half of the driver's samples were in that snapshot.

wattsweep does not need the workaround: a resumed sweep repoints a trial whose snapshot names a deleted checkpoint
at the one Tune kept (``orchestrator.recorder._repoint_lost_checkpoint``), and the run directory, written before Tune
registers a checkpoint, holds every epoch. So, while a sweep runs, the snapshot follows Tune's adaptive period only
(Tune still writes one at the end). Installed around ``Tuner.fit`` and undone after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def snapshots_on_period() -> Iterator[None]:
    """While the block runs, Tune's experiment snapshot is written on its adaptive period only."""
    from ray.tune.execution.experiment_state import _ExperimentCheckpointManager

    original = _ExperimentCheckpointManager.on_trial_checkpoint

    def on_trial_checkpoint(self: Any, trial: Any) -> None:
        return None  # why: no forced snapshot per trial checkpoint (module docstring)

    _ExperimentCheckpointManager.on_trial_checkpoint = on_trial_checkpoint  # type: ignore[method-assign]
    try:
        yield
    finally:
        _ExperimentCheckpointManager.on_trial_checkpoint = original  # type: ignore[method-assign]
