"""Multi-objective asynchronous successive halving (MO-ASHA) for Ray Tune.

Ray's ASHA ranks trials by one metric. Here a trial that reaches a rung is ranked
against every trial recorded at that rung on all objectives at once:

1. non-dominated sorting (``reports.pareto.non_dominated_sort``), each objective
   with its own direction: front 0 first;
2. within a front, NSGA-II crowding distance (larger first; the extremes of a
   front are infinitely far, so the most accurate and the cheapest always lead),
   or (``tie_break="hypervolume"``) each point's exclusive hypervolume
   contribution to its front (larger first; reference point 1.1 on every
   normalised loss, so an extreme that is much worse on one objective adds little);
3. remaining ties (duplicates) go to the trial recorded first.

Both tie breaks use objectives min-max normalised over the rung's recorded
points, so joules and accuracy weigh the same. (Normalising cannot change the
fronts: dominance is invariant under per-objective monotone rescaling.)

The trial continues when it is in the top ``ceil(n / reduction_factor)`` of the
``n`` trials recorded at the rung so far. While fewer than ``reduction_factor`` are
recorded there is no top 1/eta: by default the trial continues (ASHA's rule, decided
once, on arrival). With ``defer=True`` it continues only while no trial at the rung
dominates it, and that rung judges it again at each of its later reports (also after
it has passed higher rungs) until the rung holds ``reduction_factor`` points (then
the top-1/eta rule, once); a trial stopped by such a late verdict is taken off the
higher rungs it had reached, so that it cannot hold their top 1/eta. Why: on 2 slots
the first trials at every rung otherwise always pass (about 7 of 24 trials ran their
whole budget where successive halving means 3), and waiting for eta points without
pausing would let them run on, since the eta-th point may arrive only after one of
the two running trials ends.

Energy objectives must be cumulative (``energy_j``): every trial at a rung has run
the same epochs, so cumulative values compare.

``WeightedSumASHA`` is the same scheduler ranking by a weighted sum of the
normalised objectives instead of by fronts.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from orchestrator.moasha_ranking import (
    TIE_BREAKS,
    crowding_distance,
    hypervolume_contribution,
    non_dominated_sort,
    normalised_loss,
    rung_milestones,
    rung_order,
    survives,
)

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial

__all__ = [
    "TIE_BREAKS",
    "MOASHAScheduler",
    "WeightedSumASHA",
    "crowding_distance",
    "hypervolume_contribution",
    "normalised_loss",
    "rung_order",
    "survives",
]

logger = logging.getLogger(__name__)


# The scheduler ----------------------------------------------------------------------------------
class MOASHAScheduler(FIFOScheduler):
    """Asynchronous successive halving on several objectives at once (see the module docstring).

    Args:
        objectives: ``(metric, "max" | "min")`` pairs, each read from every result.
        time_attr: the result key that counts progress (monotonic), e.g. ``"epoch"``.
        max_t: the budget in ``time_attr`` units; rungs sit at ``grace_period * reduction_factor**k < max_t``.
        grace_period: the first rung; no trial is stopped before it.
        reduction_factor: keep the top ``1 / reduction_factor`` at each rung.
        stop_last_trials: stop a trial once it reaches ``max_t`` (as Ray's ASHA does).
        tie_break: ``"crowding"`` or ``"hypervolume"``: order within a front (module docstring).
        defer: a trial reaching a rung that holds fewer than ``reduction_factor`` points goes on only while
            no trial there dominates it, and that rung judges it again at each of its later reports until it
            holds ``reduction_factor`` points (default: it goes on, as in ASHA).
        keep_front: a trial on the rung's Pareto front (no trial recorded there dominates it) goes on even when
            it is not in the top ``1 / reduction_factor``; so a sweep keeps as many trials as the trade-off is
            wide at that rung, not a fixed fraction (default: the top 1/eta only).

    A trial reporting a non-finite objective at a rung is stopped (it cannot be ranked).
    Tune's ``metric``/``mode`` are not used: leave them unset in ``TuneConfig`` (the searcher owns them).
    """

    def __init__(
        self,
        objectives: Sequence[tuple[str, str]] = (("accuracy", "max"), ("energy_j", "min")),
        *,
        time_attr: str = "epoch",
        max_t: int = 100,
        grace_period: int = 1,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
        tie_break: str = "crowding",
        defer: bool = False,
        keep_front: bool = False,
    ) -> None:
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {TIE_BREAKS}, but got {tie_break=}.")
        if not objectives:
            raise ValueError(f"objectives must name at least one (metric, direction), but got {objectives=}.")
        for obj in objectives:
            if len(obj) != 2 or obj[1] not in ("max", "min"):
                raise ValueError(f"Each objective must be (metric, 'max' | 'min'), but got {obj!r}.")
        if grace_period <= 0 or max_t < grace_period:
            raise ValueError(f"Need 0 < grace_period <= max_t, but got {grace_period=}, {max_t=}.")
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, but got {reduction_factor=}.")
        super().__init__()
        self._objectives = [(str(m), str(d)) for m, d in objectives]
        self._time_attr = time_attr
        self._max_t = max_t
        self._grace_period = grace_period
        self._reduction_factor = reduction_factor
        self._stop_last_trials = stop_last_trials
        self._tie_break = tie_break
        self._defer = defer
        self._keep_front = keep_front
        self._pending: dict[str, list[float]] = {}  # trial_id -> rungs it passed on too few points (defer)
        self._withdrawn: set[str] = set()  # trials a late verdict stopped and took off higher rungs (defer)
        # why plain lists/dicts: Tune pickles the scheduler into its experiment state
        self._rungs: list[tuple[float, dict[str, list[float]]]] = [  # (milestone, trial_id -> objective vector)
            (milestone, {}) for milestone in rung_milestones(grace_period, reduction_factor, max_t)
        ]
        self._num_stopped = 0
        self._warned_missing: set[str] = set()

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """The ``(metric, direction)`` pairs trials are ranked on."""
        return list(self._objectives)

    @property
    def milestones(self) -> list[float]:
        """The rungs, in ``time_attr`` units, ascending."""
        return [m for m, _ in self._rungs]

    def recorded(self, milestone: float) -> dict[str, list[float]]:
        """A copy of the objective vectors recorded at a rung, by trial id, in arrival order."""
        for m, rec in self._rungs:
            if m == milestone:
                return {k: list(v) for k, v in rec.items()}
        raise ValueError(f"{milestone=} is not a rung; rungs are {self.milestones}.")

    def _weights(self) -> list[float] | None:
        return None  # why: Pareto ranking; WeightedSumASHA overrides this one method

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        """Accept whatever Tune passes (None, a string, or the searcher's lists): the objectives are our own.

        why: Tune raises when this returns False; TuneController also reads ``self.metric`` and checks it is
        in each result, so ``_metric`` stays None (a list there would fail its ``in`` test).
        """
        if metric is not None and metric != [m for m, _ in self._objectives]:
            logger.info("MOASHAScheduler ranks by %s and ignores metric=%r, mode=%r", self._objectives, metric, mode)
        return True

    def on_trial_result(self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]) -> str:
        """STOP or CONTINUE; decided when the trial first reaches a rung, and at ``max_t``."""
        vector = self._vector(result)
        if vector is None:
            return TrialScheduler.CONTINUE
        if result[self._time_attr] >= self._max_t and self._stop_last_trials:
            action = TrialScheduler.STOP
        else:
            action = self._on_rung(trial.trial_id, result[self._time_attr], vector)
            if action == TrialScheduler.CONTINUE:
                action = self._judge_pending(trial.trial_id)
        if action == TrialScheduler.STOP:
            self._pending.pop(trial.trial_id, None)
            self._num_stopped += 1
        return action

    def on_trial_complete(self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]) -> None:
        """Record a trial that ended on its own at a rung (as ASHA does), so later arrivals compare with it."""
        vector = self._vector(result) if result else None
        # why not a withdrawn trial: Tune calls this also for the trials this scheduler stopped, with their last
        # result, which would put a withdrawn trial back on the rung it was taken off
        if vector is not None and trial.trial_id not in self._withdrawn:
            self._on_rung(trial.trial_id, result[self._time_attr], vector)
        self._pending.pop(trial.trial_id, None)  # why: an ended trial has nothing left to decide

    def _vector(self, result: dict[str, Any]) -> list[float] | None:
        missing = [k for k in (self._time_attr, *(m for m, _ in self._objectives)) if k not in result]
        for k in set(missing) - self._warned_missing:
            # why: ASHA skips such results silently; say it once so a misspelt metric is not a silent no-op
            logger.warning("MOASHAScheduler: results lack %r; trials are not ranked without it", k)
            self._warned_missing.add(k)
        return None if missing else [float(result[m]) for m, _ in self._objectives]

    def _on_rung(self, trial_id: str, t: float, vector: list[float]) -> str:
        # why highest first: a trial that skips past several milestones at once is judged at the last one
        for milestone, recorded in reversed(self._rungs):
            if t < milestone:
                continue
            if trial_id in recorded:
                break  # why: judged at this rung (or above) already; lower rungs are behind it
            if not all(math.isfinite(v) for v in vector):
                logger.warning("MOASHAScheduler: trial %s has %s at rung %g; stopping", trial_id, vector, milestone)
                return TrialScheduler.STOP  # why: NaN cannot be ranked, and a diverged trial is not worth its budget
            recorded[trial_id] = vector
            return self._judge(milestone, recorded, trial_id)
        return TrialScheduler.CONTINUE

    def _judge_pending(self, trial_id: str) -> str:
        """Judge again every rung the trial passed while it held fewer than ``reduction_factor`` points.

        why every rung, not only the last: a fast trial can pass rung 1 and reach rung 3 before a second
        trial reports its first epoch; if that trial then dominates it at rung 1, it should not go on.
        """
        for milestone in list(self._pending.get(trial_id, ())):
            recorded = next(rec for m, rec in self._rungs if m == milestone)
            if self._judge(milestone, recorded, trial_id) == TrialScheduler.STOP:
                self._withdraw_above(milestone, trial_id)
                return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def _withdraw_above(self, milestone: float, trial_id: str) -> None:
        """Take a trial's points off the rungs above ``milestone``, whose late verdict says it should have stopped.

        why: otherwise a trial stopped this way stays ranked at the higher rungs it reached on a provisional
        pass, and can hold the top 1/eta there while no longer running: every live trial ranked below it is then
        stopped, and a sweep can end with no complete trial at all (seen: 24 of 24 stopped).
        """
        self._withdrawn.add(trial_id)
        for m, recorded in self._rungs:
            if m > milestone:
                recorded.pop(trial_id, None)

    def _judge(self, milestone: float, recorded: dict[str, list[float]], trial_id: str) -> str:
        points, directions = list(recorded.values()), [d for _, d in self._objectives]
        index = list(recorded).index(trial_id)
        pending = self._pending.setdefault(trial_id, [])
        if milestone in pending:
            pending.remove(milestone)
        if self._defer and len(points) < self._reduction_factor:
            # why: too few points for a top 1/eta; stop only what a trial at this rung dominates, and judge
            # again at the next reports (on 2 slots the eta-th point may arrive only after this trial ends)
            pending.append(milestone)
            dominated = non_dominated_sort(points, directions)[index] > 0
            return TrialScheduler.STOP if dominated else TrialScheduler.CONTINUE
        if not pending:
            del self._pending[trial_id]
        keep = survives(
            points, directions, index, self._reduction_factor, weights=self._weights(), tie_break=self._tie_break
        )
        if not keep and getattr(self, "_keep_front", False):  # why getattr: a scheduler pickled before the option
            keep = non_dominated_sort(points, directions)[index] == 0
        return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP

    def debug_string(self) -> str:
        """One line per rung: how many trials were recorded there."""
        rungs = " | ".join(f"{self._time_attr} {m:g}: {len(r)} recorded" for m, r in self._rungs)
        return f"Using {type(self).__name__}: num_stopped={self._num_stopped}, pending={len(self._pending)}\n  {rungs}"

    def save(self, checkpoint_path: str) -> None:
        """Pickle the scheduler's state to ``checkpoint_path`` (as Ray's ASHA does)."""
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        """Load the state written by ``save``."""
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


class WeightedSumASHA(MOASHAScheduler):
    """MO-ASHA ranking by ``sum(weights * normalised_loss)`` at each rung instead of by Pareto fronts.

    Each objective is min-max normalised over the rung's recorded points (0 = best, 1 = worst) before
    weighting, so the weights are relative importances, not unit conversions. A weighted sum can only
    reach the convex part of a front: prefer ``MOASHAScheduler`` unless the trade-off is known.

    Args:
        weights: one non-negative weight per objective, not all zero.
        Others as ``MOASHAScheduler``.
    """

    def __init__(
        self,
        objectives: Sequence[tuple[str, str]] = (("accuracy", "max"), ("energy_j", "min")),
        *,
        weights: Sequence[float],
        time_attr: str = "epoch",
        max_t: int = 100,
        grace_period: int = 1,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
        defer: bool = False,
    ) -> None:
        w = [float(x) for x in weights]
        if len(w) != len(objectives) or any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
            raise ValueError(
                f"weights must be {len(objectives)} finite non-negative numbers, not all zero, but got {weights=}."
            )
        super().__init__(
            objectives,
            time_attr=time_attr,
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            stop_last_trials=stop_last_trials,
            defer=defer,
        )
        self._weight_list = w

    def _weights(self) -> list[float] | None:
        return list(self._weight_list)
