"""The sweep's concurrency follows the cluster: a node that joins mid-sweep gets trials (``orchestrator.limiter``)."""

from __future__ import annotations

import pickle

import optuna
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from orchestrator.limiter import FollowClusterLimiter, follow_cluster
from search_spaces import parse_spec


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _search() -> OptunaSearch:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(
        space={"x": tune.uniform(0.0, 1.0)}, metric="a", mode="max", sampler=optuna.samplers.RandomSampler(seed=0)
    )


def test_a_node_that_joins_raises_the_limit_at_the_next_resize() -> None:
    cluster = {"slots": 1}
    clock = Clock()
    limiter = FollowClusterLimiter(_search(), 1, lambda: cluster["slots"], every_s=10.0, clock=clock)
    assert limiter.suggest("t1") is not None
    assert limiter.suggest("t2") is None  # one slot: the second trial waits
    cluster["slots"] = 3  # a node joins
    clock.t = 5.0
    assert limiter.suggest("t2") is None  # not asked again yet (at most every 10 s)
    clock.t = 10.0
    assert limiter.suggest("t2") is not None and limiter.suggest("t3") is not None
    assert limiter.suggest("t4") is None and limiter.max_concurrent == 3


def test_a_failing_resize_keeps_the_last_limit_and_the_limiter_pickles() -> None:
    clock = Clock()

    def broken() -> int:
        raise RuntimeError("GCS busy")

    limiter = FollowClusterLimiter(_search(), 2, broken, every_s=1.0, clock=clock)
    clock.t = 2.0
    assert limiter.suggest("t1") is not None and limiter.max_concurrent == 2
    spec = parse_spec({"name": "p"})
    restored = pickle.loads(pickle.dumps(follow_cluster(_search(), spec, 2)))  # Tune saves it with the experiment
    assert isinstance(restored, FollowClusterLimiter) and restored.max_concurrent == 2
