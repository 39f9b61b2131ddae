"""The Optuna side of a sweep: sampler, define-by-run space, and honest trial states."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from search_spaces import Param, SweepSpec


def make_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded."""
    s = spec.sampler
    if s.kind == "random":
        return optuna.samplers.RandomSampler(seed=s.seed)
    if s.kind == "tpe":
        return optuna.samplers.TPESampler(seed=s.seed, multivariate=True)
    # why: optuna's default population (50) would make a 16-trial sweep pure random sampling
    pop = s.population_size or max(4, min(50, spec.num_samples // 4))
    return optuna.samplers.NSGAIISampler(seed=s.seed, population_size=pop)


class SearchSpaceFn:
    """Define-by-run space for OptunaSearch: suggests the searched keys, returns the fixed ones.

    A class, not a closure, so that Tune can pickle the searcher into its experiment state.
    """

    def __init__(self, params: tuple[Param, ...], fixed: Mapping[str, Any]) -> None:
        self.params = params
        self.fixed = dict(fixed)

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        for p in self.params:
            if p.kind == "choice":
                trial.suggest_categorical(p.name, list(p.values))
            elif p.kind == "int":
                assert p.low is not None and p.high is not None
                trial.suggest_int(p.name, int(p.low), int(p.high), step=p.step or 1)
            else:
                assert p.low is not None and p.high is not None
                trial.suggest_float(p.name, float(p.low), float(p.high), log=p.kind == "loguniform")
        return dict(self.fixed)


class HonestOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna the truth about how a trial ended.

    why: Ray's OptunaSearch reports a trial stopped early, or one that failed
    after reporting some epochs, as COMPLETE with its last (cheap, inaccurate)
    values, which floods the front with trials that never ran their budget.
    Here: failed -> FAIL, ended before its epoch budget -> PRUNED, else COMPLETE.
    """

    budget: Any = None  # an orchestrator.budget.EnergyBudget, or None

    @property
    def study(self) -> optuna.Study:
        assert self._ot_study is not None, "the study is created when Tune sets the search properties"
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.budget is not None and self.budget.exhausted:
            return Searcher.FINISHED  # type: ignore[return-value]  # why: budget spent; launch nothing more
        return super().suggest(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        if self.study._storage.get_trial(ot_trial._trial_id).state.is_finished():
            # why: after a resume, Tune may end again a trial whose end Optuna already has
            self._completed_trials.add(trial_id)
            return
        ot_trial.set_user_attr("tune_trial_id", trial_id)
        state, values = optuna.trial.TrialState.COMPLETE, None
        if error or not result:
            state = optuna.trial.TrialState.FAIL
        else:
            ot_trial.set_user_attr("epochs_run", int(result.get("epoch", 0)))
            ot_trial.set_user_attr("energy_j", float(result.get("energy_j", 0.0)))
            if int(result.get("epoch", 0)) < int(result.get("budget_epochs", 0)):
                state = optuna.trial.TrialState.PRUNED
            else:
                metrics = self.metric if isinstance(self.metric, list) else [self.metric]
                values = [float(result[m]) for m in metrics]
                if not all(math.isfinite(v) for v in values):
                    # why: a diverged trial (NaN loss) is a failure, not a point Optuna can rank
                    ot_trial.set_user_attr("non_finite_values", str(values))
                    state, values = optuna.trial.TrialState.FAIL, None
        self.study.tell(ot_trial, values, state=state)
        self._completed_trials.add(trial_id)

    def restore(self, checkpoint_path: str) -> None:
        """Restore (on resume), then close Optuna trials the dead driver asked for but Tune never saw."""
        super().restore(checkpoint_path)
        known = {t._trial_id for t in self._ot_trials.values()}
        for frozen in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if frozen._trial_id not in known:
                # why: otherwise they stay RUNNING forever and the constant liar keeps imagining them
                storage = self.study._storage
                storage.set_trial_user_attr(frozen._trial_id, "orphaned", "suggested just before the driver died")
                storage.set_trial_state_values(frozen._trial_id, optuna.trial.TrialState.FAIL)


def make_search(spec: SweepSpec, run_dir: Path) -> HonestOptunaSearch:
    """Multi-objective OptunaSearch over all of the spec's objectives, stored in <run_dir>/optuna.db."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{(run_dir / 'optuna.db').resolve()}")
    # why: Optuna's INFO line about the new study repeats what the sweep's first line says (run dir, name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return HonestOptunaSearch(
        space=SearchSpaceFn(spec.space, spec.fixed),
        metric=[o.metric for o in spec.objectives],
        mode=[o.direction for o in spec.objectives],
        sampler=make_sampler(spec),
        storage=storage,
        study_name=spec.name,
    )


def make_scheduler(spec: SweepSpec) -> Any:
    """The spec's early-stopping scheduler (None = run every trial to its budget)."""
    from orchestrator.moasha import MOASHAScheduler, WeightedSumASHA
    from trainables.metrics import EPOCH

    s = spec.scheduler
    if s.kind == "fifo":
        return None
    common: dict[str, Any] = dict(
        objectives=[(o.metric, o.direction) for o in spec.objectives],
        time_attr=EPOCH,
        max_t=spec.budget_epochs(),
        grace_period=s.grace_period,
        reduction_factor=s.reduction_factor,
        defer=s.defer,
    )
    if s.kind == "weighted_asha":
        return WeightedSumASHA(weights=list(s.weights or ()), **common)
    return MOASHAScheduler(tie_break=s.tie_break, **common)
