"""Pareto analysis as pure numpy functions: fronts, hypervolume, knee.

Every function takes ``values`` (an ``(n, m)`` array: n points, m objectives)
and ``directions`` (m strings, ``"max"`` or ``"min"``), so each objective keeps
its own direction. Internally everything is turned into minimisation.

Dominance: ``a`` dominates ``b`` when ``a`` is at least as good in every
objective and strictly better in one. Two identical points therefore do not
dominate each other: duplicates share their front (both are non-dominated when
they sit on the first one), and ties in one objective are decided by the others.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

Direction = Literal["max", "min"]
FloatArray = npt.NDArray[np.float64]

KNEE_RULE = (
    "knee = the front point closest (Euclidean) to the utopia point after min-max normalising "
    "each objective over the front (0 = its worst front value, 1 = its best); ties go to the earlier trial"
)


def as_minimisation(values: npt.ArrayLike, directions: Sequence[str]) -> FloatArray:
    """Return a float copy of ``values`` with every ``"max"`` column negated."""
    arr = np.array(values, dtype=np.float64, ndmin=2)
    if arr.size == 0:
        return arr.reshape(0, len(directions))
    if arr.ndim != 2 or arr.shape[1] != len(directions):
        raise ValueError(f"values must be (n, {len(directions)}) for {len(directions)} directions, got {arr.shape=}.")
    for d in directions:
        if d not in ("max", "min"):
            raise ValueError(f"Each direction must be 'max' or 'min', but got {d!r}.")
    if np.isnan(arr).any():
        raise ValueError("values contain NaN: drop the points without a value first.")
    signs = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return arr * signs


def _unique_rows(loss: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Distinct rows in lexicographic order (first column first), and each input row's index among them."""
    # why not np.unique(axis=0): it sorts a structured view, several times slower than lexsort
    order = np.lexsort(loss.T[::-1])
    ordered = loss[order]
    starts = np.ones(len(loss), dtype=bool)
    starts[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(len(loss), dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse


def _front_mask_2d_unique(uniq: FloatArray) -> npt.NDArray[np.bool_]:
    # Rows are distinct and sorted by (f1, f2): a row is dominated exactly when an
    # earlier row has f2 <= its f2 (the earlier row has f1 <= too, and differs).
    f2 = uniq[:, 1]
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(f2)[:-1]))
    return np.asarray(f2 < best_before)


def _front_mask_nd_unique(uniq: FloatArray) -> npt.NDArray[np.bool_]:
    # Rows are distinct and in lexicographic order, so a dominator always comes before what it dominates.
    # The first remaining row is therefore on the front (anything that dominated it was earlier, and was
    # either on the front, which would have removed it, or dominated by a front row, which dominates it
    # too); each front row removes everything it dominates in one vectorised step.
    mask = np.zeros(len(uniq), dtype=bool)
    remaining = np.arange(len(uniq))
    while len(remaining):
        first, rest = remaining[0], remaining[1:]
        mask[first] = True
        remaining = rest[~np.all(uniq[first] <= uniq[rest], axis=1)]
    return mask


def pareto_front_mask(values: npt.ArrayLike, directions: Sequence[str]) -> npt.NDArray[np.bool_]:
    """Boolean mask of the non-dominated points (duplicates of a front point are all on it).

    Two objectives take O(n log n) (a sort and one sweep); more take O(n * front size).
    """
    loss = as_minimisation(values, directions)
    if len(loss) == 0:
        return np.zeros(0, dtype=bool)
    uniq, inverse = _unique_rows(loss)
    if loss.shape[1] == 1:
        return np.asarray(loss[:, 0] == loss[:, 0].min())
    on_front = _front_mask_2d_unique(uniq) if loss.shape[1] == 2 else _front_mask_nd_unique(uniq)
    return on_front[inverse]


def _ranks_2d_unique(uniq: FloatArray) -> npt.NDArray[np.intp]:
    # Patience sorting over the (f1, f2)-sorted distinct rows: front k is dominated-free
    # for a row exactly when its most recent member has a lexicographically larger
    # (f2, f1); those keys increase with k, so a binary search finds the first such front.
    # why keys are ranks: bisect on ints is far faster than on float tuples.
    key_order = np.lexsort((uniq[:, 0], uniq[:, 1]))
    key = np.empty(len(uniq), dtype=np.intp)
    key[key_order] = np.arange(len(uniq))
    tops: list[int] = []
    ranks = np.empty(len(uniq), dtype=np.intp)
    for i, k in enumerate(key.tolist()):
        r = bisect.bisect_left(tops, k)
        if r == len(tops):
            tops.append(k)
        else:
            tops[r] = k
        ranks[i] = r
    return ranks


def non_dominated_sort(values: npt.ArrayLike, directions: Sequence[str]) -> npt.NDArray[np.intp]:
    """Front number of every point: 0 for the Pareto front, 1 for the front once 0 is removed, ...

    Two objectives take O(n log n) in total; more objectives peel one front at a time.
    """
    loss = as_minimisation(values, directions)
    if len(loss) == 0:
        return np.zeros(0, dtype=np.intp)
    uniq, inverse = _unique_rows(loss)
    if loss.shape[1] == 1:
        ranks = np.arange(len(uniq), dtype=np.intp)
    elif loss.shape[1] == 2:
        ranks = _ranks_2d_unique(uniq)
    else:
        ranks = np.full(len(uniq), -1, dtype=np.intp)
        remaining = np.arange(len(uniq))
        front = 0
        while len(remaining):
            on = _front_mask_nd_unique(uniq[remaining])
            ranks[remaining[on]] = front
            remaining = remaining[~on]
            front += 1
    return ranks[inverse]


def reference_point(values: npt.ArrayLike, directions: Sequence[str], *, margin: float = 0.1) -> FloatArray:
    """The worst value of each objective, pushed ``margin`` x its range further (in the given directions).

    A constant objective is pushed by ``margin`` x max(|value|, 1) so the volume stays positive.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, but got {margin=}.")
    loss = as_minimisation(values, directions)
    if len(loss) == 0:
        raise ValueError("reference_point needs at least one point.")
    worst, best = loss.max(axis=0), loss.min(axis=0)
    span = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1.0))
    ref_loss = worst + margin * span
    signs = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return np.asarray(ref_loss * signs)


def _hypervolume_2d(loss: FloatArray, ref: FloatArray) -> float:
    uniq, _ = _unique_rows(loss)
    front = uniq[_front_mask_2d_unique(uniq)]  # f1 ascending, f2 descending
    widths = np.diff(np.append(front[:, 0], ref[0]))
    return float(np.sum(widths * (ref[1] - front[:, 1])))


def _hypervolume_nd(loss: FloatArray, ref: FloatArray) -> float:
    # why a library: exact hypervolume in >= 3 objectives is subtle (WFG / HV4D algorithms);
    # moocore is maintained for exactly this. Optuna 5 has no public hypervolume function,
    # so its private WFG code is only the fallback when moocore is not installed.
    try:
        import moocore

        return float(moocore.hypervolume(loss, ref=ref))
    except ImportError:
        from optuna._hypervolume import compute_hypervolume

        return float(compute_hypervolume(loss, ref))


def hypervolume(values: npt.ArrayLike, directions: Sequence[str], reference: npt.ArrayLike) -> float:
    """Volume of objective space dominated by the points and bounded by ``reference``.

    ``reference`` is in the objectives' own units and directions (e.g. accuracy 0.0, energy 1e5 J).
    Points not strictly better than the reference in every objective add nothing.
    Exact: a sort-and-sweep for two objectives, moocore (or Optuna's WFG) for more.
    """
    loss = as_minimisation(values, directions)
    ref = as_minimisation(np.asarray(reference, dtype=np.float64).reshape(1, -1), directions)[0]
    loss = loss[np.all(loss < ref, axis=1)]
    if len(loss) == 0:
        return 0.0
    if loss.shape[1] == 1:
        return float(ref[0] - loss[:, 0].min())
    if loss.shape[1] == 2:
        return _hypervolume_2d(loss, ref)
    return _hypervolume_nd(loss, ref)


def hypervolume_history(
    values: npt.ArrayLike,
    directions: Sequence[str],
    reference: npt.ArrayLike,
    *,
    n_checkpoints: int = 200,
) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Hypervolume of the first k points, at up to ``n_checkpoints`` evenly spaced k (always the last).

    Returns ``(k, hv)``: the prefix lengths and their hypervolumes. Points must be in the order they arrived.
    """
    if n_checkpoints < 1:
        raise ValueError(f"n_checkpoints must be >= 1, but got {n_checkpoints=}.")
    arr = np.array(values, dtype=np.float64, ndmin=2)
    n = len(arr) if arr.size else 0
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0)
    ks = np.unique(np.linspace(1, n, num=min(n, n_checkpoints)).round().astype(np.intp))
    hv = np.array([hypervolume(arr[:k], directions, reference) for k in ks])
    return ks, hv


def knee_index(values: npt.ArrayLike, directions: Sequence[str]) -> int:
    """Index (into ``values``) of the knee of the Pareto front, by the rule in ``KNEE_RULE``."""
    loss = as_minimisation(values, directions)
    if len(loss) == 0:
        raise ValueError("knee_index needs at least one point.")
    on = np.flatnonzero(pareto_front_mask(values, directions))
    front = loss[on]
    best, worst = front.min(axis=0), front.max(axis=0)
    span = worst - best
    # why: an objective that is constant over the front cannot separate points: all score 1 (best)
    goodness = np.where(span > 0, (worst - front) / np.where(span > 0, span, 1.0), 1.0)
    distance = np.sqrt(np.sum((1.0 - goodness) ** 2, axis=1))
    return int(on[np.argmin(distance)])  # argmin takes the first minimum: the earlier trial wins ties
