"""A lost node costs a trial epochs, never the trial: only its own code's failures count against its retries.

Tune counts every failure against ``max_failures``. When a worker node dies (spot preemption, a killed raylet), a
trial on it fails with an actor error, and Tune retries it at once, often onto the node the cluster has not yet
marked dead, where it fails again within seconds: measured on a real two-node cluster, the trial's retries were
spent before the node was declared dead, and the trial ended failed. Here a failure the node caused does not
count: the trial is retried from its last checkpoint until a live node takes it. A failure of the trial's own code
(an exception, its worker process dying of memory or a crash) counts, ``USER_RETRIES`` times as before.

A trial can also meet a dying node while it is still starting: with ``reuse_actors`` Tune hands a finished trial's
actor to the next trial and resets it there, and if that actor's node is gone the reset fails while the trial is
PENDING, a state Tune sends straight to ERROR without a retry (``TuneController._process_trial_failure`` recovers
only RUNNING trials; a failed actor *creation* is set RUNNING first, a failed reset is not). ``NodeLossIsFree``
closes that gap (``_recover_failed_resets``): such a trial is retried like any trial its node failed.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

log = logging.getLogger(__name__)

USER_RETRIES = 2  # retries of a trial whose own code failed (Tune's FailureConfig(max_failures=2) before)

# What Ray says when an actor's node, not its process, went away (ray.exceptions.ActorDiedError's context, written by
# the GCS: "The actor died because its node has died", "the actor's node was terminated ..." / "... preempted").
_NODE_GONE = ("its node has died", "the actor's node was")


def node_lost(exc: BaseException | None) -> bool:
    """True when ``exc`` (a trial's failure) says the trial's node went away, not that its code failed."""
    from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

    if isinstance(exc, RayTaskError):
        cause = exc.as_instanceof_cause()
        if not isinstance(cause, RayActorError):
            return False  # the trial's own exception
        exc = cause
    if isinstance(exc, ActorUnavailableError):
        return True  # the connection to the actor's node broke (raylet gone); Ray calls it temporary
    if isinstance(exc, RayActorError):
        return exc.preempted or any(s in str(exc) for s in _NODE_GONE)
    return False


def _last_error(trial: Trial) -> BaseException | None:
    import ray.cloudpickle as cloudpickle

    try:
        with open(trial.pickled_error_file, "rb") as f:
            exc = cloudpickle.load(f)
    except Exception as e:  # why broad: an unreadable error file must not decide anything; count it as the trial's
        log.debug("could not read %s's error: %s", trial, e)
        return None
    return exc if isinstance(exc, BaseException) else None


class NodeLossIsFree(Callback):
    """Keeps each trial's retry budget for its own failures: after every failure, ``trial.max_failures`` is set to
    the failures so far plus the retries its code has left, so a node's failure never uses one up."""

    def __init__(self, user_retries: int = USER_RETRIES) -> None:
        self.user_retries = user_retries
        self.user_failures: Counter[str] = Counter()
        self.node_losses: Counter[str] = Counter()

    def setup(self, *args: Any, **info: Any) -> None:
        # why here: Tune calls setup() on a new and on a restored run alike (a restored run unpickles this callback)
        _recover_failed_resets()

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if node_lost(_last_error(trial)):
            self.node_losses[trial.trial_id] += 1
        else:
            self.user_failures[trial.trial_id] += 1
        left = max(0, self.user_retries - self.user_failures[trial.trial_id])
        trial.max_failures = trial.run_metadata.num_failures + left


def _recover_failed_resets() -> None:
    """Make Tune retry a trial whose reused actor's node died while the actor was being reset for it.

    Tune's controller sends a failed reset to ``_trial_task_failure`` with the trial still PENDING, and a PENDING
    trial's failure ends it (ERROR), where a RUNNING one's is retried. For a failure that says the node went away
    (``node_lost``) this sets the trial RUNNING first, as Tune itself does for an actor that fails while being created
    (``TuneController._actor_failed``), and forgets the reset (else the requeued trial would wait on it for ever);
    Tune then retries it from its last checkpoint and ``NodeLossIsFree.on_trial_recover`` does not count it. Any
    other failure of a reset is left to Tune. Installed once per process, on Ray Tune's controller class.
    """
    from ray.tune.execution.tune_controller import TuneController

    original = TuneController._trial_task_failure
    if getattr(original, "_wattsweep_resets", False):
        return

    @functools.wraps(original)
    def _trial_task_failure(self: TuneController, trial: Trial, exception: Exception) -> None:
        resetting: set[Trial] = getattr(self, "_resetting_trials", set())
        if trial.status == Trial.PENDING and trial in resetting and node_lost(exception):
            log.info("trial %s: its reused actor's node was lost while starting it; retrying it", trial)
            resetting.discard(trial)
            self._set_trial_status(trial, Trial.RUNNING)
        original(self, trial, exception)

    _trial_task_failure._wattsweep_resets = True  # type: ignore[attr-defined]
    TuneController._trial_task_failure = _trial_task_failure  # type: ignore[method-assign]
