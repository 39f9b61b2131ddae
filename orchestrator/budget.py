"""An energy budget for a whole sweep: stop launching trials once it is spent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.tune.stopper import Stopper

from trainables.metrics import ENERGY_J, EPOCH


class EnergyBudget(Stopper):
    """Tracks the energy every trial has reported; once the sum reaches ``budget_j`` joules:

    - the searcher (which asks ``exhausted``) stops suggesting new trials;
    - running trials go on to their next rung milestone (every epoch when there are no rungs)
      and are stopped there, so their last result is at a comparable budget.
    """

    def __init__(self, budget_j: float, milestones: Sequence[int] = ()) -> None:
        self.budget_j = float(budget_j)
        self.milestones = set(int(m) for m in milestones)
        self.spent_by_trial: dict[str, float] = {}

    @property
    def spent_j(self) -> float:
        return sum(self.spent_by_trial.values())

    @property
    def exhausted(self) -> bool:
        return self.spent_j >= self.budget_j

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if ENERGY_J in result:
            self.spent_by_trial[trial_id] = float(result[ENERGY_J])
        if not self.exhausted:
            return False
        return not self.milestones or int(result.get(EPOCH, 0)) in self.milestones

    def stop_all(self) -> bool:
        return False
