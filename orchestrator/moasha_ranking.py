"""Ranking the points recorded at one MO-ASHA rung, and where the rungs sit: pure functions, no Ray (see
``orchestrator.moasha``).

Order: non-dominated sorting first, then within a front a tie break (NSGA-II crowding distance, or each
point's exclusive hypervolume contribution), then arrival. Objectives are min-max normalised over the rung's
points, so joules and accuracy weigh the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from reports.pareto import as_minimisation, non_dominated_sort

__all__ = [
    "HV_REFERENCE",
    "TIE_BREAKS",
    "budget_share",
    "crowding_distance",
    "hypervolume_contribution",
    "non_dominated_sort",
    "normalised_loss",
    "rung_milestones",
    "rung_order",
    "survives",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
TIE_BREAKS = ("crowding", "hypervolume")
HV_REFERENCE = 1.1  # normalised loss of the hypervolume reference point on every objective (worst seen = 1)


def rung_milestones(grace_period: float, reduction_factor: float, max_t: float) -> list[float]:
    """The rungs: ``grace_period * reduction_factor**k`` for every k that stays below ``max_t``, ascending.

    Empty when ``grace_period >= max_t``: every trial then runs its whole budget.
    """
    out: list[float] = []
    milestone = grace_period
    while milestone < max_t:
        out.append(milestone)
        milestone *= reduction_factor
    return out


def budget_share(grace_period: float, reduction_factor: float, max_t: float) -> float:
    """The share of ``max_t`` a trial runs on average when exactly the top 1/eta goes on at every rung.

    Early stopping's floor per trial: with a sampler that draws as random search does (the same trials in the
    same order), a sweep reaches a given front after about as many trials as random search, so it spends about
    this share of random search's epochs on the way, and more for every trial that ``defer``, ``keep_front`` or a
    rung still short of eta points lets through, or that is stopped wrongly. Energy follows epochs only where an
    epoch costs about the same in every trial. Grace period 1, eta 3: 6 epochs 0.33, 9 epochs 0.26, 27 epochs 0.11.
    """
    run, share_left, last = 0.0, 1.0, 0.0
    for milestone in rung_milestones(grace_period, reduction_factor, max_t):
        run += share_left * (milestone - last)
        share_left, last = share_left / reduction_factor, milestone
    return (run + share_left * (max_t - last)) / max_t


def normalised_loss(values: npt.ArrayLike, directions: Sequence[str]) -> FloatArray:
    """Objectives as losses min-max scaled over the points: 0 = best seen, 1 = worst seen.

    An objective that is constant over the points is 0 for all of them.
    """
    loss = as_minimisation(values, directions)
    if len(loss) == 0:
        return loss
    best, span = loss.min(axis=0), np.ptp(loss, axis=0)
    # why: a constant objective separates nothing; dividing by 1 keeps it at 0 instead of NaN
    return np.asarray((loss - best) / np.where(span > 0, span, 1.0))


def crowding_distance(loss: FloatArray, ranks: IntArray) -> FloatArray:
    """NSGA-II crowding distance of every point within its own front (``ranks`` from non-dominated sorting).

    ``loss`` should be normalised (see ``normalised_loss``). The extremes of a front, and every
    point of a front with at most two distinct points, get ``inf``. Duplicates share one distance.
    """
    dist = np.zeros(len(loss))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        # why: computed over distinct points; NSGA-II on raw duplicates gives them arbitrary, different distances
        uniq, inverse = np.unique(loss[members], axis=0, return_inverse=True)
        d = np.zeros(len(uniq)) if len(uniq) > 2 else np.full(len(uniq), np.inf)
        for j in range(uniq.shape[1] if len(uniq) > 2 else 0):
            col = uniq[:, j]
            if np.ptp(col) == 0:
                continue  # why: an objective constant on the front has no extremes to protect
            order = np.argsort(col, kind="stable")
            d[order[[0, -1]]] = np.inf
            d[order[1:-1]] += col[order[2:]] - col[order[:-2]]
        dist[members] = d[inverse.reshape(-1)]
    return dist


def hypervolume_contribution(loss: FloatArray, ranks: IntArray) -> FloatArray:
    """Exclusive hypervolume of every point within its own front: HV(front) - HV(front without it).

    ``loss`` should be normalised (see ``normalised_loss``); the reference point is ``HV_REFERENCE`` on every
    objective. Duplicates share the contribution of their one distinct point (not 0 each).
    """
    import moocore

    contrib = np.zeros(len(loss))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        uniq, inverse = np.unique(loss[members], axis=0, return_inverse=True)
        # why moocore: all contributions of a front in one pass (a sweep over the sorted front for two objectives),
        # where one hypervolume per left-out point made a decision at a rung of 2,000 trials take ~0.9 s here
        # against ~17 ms; with one objective a front is one distinct value, its hypervolume all its own
        one = uniq.shape[1] == 1
        c = HV_REFERENCE - uniq[:, 0] if one else moocore.hv_contributions(uniq, ref=HV_REFERENCE)
        contrib[members] = c[inverse.reshape(-1)]
    return contrib


def rung_order(
    values: npt.ArrayLike,
    directions: Sequence[str],
    *,
    weights: Sequence[float] | None = None,
    tie_break: str = "crowding",
) -> IntArray:
    """Indices of the points, best first. Points must be in the order they were recorded.

    Without ``weights``: by front, then ``tie_break`` (crowding distance or hypervolume contribution,
    larger first), then arrival. With ``weights``: by the weighted sum of ``normalised_loss`` (smaller
    first), then arrival.
    """
    loss = normalised_loss(values, directions)
    arrival = np.arange(len(loss))
    if weights is not None:
        return np.lexsort((arrival, loss @ np.asarray(weights, dtype=np.float64)))
    ranks = non_dominated_sort(values, directions)
    spread = hypervolume_contribution(loss, ranks) if tie_break == "hypervolume" else crowding_distance(loss, ranks)
    return np.lexsort((arrival, -spread, ranks))


def survives(
    values: npt.ArrayLike,
    directions: Sequence[str],
    index: int,
    reduction_factor: float,
    *,
    weights: Sequence[float] | None = None,
    tie_break: str = "crowding",
) -> bool:
    """Whether point ``index`` is in the top ``ceil(n / reduction_factor)`` (always, while n < reduction_factor)."""
    n = len(as_minimisation(values, directions))
    if n < reduction_factor:
        return True  # why: too few points at the rung to judge anyone (ASHA's rule); see ``defer`` for the other
    keep = math.ceil(n / reduction_factor)
    return bool(index in rung_order(values, directions, weights=weights, tie_break=tie_break)[:keep])
