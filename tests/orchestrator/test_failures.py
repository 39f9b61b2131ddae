"""Only a trial's own failures use up its retries: a lost node costs epochs, never the trial.

Real Tune trials and Ray's own exception classes: ``Trial.handle_error`` counts and stores each failure as Tune does
in a sweep, ``Trial.should_recover`` decides as Tune does, and the sweep's callback adjusts the budget between.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray.core.generated.common_pb2 import ActorDiedErrorContext
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayTaskError
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial

from orchestrator.failures import USER_RETRIES, NodeLossIsFree, node_lost

ACTOR = b"\x01" * 16


def _node_died() -> ActorDiedError:
    return ActorDiedError(
        ActorDiedErrorContext(error_message="The actor died because its node has died. Node Id: 1f", actor_id=ACTOR)
    )


def _socket_closed() -> ActorUnavailableError:
    return ActorUnavailableError("RpcError: RPC Error message: Socket closed; RPC Error details:", ACTOR)


def _user_error() -> RayTaskError:
    try:
        raise ValueError("boom from the user's code")
    except ValueError as e:
        return RayTaskError("train", "Traceback ...", e)


def _oom_killed() -> ActorDiedError:
    msg = "The actor is dead because its worker process has died. Worker exit type: NODE_OUT_OF_MEMORY"
    return ActorDiedError(ActorDiedErrorContext(error_message=msg, actor_id=ACTOR))


def test_what_counts_as_a_lost_node() -> None:
    assert node_lost(_node_died()) and node_lost(_socket_closed())
    assert not node_lost(_user_error()) and not node_lost(_oom_killed())  # the trial's own: its memory, its code
    assert not node_lost(None)


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """Tune keeps a trial's driver-side files in the Ray session's directory: a real local Ray, one CPU."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, configure_logging=False)
    yield
    if started:
        ray.shutdown()


def _trial(tmp_path: Path) -> Trial:
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="tune", trial_dir_name="trial_a")
    trial = Trial("tune_trainable", stub=True, storage=storage, max_failures=USER_RETRIES, trial_id="a")
    trial.init_local_path()
    return trial


def _fail(trial: Trial, policy: NodeLossIsFree, exc: BaseException) -> bool:
    """One failure as Tune's controller handles it; whether the trial is retried."""
    trial.handle_error(exc)
    if not trial.should_recover():
        return False
    policy.on_trial_recover(0, [trial], trial)
    return True


def test_node_losses_never_end_a_trial_its_own_failures_do(tmp_path: Path) -> None:
    trial, policy = _trial(tmp_path), NodeLossIsFree()
    # a node killed mid-sweep: Tune retries at once onto the dying node, again and again, before it is marked dead
    assert all(_fail(trial, policy, _socket_closed()) for _ in range(8))
    assert policy.node_losses["a"] == 8 and trial.run_metadata.num_failures == 8
    # the trial's own code fails: retried USER_RETRIES times, then it ends, as with max_failures=2 before
    assert [_fail(trial, policy, _user_error()) for _ in range(USER_RETRIES + 1)] == [True] * USER_RETRIES + [False]


def test_without_the_policy_a_node_loss_streak_ends_the_trial(tmp_path: Path) -> None:
    # what happened before: Tune's own count, max_failures=2, three quick failures on the dying node
    trial = _trial(tmp_path)
    outcomes = []
    for _ in range(3):
        trial.handle_error(_socket_closed())
        outcomes.append(trial.should_recover())
    assert outcomes == [True, True, False]
