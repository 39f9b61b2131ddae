"""MO-ASHA: the ranking on hand-made rungs, the scheduler's decisions, and one real Tune run."""

from __future__ import annotations

import logging
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ray.tune.schedulers import TrialScheduler

from orchestrator.moasha import (
    MOASHAScheduler,
    WeightedSumASHA,
    crowding_distance,
    hypervolume_contribution,
    normalised_loss,
    rung_order,
    survives,
)
from orchestrator.moasha_ranking import HV_REFERENCE, budget_share, rung_milestones
from reports.pareto import non_dominated_sort

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
DIRS = ["max", "min"]  # (accuracy, energy_j)

# The worked example, in arrival order at one rung (eta = 3):
#   A (0.90, 10)  B (0.80, 5)  C (0.70, 20)  D (0.95, 30)  E (0.60, 25)  F (0.85, 12)
# Fronts (max accuracy, min joules):
#   front 0 = {A, B, D}: nobody is both as accurate and as cheap as any of them
#             (D most accurate, B cheapest, A: only D is more accurate and D costs more).
#   front 1 = {F}: F is dominated by A only (0.90 >= 0.85, 10 <= 12).
#   front 2 = {C}: dominated by A, B, F; front 3 = {E}: dominated by C too (0.70 > 0.60, 20 < 25).
# Crowding in front 0, objectives normalised over the six points (accuracy span 0.35, joules span 25):
#   B and D are the front's extremes -> inf; A = (0.95 - 0.80) / 0.35 + (30 - 5) / 25 = 0.4286 + 1.0 = 1.43.
# Order: B, D (both inf; B recorded first), A, F, C, E. Keep ceil(6 / 3) = 2: B and D survive.
A, B, C, D, E, F = (0.9, 10.0), (0.8, 5.0), (0.7, 20.0), (0.95, 30.0), (0.6, 25.0), (0.85, 12.0)
SIX = [A, B, C, D, E, F]

# Asynchronously, each trial is judged on arrival against the points recorded so far:
#   A: n=1 < 3 -> CONTINUE.   B: n=2 < 3 -> CONTINUE.
#   C: n=3, keep 1: C is dominated by A and B -> STOP.
#   D: n=4, keep 2: front 0 = {A, B, D}; with accuracy span now 0.25, B and D are extremes (inf),
#      A = 0.15 / 0.25 + 25 / 25 = 1.6 -> order B, D, A, C: D is 2nd -> CONTINUE.
#   E: n=5, keep 2: E is dominated by C -> STOP.
#   F: n=6, keep 2: F is behind all of front 0 -> STOP.
ARRIVAL_DECISIONS = [CONTINUE, CONTINUE, STOP, CONTINUE, STOP, STOP]


# Ranking --------------------------------------------------------------------------------------
def test_worked_example_fronts_crowding_and_order() -> None:
    ranks = non_dominated_sort(SIX, DIRS)
    assert ranks.tolist() == [0, 0, 2, 0, 3, 1]
    crowd = crowding_distance(normalised_loss(SIX, DIRS), ranks)
    assert crowd[0] == pytest.approx(0.15 / 0.35 + 25 / 25)
    assert np.isinf(crowd[[1, 2, 3, 4, 5]]).all()  # extremes of front 0, and the single-point fronts
    assert rung_order(SIX, DIRS).tolist() == [1, 3, 0, 5, 2, 4]  # B, D, A, F, C, E
    assert [survives(SIX, DIRS, i, 3) for i in range(6)] == [False, True, False, True, False, False]


def test_arrival_decisions_use_points_recorded_so_far() -> None:
    got = [CONTINUE if survives(SIX[: k + 1], DIRS, k, 3) else STOP for k in range(6)]
    assert got == ARRIVAL_DECISIONS


def test_fewer_than_eta_points_always_continue() -> None:
    # (0.1, 100) is dominated by (0.9, 1), but with 2 < 3 points recorded nobody is judged yet.
    assert survives([(0.9, 1.0), (0.1, 100.0)], DIRS, 1, 3)
    # with eta = 2, two points are enough: keep ceil(2 / 2) = 1, the dominated one stops.
    assert not survives([(0.9, 1.0), (0.1, 100.0)], DIRS, 1, 2)
    assert survives([(0.1, 100.0), (0.9, 1.0)], DIRS, 1, 2)


def test_mixed_directions() -> None:
    # (loss min, accuracy max): P0 = (0.5, 0.8), P1 = (0.3, 0.7), P2 = (0.6, 0.6).
    # P2 is dominated by P0 (0.5 < 0.6 and 0.8 > 0.6); P0 and P1 trade off -> both on front 0,
    # both extremes (inf) -> arrival order: P0, P1, P2.
    pts = [(0.5, 0.8), (0.3, 0.7), (0.6, 0.6)]
    assert rung_order(pts, ["min", "max"]).tolist() == [0, 1, 2]
    # Read as (loss max, accuracy min) the roles flip: P2 has the largest "loss" and smallest "accuracy",
    # so it dominates both others: P2 first; P0 and P1 then trade off on front 1 -> arrival order.
    assert rung_order(pts, ["max", "min"]).tolist() == [2, 0, 1]


def test_duplicates_share_rank_and_distance_and_the_earlier_wins() -> None:
    # Two identical points X = (0.9, 10), then Y = (0.5, 50) dominated by both.
    # X twice is one distinct point on front 0 (inf); the earlier X leads, the later one is 2nd.
    pts = [(0.9, 10.0), (0.9, 10.0), (0.5, 50.0)]
    crowd = crowding_distance(normalised_loss(pts, DIRS), non_dominated_sort(pts, DIRS))
    assert crowd[0] == crowd[1]
    assert rung_order(pts, DIRS).tolist() == [0, 1, 2]
    # With a 3rd distinct front-0 point in between, the duplicates' shared distance stays equal.
    pts = [(0.9, 10.0), (0.95, 20.0), (0.9, 10.0), (0.8, 5.0)]
    crowd = crowding_distance(normalised_loss(pts, DIRS), non_dominated_sort(pts, DIRS))
    assert crowd[0] == crowd[2] and np.isfinite(crowd[0])  # the middle point of (0.8,5)-(0.9,10)-(0.95,20)
    assert rung_order(pts, DIRS).tolist() == [1, 3, 0, 2]


def test_three_objectives() -> None:
    # (accuracy max, energy min, params min). Q3 = (0.7, 30, 9) is dominated by Q0 = (0.9, 10, 5);
    # Q0, Q1, Q2 are mutually non-dominated; each is an extreme in some objective -> inf -> arrival order.
    pts = [(0.9, 10.0, 5.0), (0.8, 5.0, 8.0), (0.95, 20.0, 9.0), (0.7, 30.0, 9.0)]
    assert rung_order(pts, ["max", "min", "min"]).tolist() == [0, 1, 2, 3]
    assert not survives(pts, ["max", "min", "min"], 3, 3)  # keep ceil(4 / 3) = 2


def test_weighted_sum_order() -> None:
    # Normalised losses over SIX: accuracy (0.95 - acc) / 0.35, joules (J - 5) / 25; weights (1, 1):
    #   A 0.143 + 0.20 = 0.343   B 0.429 + 0 = 0.429   C 0.714 + 0.6 = 1.314
    #   D 0     + 1.0  = 1.0     E 1.0   + 0.8 = 1.8   F 0.286 + 0.28 = 0.566
    # -> A, B, F, D, C, E: the knee A survives here, the expensive D does not (contrast the Pareto order).
    assert rung_order(SIX, DIRS, weights=[1, 1]).tolist() == [0, 1, 5, 3, 2, 4]
    assert rung_order(SIX, DIRS, weights=[1, 0]).tolist() == [3, 0, 5, 1, 2, 4]  # accuracy alone


def test_hypervolume_tie_break_worked_example() -> None:
    # Normalised losses over SIX (accuracy (0.95 - acc) / 0.35, joules (J - 5) / 25), reference (1.1, 1.1).
    # Front 0 sorted by accuracy loss: D (0, 1), A (1/7, 0.2), B (3/7, 0). Exclusive contributions:
    #   D = (1/7 - 0) * (1.1 - 1.0)     = 0.0143  (most accurate, but the costliest: adds a sliver)
    #   A = (3/7 - 1/7) * (1.0 - 0.2)   = 0.2286  (the knee)
    #   B = (1.1 - 3/7) * (0.2 - 0)     = 0.1343  (the cheapest)
    # Order: A, B, D, then F, C, E. Keep ceil(6 / 3) = 2: A and B survive; crowding kept B and D.
    loss = normalised_loss(SIX, DIRS)
    contrib = hypervolume_contribution(loss, non_dominated_sort(SIX, DIRS))
    assert contrib[[3, 0, 1]] == pytest.approx([1 / 7 * 0.1, 2 / 7 * 0.8, (1.1 - 3 / 7) * 0.2])
    assert rung_order(SIX, DIRS, tie_break="hypervolume").tolist() == [0, 1, 3, 5, 2, 4]
    assert [survives(SIX, DIRS, i, 3, tie_break="hypervolume") for i in range(6)] == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]


def test_hypervolume_contribution_of_duplicates_is_shared() -> None:
    # X twice and Z: one distinct X, so both copies get X's contribution (not 0, as "HV without this copy" would)
    pts = [(0.9, 10.0), (0.95, 20.0), (0.9, 10.0)]
    contrib = hypervolume_contribution(normalised_loss(pts, DIRS), non_dominated_sort(pts, DIRS))
    assert contrib[0] == contrib[2] > 0
    assert rung_order(pts, DIRS, tie_break="hypervolume").tolist()[-1] == 2  # the later copy is last


@settings(max_examples=100, deadline=None)
@given(
    pts=st.lists(st.tuples(*(st.integers(0, 50).map(float),) * 3), min_size=1, max_size=30),
    dims=st.sampled_from([1, 2, 3]),
)
def test_hypervolume_contribution_is_the_hypervolume_lost_without_the_point(
    pts: list[tuple[float, float, float]], dims: int
) -> None:
    # the definition, one hypervolume per left-out distinct point, against the one-pass contributions used
    from reports.pareto import hypervolume

    directions = ["min"] * dims
    loss = normalised_loss([p[:dims] for p in pts], directions)
    ranks = non_dominated_sort(loss, directions)
    got = hypervolume_contribution(loss, ranks)
    ref = [HV_REFERENCE] * dims
    for i in range(len(loss)):
        front = np.unique(loss[ranks == ranks[i]], axis=0)
        without = front[np.any(front != loss[i], axis=1)]
        assert got[i] == pytest.approx(hypervolume(front, directions, ref) - hypervolume(without, directions, ref))


# why integers, power-of-two scales and integer shifts: the transformed points are exact in floating point,
# so the test checks the ranking, not rounding (a shift of 1.0 can erase a 1e-68 difference).
coord = st.integers(-1000, 1000).map(float)


@settings(max_examples=200, deadline=None)
@given(
    pts=st.lists(st.tuples(coord, coord), min_size=1, max_size=25),
    scale=st.tuples(st.sampled_from([0.25, 0.5, 1.0, 2.0, 1024.0]), st.sampled_from([0.25, 1.0, 8.0, 4096.0])),
    shift=st.tuples(coord, coord),
)
def test_order_is_a_permutation_fronts_first_and_unit_free(
    pts: list[tuple[float, float]], scale: tuple[float, float], shift: tuple[float, float]
) -> None:
    order = rung_order(pts, DIRS)
    assert sorted(order.tolist()) == list(range(len(pts)))
    ranks = non_dominated_sort(pts, DIRS)
    assert (np.diff(ranks[order]) >= 0).all()  # no point ahead of a better front
    # why: joules vs kilojoules, or an offset, must not change who survives
    moved = [(a * scale[0] + shift[0], b * scale[1] + shift[1]) for a, b in pts]
    assert rung_order(moved, DIRS).tolist() == order.tolist()


# Scheduler ------------------------------------------------------------------------------------
@dataclass
class StubTrial:
    """The part of ray.tune.experiment.Trial the scheduler touches."""

    trial_id: str


def result(epoch: int, acc: float, joules: float) -> dict[str, Any]:
    return {"epoch": epoch, "accuracy": acc, "energy_j": joules}


def make(**kw: Any) -> MOASHAScheduler:
    return MOASHAScheduler(
        objectives=[("accuracy", "max"), ("energy_j", "min")],
        time_attr="epoch",
        grace_period=1,
        reduction_factor=3,
        **kw,
    )


def test_scheduler_decisions_follow_the_worked_example() -> None:
    s = make(max_t=9)
    assert s.milestones == [1, 3]
    got = [s.on_trial_result(None, StubTrial(n), result(1, *p)) for n, p in zip("ABCDEF", SIX, strict=True)]
    assert got == ARRIVAL_DECISIONS
    assert list(s.recorded(1)) == list("ABCDEF")
    # epoch 2 is no rung: everyone still running continues without being judged again
    assert s.on_trial_result(None, StubTrial("A"), result(2, 0.1, 99.0)) == CONTINUE


def test_keep_front_lets_a_trial_on_the_rungs_front_go_on_outside_the_top_third() -> None:
    # arrivals B, D, C, E, A, F at one rung: A comes 5th of 5, keep ceil(5 / 3) = 2; front 0 = {B, D, A}, and A,
    # the only finite crowding distance of it, is 3rd: the top 1/3 stops it, keep_front lets it go on (it is on
    # the front); F (front 1, dominated by A) stops either way
    order = [("B", B), ("D", D), ("C", C), ("E", E), ("A", A), ("F", F)]
    plain, wide = make(max_t=9), make(max_t=9, keep_front=True)
    assert [plain.on_trial_result(None, StubTrial(n), result(1, *p)) for n, p in order] == [
        CONTINUE, CONTINUE, STOP, STOP, STOP, STOP
    ]  # fmt: skip
    assert [wide.on_trial_result(None, StubTrial(n), result(1, *p)) for n, p in order] == [
        CONTINUE, CONTINUE, STOP, STOP, CONTINUE, STOP
    ]  # fmt: skip


def test_each_rung_ranks_only_its_own_points() -> None:
    s = make(max_t=9)
    for n, p in zip("ABCDEF", SIX, strict=True):
        s.on_trial_result(None, StubTrial(n), result(1, *p))
    # A, B, D reach epoch 3. Rung 3 is empty before them: two continue regardless, the third is judged
    # against those two only: keep 1 of 3. D3 = (0.97, 90) and B3 = (0.85, 15) trade off; A3 = (0.8, 40)
    # is dominated by B3 -> STOP.
    assert s.on_trial_result(None, StubTrial("D"), result(3, 0.97, 90.0)) == CONTINUE
    assert s.on_trial_result(None, StubTrial("B"), result(3, 0.85, 15.0)) == CONTINUE
    assert s.on_trial_result(None, StubTrial("A"), result(3, 0.80, 40.0)) == STOP
    assert s.recorded(3) == {"D": [0.97, 90.0], "B": [0.85, 15.0], "A": [0.8, 40.0]}
    assert s.on_trial_result(None, StubTrial("D"), result(9, 0.98, 270.0)) == STOP  # max_t reached


def test_deferred_early_arrivals_are_judged_once_the_rung_holds_eta() -> None:
    s = make(max_t=9, defer=True)
    # A and B arrive at rung 1 with 1 and 2 points there: no top 1/3 yet, and A and B trade off (neither
    # dominates): both go on for now (ASHA would pass them for good)
    assert s.on_trial_result(None, StubTrial("A"), result(1, *A)) == CONTINUE
    assert s.on_trial_result(None, StubTrial("B"), result(1, *B)) == CONTINUE
    # C makes 3 points: keep 1. A and B trade off (both extremes, inf): A, recorded first, leads -> C stops
    assert s.on_trial_result(None, StubTrial("C"), result(1, *C)) == STOP
    # at their next reports A and B are judged against A, B, C as recorded at rung 1: A 1st of 3, B 2nd
    assert s.on_trial_result(None, StubTrial("A"), result(2, 0.1, 99.0)) == CONTINUE
    assert s.on_trial_result(None, StubTrial("B"), result(2, 0.99, 1.0)) == STOP
    # A's judgement is final: later epochs below the next rung are not judged again
    assert s.on_trial_result(None, StubTrial("A"), result(2, 0.1, 99.0)) == CONTINUE
    assert s.recorded(1) == {"A": list(A), "B": list(B), "C": list(C)}


def test_deferred_trial_stops_when_a_later_arrival_dominates_it() -> None:
    s = make(max_t=9, defer=True)
    assert s.on_trial_result(None, StubTrial("X"), result(1, 0.5, 10.0)) == CONTINUE  # alone at rung 1
    assert s.on_trial_result(None, StubTrial("Y"), result(1, 0.9, 5.0)) == CONTINUE  # dominates X; n = 2 < 3
    assert s.on_trial_result(None, StubTrial("X"), result(2, 0.6, 20.0)) == STOP  # judged again: dominated
    # without defer, X would have gone on to the next rung (n < 3 on arrival)
    plain = make(max_t=9)
    plain.on_trial_result(None, StubTrial("X"), result(1, 0.5, 10.0))
    plain.on_trial_result(None, StubTrial("Y"), result(1, 0.9, 5.0))
    assert plain.on_trial_result(None, StubTrial("X"), result(2, 0.6, 20.0)) == CONTINUE


def test_a_deferred_trial_past_the_next_rung_is_still_held_to_the_first() -> None:
    s = make(max_t=9, defer=True)
    assert s.on_trial_result(None, StubTrial("X"), result(1, 0.5, 100.0)) == CONTINUE  # rung 1: alone
    assert s.on_trial_result(None, StubTrial("X"), result(3, 0.6, 300.0)) == CONTINUE  # rung 3: alone
    clone = pickle.loads(pickle.dumps(s))  # the pending judgements travel with Tune's experiment state
    # Y reaches rung 1 and trades off with X there (more accurate, dearer): X goes on
    assert s.on_trial_result(None, StubTrial("Y"), result(1, 0.9, 150.0)) == CONTINUE
    assert s.on_trial_result(None, StubTrial("X"), result(4, 0.6, 400.0)) == CONTINUE
    # Z makes 3 points at rung 1: keep 1. Z (0.95, 50) dominates X and Y -> Z goes on; X, judged again at
    # rung 1 (where it was passed on too little evidence), is outside the top 1 -> STOP, though past rung 3
    assert s.on_trial_result(None, StubTrial("Z"), result(1, 0.95, 50.0)) == CONTINUE
    assert s.on_trial_result(None, StubTrial("X"), result(5, 0.6, 500.0)) == STOP
    # in the clone, P dominates X at rung 3 (same accuracy, fewer joules): X stops there
    assert clone.on_trial_result(None, StubTrial("P"), result(3, 0.6, 200.0)) == CONTINUE
    assert clone.on_trial_result(None, StubTrial("X"), result(4, 0.6, 400.0)) == STOP


def test_a_late_verdict_takes_the_trial_off_the_higher_rungs_it_reached() -> None:
    # the sequence of a benchmark sweep (cheap start, seed 4) in which all 24 trials were stopped: B passed
    # rung 3 alone, was then stopped by rung 1's late verdict, and as a ghost at rung 3 held its top 1 of 3,
    # so C and D, both running, were stopped there and no trial completed
    s = make(max_t=9, defer=True)
    assert s.on_trial_result(None, StubTrial("A"), result(1, 0.715, 2.4)) == CONTINUE  # alone at rung 1
    assert s.on_trial_result(None, StubTrial("B"), result(1, 0.859, 1.8)) == CONTINUE  # dominates A; n = 2
    assert s.on_trial_result(None, StubTrial("A"), result(2, 0.919, 4.9)) == STOP  # judged again: dominated
    assert s.on_trial_result(None, StubTrial("C"), result(1, 0.878, 1.1)) == CONTINUE  # n = 3: C is the top 1
    # B reaches rung 3 alone (provisional pass), then rung 1's verdict (top 1 of A, B, C is C) stops it
    assert s.on_trial_result(None, StubTrial("B"), result(3, 0.974, 5.4)) == STOP
    s.on_trial_complete(None, StubTrial("B"), result(3, 0.974, 5.4))  # as Tune does after a STOP
    assert "B" not in s.recorded(3) and "B" in s.recorded(1)  # off rung 3; rung 1 keeps what B showed there
    assert s.on_trial_result(None, StubTrial("C"), result(3, 0.970, 3.5)) == CONTINUE  # alone at rung 3 now
    assert s.on_trial_result(None, StubTrial("D"), result(1, 0.885, 1.2)) == CONTINUE  # top 2 of 4 at rung 1
    # D reaches rung 3: C dominates it (same accuracy, fewer joules), n = 2 < 3 -> D stops, C goes on
    assert s.on_trial_result(None, StubTrial("D"), result(3, 0.970, 3.6)) == STOP
    for epoch in range(4, 9):
        assert s.on_trial_result(None, StubTrial("C"), result(epoch, 0.975, 1.2 * epoch)) == CONTINUE
    assert s.on_trial_result(None, StubTrial("C"), result(9, 0.98, 10.8)) == STOP  # max_t: C completes


def test_defer_without_enough_trials_lets_them_finish() -> None:
    s = make(max_t=9, defer=True)
    for epoch in range(1, 9):
        assert s.on_trial_result(None, StubTrial("A"), result(epoch, 0.5, float(epoch))) == CONTINUE
    assert s.on_trial_result(None, StubTrial("A"), result(9, 0.5, 9.0)) == STOP  # max_t, as without defer
    s.on_trial_complete(None, StubTrial("A"), result(9, 0.5, 9.0))
    assert "pending=0" in s.debug_string()


def test_milestones_stay_below_max_t() -> None:
    assert make(max_t=10).milestones == [1, 3, 9]
    assert make(max_t=1).milestones == []  # nothing to halve: every trial runs to max_t
    assert MOASHAScheduler(max_t=20, grace_period=2, reduction_factor=2).milestones == [2, 4, 8, 16]


@pytest.mark.parametrize(("grace", "eta", "max_t"), [(1, 3, 6), (1, 3, 9), (1, 3, 27), (2, 2, 20), (1, 4, 64)])
def test_budget_share_is_the_mean_epochs_of_a_population_where_the_top_1_eta_goes_on(grace, eta, max_t) -> None:
    # counted, not derived: eta**k trials all run to the first rung, and exactly 1/eta of those at a rung go on
    rungs = rung_milestones(grace, eta, max_t)
    assert rungs == MOASHAScheduler(max_t=max_t, grace_period=grace, reduction_factor=eta).milestones
    running, epochs, reached = eta ** len(rungs), 0, 0
    trials = running
    for milestone in [*rungs, max_t]:
        epochs += running * (milestone - reached)
        running, reached = running // eta, milestone
    assert budget_share(grace, eta, max_t) == pytest.approx(epochs / trials / max_t)


def test_budget_share_without_a_rung_is_the_whole_budget() -> None:
    assert rung_milestones(6, 3, 6) == []
    assert budget_share(6, 3, 6) == 1.0
    assert budget_share(1, 3, 6) == pytest.approx(1 / 3)  # 1 + 2/3 + 3/9 of 6 epochs
    assert budget_share(1, 3, 9) == pytest.approx(7 / 27)  # the default sweep: 1 + 2/3 + 6/9 of 9


def test_a_trial_skipping_milestones_is_judged_once_at_the_highest() -> None:
    s = make(max_t=27)
    assert s.on_trial_result(None, StubTrial("X"), result(4, 0.5, 1.0)) == CONTINUE
    assert "X" in s.recorded(3) and "X" not in s.recorded(1)
    assert s.on_trial_result(None, StubTrial("X"), result(5, 0.5, 1.0)) == CONTINUE
    assert "X" not in s.recorded(1)  # not judged again at a lower rung


def test_trial_complete_records_without_deciding() -> None:
    s = make(max_t=9)
    s.on_trial_complete(None, StubTrial("A"), result(1, *A))
    s.on_trial_complete(None, StubTrial("B"), result(1, *B))
    assert s.on_trial_result(None, StubTrial("C"), result(1, *C)) == STOP  # judged against A and B
    s.on_trial_complete(None, StubTrial("Z"), None)  # type: ignore[arg-type]  # Tune may pass no result


def test_missing_objective_continues_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    s = make(max_t=9)
    with caplog.at_level(logging.WARNING, logger="orchestrator.moasha"):
        for n in "ABCD":
            assert s.on_trial_result(None, StubTrial(n), {"epoch": 1, "accuracy": 0.1}) == CONTINUE
    assert sum("energy_j" in r.message for r in caplog.records) == 1
    assert s.recorded(1) == {}


def test_non_finite_objective_is_stopped() -> None:
    s = make(max_t=9)
    assert s.on_trial_result(None, StubTrial("A"), result(1, math.nan, 3.0)) == STOP
    assert s.recorded(1) == {}


@pytest.mark.parametrize(
    ("metric", "mode"), [(None, None), ("accuracy", "max"), (["accuracy", "energy_j"], ["max", "min"])]
)
def test_set_search_properties_accepts_none_strings_and_lists(metric: Any, mode: Any) -> None:
    s = make(max_t=9)
    assert s.set_search_properties(metric, mode, config={}) is True
    # why: TuneController checks `scheduler.metric in result`; it must stay hashable (None skips the check)
    assert s.metric is None
    assert s.objectives == [("accuracy", "max"), ("energy_j", "min")]


def test_pickles_and_saves_with_its_state(tmp_path: Path) -> None:
    s = make(max_t=9)
    for n, p in zip("ABC", SIX[:3], strict=True):
        s.on_trial_result(None, StubTrial(n), result(1, *p))
    clone = pickle.loads(pickle.dumps(s))
    assert clone.recorded(1) == s.recorded(1)
    s.save(str(tmp_path / "sched.pkl"))
    fresh = make(max_t=9)
    fresh.restore(str(tmp_path / "sched.pkl"))
    assert fresh.recorded(1) == s.recorded(1)
    assert fresh.on_trial_result(None, StubTrial("D"), result(1, *D)) == CONTINUE  # as in the worked example
    w = pickle.loads(pickle.dumps(WeightedSumASHA(weights=[1, 1], max_t=9)))
    assert isinstance(w, WeightedSumASHA)


def test_weighted_sum_scheduler_keeps_the_knee() -> None:
    # Same arrivals as the worked example with weights (1, 1) on normalised objectives:
    #   A, B continue (n < 3). C (n=3, keep 1): C is worst on both objectives (score 1 + 1 = 2) -> STOP.
    #   D (n=4, keep 2; acc span 0.25, J span 25): A 0.2+0.2=0.4, B 0.6+0=0.6, C 1+0.6=1.6, D 0+1=1 -> STOP.
    #   E (n=5): worst -> STOP. F (n=6): A 0.343, B 0.429, F 0.566 -> 3rd -> STOP.
    s = WeightedSumASHA(weights=[1, 1], time_attr="epoch", max_t=9, grace_period=1, reduction_factor=3)
    got = [s.on_trial_result(None, StubTrial(n), result(1, *p)) for n, p in zip("ABCDEF", SIX, strict=True)]
    assert got == [CONTINUE, CONTINUE, STOP, STOP, STOP, STOP]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"objectives": []}, "at least one"),
        ({"objectives": [("accuracy", "up")]}, "'max' | 'min'"),
        ({"grace_period": 0}, "grace_period"),
        ({"max_t": 1, "grace_period": 2}, "grace_period"),
        ({"reduction_factor": 1}, "reduction_factor"),
        ({"tie_break": "knee"}, "tie_break"),
    ],
)
def test_bad_arguments_name_the_value(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MOASHAScheduler(**{"max_t": 9, **kw})


@pytest.mark.parametrize("weights", [[1.0], [-1.0, 2.0], [0.0, 0.0], [math.nan, 1.0]])
def test_bad_weights(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weights"):
        WeightedSumASHA(weights=weights, max_t=9)


# One real run -----------------------------------------------------------------------------------
def _chain_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    for epoch in range(1, 10):
        # why a chain: quality q is better on both objectives, so every rung has one strict order
        tune.report({"epoch": epoch, "accuracy": config["q"], "energy_j": epoch * (2.0 - config["q"])})


@pytest.mark.slow
def test_real_tune_run_stops_some_trials_early(tmp_path: Path) -> None:
    import ray
    from ray import tune

    # why best first: with 2 slots the first two trials report epoch 1 before the 3rd starts,
    # so the 3rd (worse than both) is judged at n = 3 and stopped, whatever the timing
    qs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(_chain_trainable, {"cpu": 1}),
            param_space={"q": tune.grid_search(qs)},
            tune_config=tune.TuneConfig(
                scheduler=MOASHAScheduler(
                    objectives=[("accuracy", "max"), ("energy_j", "min")], time_attr="epoch", max_t=9
                ),
                max_concurrent_trials=2,
            ),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="moasha", verbose=0),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    assert not grid.errors
    last = {r.config["q"]: int(r.metrics["epoch"]) for r in grid}
    assert last[0.9] == 9  # best at every rung: never stopped
    assert last[0.7] == 1  # 3rd arrival, dominated by the first two
    assert all(e in (1, 3, 9) for e in last.values())  # trials end at a rung or at max_t
    assert sum(e < 9 for e in last.values()) >= 3


# From the spec ----------------------------------------------------------------------------------
def _spec_scheduler(scheduler: Any) -> Any:
    from search_spaces import parse_spec

    raw = {
        "name": "s",
        "dataset": {"name": "digits"},
        "fixed": {"model": "resnet", "depth": 8, "epochs": 9},
        "space": {"lr": {"kind": "loguniform", "low": 1e-3, "high": 1e-2}},
        "scheduler": scheduler,
    }
    return parse_spec(raw, source="test")


def test_spec_scheduler_options_reach_the_scheduler() -> None:
    from orchestrator.search import make_scheduler

    spec = _spec_scheduler({"kind": "moasha", "defer": True, "tie_break": "hypervolume"})
    s = make_scheduler(spec)
    assert isinstance(s, MOASHAScheduler) and s.milestones == [1, 3]
    # the worked example under hypervolume ties: with 6 points A and B survive, D (costliest) does not
    assert s.on_trial_result(None, StubTrial("A"), result(1, *A)) == CONTINUE
    assert s.on_trial_result(None, StubTrial("D"), result(1, *D)) == CONTINUE  # trades off with A; n = 2
    assert s.on_trial_result(None, StubTrial("E"), result(1, *E)) == STOP  # n = 3: keep 1
    assert make_scheduler(_spec_scheduler({"kind": "moasha"}))._defer is False  # ASHA's rule by default


@pytest.mark.parametrize(
    ("scheduler", "field"),
    [({"kind": "moasha", "tie_break": "knee"}, "scheduler.tie_break"), ({"kind": "moasha", "defer": "yes"}, "defer")],
)
def test_spec_rejects_bad_scheduler_options(scheduler: dict[str, Any], field: str) -> None:
    from search_spaces import SpecError

    with pytest.raises(SpecError, match=field):
        _spec_scheduler(scheduler)
