"""How many trials run at once, following the cluster as nodes join and leave.

Tune's ``max_concurrent_trials`` is fixed when the sweep starts. On an autoscaling cluster the sweep is sized from
the node types (``cluster_shape``), but a node added to a fixed cluster by hand (``ray start --address``), or a
cluster config that changed, would never be used. This limiter re-sizes the sweep from the cluster at most every
``every_s`` seconds when Tune asks for a new trial (about 25 ms on a local cluster, once per interval).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from ray.tune.search import ConcurrencyLimiter, Searcher

from search_spaces import SweepSpec

log = logging.getLogger(__name__)


def _cluster_slots(spec: SweepSpec) -> int:
    from orchestrator.ray_session import trial_resources

    return trial_resources(spec)[1]


class FollowClusterLimiter(ConcurrencyLimiter):
    """A ConcurrencyLimiter whose limit is ``slots()``, asked again at most every ``every_s`` seconds.

    ``slots``: trials the cluster can run at once now (picklable: Tune saves the searcher with the experiment).
    A failing ``slots()`` (the cluster busy, a node leaving) keeps the last limit.
    """

    def __init__(
        self,
        searcher: Searcher,
        max_concurrent: int,
        slots: Callable[[], int],
        *,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(searcher, max_concurrent=max_concurrent)
        self._slots, self._every_s, self._clock = slots, every_s, clock
        self._asked_at = clock()

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        now = self._clock()
        if now - self._asked_at >= self._every_s:
            self._asked_at = now
            try:
                slots = int(self._slots())
            except Exception as e:  # why broad: sizing is advice; the sweep must go on with the last limit
                log.debug("could not re-size the sweep from the cluster: %s", e)
            else:
                if slots >= 1 and slots != self.max_concurrent:
                    print(f"wattsweep: the cluster now holds {slots} trials at a time (was {self.max_concurrent})")
                    self.max_concurrent = slots
        return super().suggest(trial_id)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_clock"] = time.monotonic  # why: a test's clock must not be pickled into the experiment
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._asked_at = self._clock()


def follow_cluster(searcher: Searcher, spec: SweepSpec, slots: int) -> FollowClusterLimiter:
    """``searcher`` limited to the trials the cluster holds at once, re-sized as nodes join or leave."""
    return FollowClusterLimiter(searcher, slots, partial(_cluster_slots, spec))
