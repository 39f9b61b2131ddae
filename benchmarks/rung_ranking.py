"""The driver's cost of one MO-ASHA decision at a rung of n trials (issue 19: what grows with trials).

Every trial reaching a rung is judged by ranking all points recorded there (``rung_order``): non-dominated sort,
then a tie break. Printed side by side in one run, per decision, for both tie breaks, and for the hypervolume tie
break computed by its definition (one hypervolume per left-out point, what ``hypervolume_contribution`` did
before) against the one-pass contributions it uses now (moocore). The points are a noisy accuracy-energy
trade-off (many fronts, tens of points per front), two objectives, as in the default sweep.

Usage: python benchmarks/rung_ranking.py [--sizes 100 1000 2000] [--reps 3]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # why: runnable as a script from any directory

from orchestrator.moasha_ranking import HV_REFERENCE, hypervolume_contribution, normalised_loss, rung_order
from reports.pareto import hypervolume, non_dominated_sort

DIRS = ["max", "min"]


def by_definition(loss: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """HV(front) - HV(front without the point), one hypervolume per distinct point (the former implementation)."""
    out = np.zeros(len(loss))
    mins, ref = ["min"] * loss.shape[1], [HV_REFERENCE] * loss.shape[1]
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        uniq, inverse = np.unique(loss[members], axis=0, return_inverse=True)
        total = hypervolume(uniq, mins, ref)
        c = np.array([total - hypervolume(np.delete(uniq, i, axis=0), mins, ref) for i in range(len(uniq))])
        out[members] = c[inverse.reshape(-1)]
    return out


def best_of(reps: int, fn: Callable[..., object], *args: object, **kw: object) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn(*args, **kw)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 2000])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"# {platform.node()} {platform.machine()} python {platform.python_version()}; best of {args.reps}")
    print(f"{'n':>6} {'fronts':>6} {'crowding ms':>12} {'hv (moocore) ms':>16} {'hv (definition) ms':>19} {'ratio':>7}")
    for n in args.sizes:
        joules = rng.uniform(10, 100, n)
        values = np.c_[1 - 1 / joules + rng.normal(0, 0.002, n), joules]
        loss, ranks = normalised_loss(values, DIRS), non_dominated_sort(values, DIRS)
        assert np.allclose(hypervolume_contribution(loss, ranks), by_definition(loss, ranks))
        crowd = best_of(args.reps, rung_order, values, DIRS, tie_break="crowding")
        hv = best_of(args.reps, rung_order, values, DIRS, tie_break="hypervolume")
        sort = best_of(args.reps, non_dominated_sort, values, DIRS)
        definition = sort + best_of(1, by_definition, loss, ranks)
        print(
            f"{n:>6} {ranks.max() + 1:>6} {crowd * 1e3:>12.1f} {hv * 1e3:>16.1f} {definition * 1e3:>19.1f}"
            f" {definition / hv:>6.0f}x"
        )


if __name__ == "__main__":
    main()
