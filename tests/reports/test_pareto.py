"""Pareto sorting, hypervolume and knee against brute force and hand-made points."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import pareto


def _loss(points: npt.NDArray[np.float64], directions: tuple[str, ...]) -> npt.NDArray[np.float64]:
    return points * np.array([-1.0 if d == "max" else 1.0 for d in directions])


def brute_ranks(points: npt.NDArray[np.float64], directions: tuple[str, ...]) -> npt.NDArray[np.intp]:
    """Front numbers straight from the definition: peel the points nobody left dominates."""
    loss = _loss(points, directions)
    le = np.all(loss[:, None, :] <= loss[None, :, :], axis=2)
    lt = np.any(loss[:, None, :] < loss[None, :, :], axis=2)
    dominates = le & lt  # dominates[j, i]: j dominates i
    ranks = np.full(len(loss), -1)
    remaining = np.ones(len(loss), dtype=bool)
    front_no = 0
    while remaining.any():
        front = remaining & ~np.any(dominates[remaining], axis=0)
        ranks[front] = front_no
        remaining &= ~front
        front_no += 1
    return ranks


def brute_hypervolume(points: npt.NDArray[np.float64], directions: tuple[str, ...], ref: list[int]) -> int:
    # integer points: count the unit cells [c, c+1)^m below the reference that some point weakly dominates
    loss = _loss(points, directions).astype(int)
    ref_loss = _loss(np.array([ref], dtype=float), directions)[0].astype(int)
    axes = [range(int(loss[:, k].min()) if len(loss) else 0, r) for k, r in enumerate(ref_loss)]
    return sum(1 for c in itertools.product(*axes) if np.any(np.all(loss <= np.array(c), axis=1)))


def points_and_directions(m_min: int, m_max: int, *, hi: int = 4) -> st.SearchStrategy:
    # why small integers: they make ties in one objective and exact duplicates common
    @st.composite
    def build(draw: st.DrawFn) -> tuple[npt.NDArray[np.float64], tuple[str, ...]]:
        m = draw(st.integers(m_min, m_max))
        n = draw(st.integers(1, 30))
        rows = draw(st.lists(st.lists(st.integers(0, hi), min_size=m, max_size=m), min_size=n, max_size=n))
        dirs = tuple(draw(st.lists(st.sampled_from(["max", "min"]), min_size=m, max_size=m)))
        return np.array(rows, dtype=float), dirs

    return build()


@settings(max_examples=150, deadline=None)
@given(points_and_directions(1, 4))
def test_non_dominated_sort_matches_brute_force(case: tuple[npt.NDArray[np.float64], tuple[str, ...]]) -> None:
    points, dirs = case
    np.testing.assert_array_equal(pareto.non_dominated_sort(points, dirs), brute_ranks(points, dirs))


@settings(max_examples=150, deadline=None)
@given(points_and_directions(1, 4))
def test_front_mask_is_rank_zero(case: tuple[npt.NDArray[np.float64], tuple[str, ...]]) -> None:
    points, dirs = case
    np.testing.assert_array_equal(pareto.pareto_front_mask(points, dirs), brute_ranks(points, dirs) == 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([("max", "min"), ("min", "min"), ("max", "max")]))
def test_two_objective_sort_on_continuous_points(seed: int, dirs: tuple[str, ...]) -> None:
    points = np.random.default_rng(seed).normal(size=(200, 2))
    np.testing.assert_array_equal(pareto.non_dominated_sort(points, dirs), brute_ranks(points, dirs))


def test_duplicates_share_the_front_and_ties_are_decided_by_the_other_objective() -> None:
    # accuracy max, energy min: two identical best points, and a tie in accuracy at higher energy
    points = np.array([[0.9, 10.0], [0.9, 10.0], [0.9, 12.0], [0.5, 1.0], [0.5, 1.0], [0.4, 1.0]])
    ranks = pareto.non_dominated_sort(points, ("max", "min"))
    assert ranks.tolist() == [0, 0, 1, 0, 0, 1]


@settings(max_examples=120, deadline=None)
@given(points_and_directions(1, 3))
def test_hypervolume_matches_cell_count(case: tuple[npt.NDArray[np.float64], tuple[str, ...]]) -> None:
    points, dirs = case
    ref = [-1 if d == "max" else 5 for d in dirs]  # just beyond the worst possible value, 0..4
    assert pareto.hypervolume(points, dirs, ref) == pytest.approx(brute_hypervolume(points, dirs, ref))


def test_points_beyond_the_reference_add_nothing() -> None:
    assert pareto.hypervolume([[0.5, 20.0]], ("max", "min"), [0.0, 10.0]) == 0.0
    assert pareto.hypervolume([[0.5, 5.0], [0.9, 20.0]], ("max", "min"), [0.0, 10.0]) == pytest.approx(2.5)


@pytest.mark.parametrize("without_moocore", [False, True])
def test_three_objectives_with_and_without_moocore(monkeypatch: pytest.MonkeyPatch, without_moocore: bool) -> None:
    if without_moocore:
        monkeypatch.setitem(sys.modules, "moocore", None)  # import raises ImportError: Optuna's WFG takes over
    rng = np.random.default_rng(1)
    points = rng.integers(0, 5, size=(25, 3)).astype(float)
    dirs = ("max", "min", "min")
    ref = [-1, 5, 5]
    assert pareto.hypervolume(points, dirs, ref) == pytest.approx(brute_hypervolume(points, dirs, ref))


def test_hypervolume_history_grows_and_ends_at_the_total() -> None:
    rng = np.random.default_rng(2)
    points = rng.uniform(size=(500, 2))
    ref = [0.0, 2.0]
    ks, hv = pareto.hypervolume_history(points, ("max", "min"), ref, n_checkpoints=50)
    assert ks[-1] == 500 and len(ks) <= 50
    assert np.all(np.diff(hv) >= 0)
    assert hv[-1] == pytest.approx(pareto.hypervolume(points, ("max", "min"), ref))


def test_knee_on_hand_made_points() -> None:
    # front A, B, C (D is dominated by B). After normalising, B sits at (0.89, 0.89): nearest the utopia (1, 1)
    points = np.array([[0.5, 1.0], [0.9, 2.0], [0.95, 10.0], [0.6, 5.0]])
    assert pareto.knee_index(points, ("max", "min")) == 1
    # the same rule when both objectives are minimised, and a tie goes to the earlier point
    assert pareto.knee_index([[0.0, 1.0], [1.0, 0.0]], ("min", "min")) == 0
    assert pareto.knee_index([[3.0, 3.0]], ("min", "min")) == 0


def test_reference_point_is_beyond_the_worst_value_in_each_direction() -> None:
    ref = pareto.reference_point([[0.5, 10.0], [0.9, 30.0]], ("max", "min"), margin=0.1)
    np.testing.assert_allclose(ref, [0.46, 32.0])
    np.testing.assert_allclose(pareto.reference_point([[2.0, 2.0]], ("min", "max")), [2.2, 1.8])


def test_bad_input_names_the_value() -> None:
    with pytest.raises(ValueError, match="'up'"):
        pareto.non_dominated_sort([[1.0, 2.0]], ("max", "up"))
    with pytest.raises(ValueError, match="NaN"):
        pareto.pareto_front_mask([[np.nan, 2.0]], ("max", "min"))
    with pytest.raises(ValueError, match="shape"):
        pareto.hypervolume([[1.0, 2.0, 3.0]], ("max", "min"), [0.0, 0.0])
    assert pareto.non_dominated_sort(np.zeros((0, 2)), ("max", "min")).shape == (0,)
