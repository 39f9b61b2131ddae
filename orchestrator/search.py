"""The Optuna side of a sweep: sampler, define-by-run space, and honest trial states."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from orchestrator.optuna_study import name_objectives, record_epoch, trial_facts
from rundir import end_state, optuna_storage
from search_spaces import Param, SweepSpec
from trainables.config import TrialConfig
from trainables.metrics import BUDGET_EPOCHS, EPOCH

_OPTUNA_STATE = {
    "complete": optuna.trial.TrialState.COMPLETE,
    "stopped": optuna.trial.TrialState.PRUNED,
    "failed": optuna.trial.TrialState.FAIL,
}

DataShape = tuple[tuple[int, ...], int]  # (input shape of one sample, number of classes)


def make_sampler(spec: SweepSpec, data_shape: DataShape | None = None) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded; behind a ``CheapStartSampler`` when the spec asks for a cheap start.

    ``data_shape``: (input shape, number of classes) of the sweep's dataset, which the cheap start's cost
    prediction needs (ValueError without it when the spec asks for a cheap start).
    """
    s = spec.sampler
    base: optuna.samplers.BaseSampler
    if s.kind == "random":
        base = optuna.samplers.RandomSampler(seed=s.seed)
    elif s.kind == "tpe":
        base = optuna.samplers.TPESampler(seed=s.seed, multivariate=True)
    else:
        # why: optuna's default population (50) would make a 16-trial sweep pure random sampling
        pop = s.population_size or max(4, min(50, spec.num_samples // 4))
        base = NSGAIISampler(seed=s.seed, population_size=pop)
    if s.cheap_start <= 0:
        return base
    cost = cost_function(spec, data_shape)
    if cost is None:
        print(
            f"wattsweep: cheap start is off: the trainable {spec.trainable_ref!r} gives no cost "
            "(add `cost: package.module:function` to the spec, a function cost(config) -> float, "
            "or pass cost= to wattsweep.sweep); sampling starts with the spec's sampler",
            flush=True,
        )
        return base
    return CheapStartSampler(base, cheap_start_plan(spec, cost))


class NSGAIISampler(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II, picklable on every optuna release the requirements allow.

    why: Tune pickles the searcher, sampler included, when the sweep starts and into every experiment snapshot;
    optuna 5.1 gave its genetic samplers a ``threading.Lock`` (``_thread_lock``), which cannot be pickled, so
    every NSGA-II sweep failed before its first trial. The lock only orders one process's threads: a copy gets
    a fresh one.
    """

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if "_thread_lock" in state:
            state["_thread_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_thread_lock" in state:
            self._thread_lock = threading.Lock()


CostFn = Callable[[dict[str, Any]], float]


def cost_function(spec: SweepSpec, data_shape: DataShape | None = None) -> CostFn | None:
    """Predicted training cost of a config (any unit; only the order matters), with ``--max-epochs`` applied:
    closed-form FLOPs x epochs for the built-in trainable (``data_shape`` needed), the user's ``cost`` for a
    custom one, None when a custom trainable gives none."""
    if spec.is_builtin:
        if data_shape is None:
            raise ValueError("sampler.cheap_start needs the dataset's input shape and number of classes")
        from trainables.cost import training_cost

        def builtin(config: dict[str, Any]) -> float:
            return training_cost(config, *data_shape)

        base: CostFn = builtin
    elif spec.cost is not None:
        from trainables.loader import load_cost

        base = load_cost(spec.cost)
    else:
        return None
    default_epochs = TrialConfig.epochs if spec.is_builtin else None

    def cost(draw: dict[str, Any]) -> float:
        config = {**spec.fixed, **draw}
        if spec.max_epochs:  # why: --max-epochs caps every trial's epochs, so it caps their cost too
            config["epochs"] = min(int(config.get("epochs", default_epochs or spec.max_epochs)), spec.max_epochs)
        return float(base(config))

    return cost


def _draw(p: Param, rng: np.random.Generator) -> Any:
    """One value of ``p`` with the distribution Optuna's RandomSampler gives it."""
    if p.kind == "choice":
        return p.values[int(rng.integers(len(p.values)))]
    assert p.low is not None and p.high is not None
    if p.kind == "int":
        step = p.step or 1
        return int(p.low) + step * int(rng.integers((int(p.high) - int(p.low)) // step + 1))
    if p.kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(p.low), math.log(p.high))))
    return float(rng.uniform(p.low, p.high))


def cheap_start_plan(spec: SweepSpec, cost: CostFn) -> list[dict[str, Any]]:
    """The cheap start's trials: each the lowest predicted training cost of ``cheap_start_candidates`` random
    draws of the whole space (seeded by the sampler's seed); a tie keeps the earlier draw.

    why: a sweep for the accuracy / energy front should meet the cheap networks early. The low-energy end of
    the front is made of them, and with a fixed reference point it holds most of the front's hypervolume; a
    network that costs more must then beat them on accuracy. Drawing several candidates and keeping the
    cheapest biases the start towards cheap networks without fixing it on one corner of the space: the
    learning rate, the pruning ratio and whatever does not change the cost stay random (the "cost-effective
    initial design" of Lee et al., Cost-aware Bayesian Optimization, 2020, in its simplest form).
    """
    s = spec.sampler
    rng = np.random.default_rng([s.seed, 0xC4EA9])  # why: a stream of its own, apart from the base sampler's
    plan: list[dict[str, Any]] = []
    for _ in range(min(s.cheap_start, spec.num_samples)):
        draws = [{p.name: _draw(p, rng) for p in spec.space} for _ in range(s.cheap_start_candidates)]
        plan.append(min(draws, key=cost))
    return plan


class CheapStartSampler(optuna.samplers.BaseSampler):
    """Trials 0..len(plan)-1 take their values from ``plan``; every later trial, and any parameter the plan
    does not hold, from ``base``. The plan is fixed when the sweep starts, so a resumed sweep (its sampler
    restored from Tune's pickled state) and a re-run with the same seed give the same start.
    """

    def __init__(self, base: optuna.samplers.BaseSampler, plan: list[dict[str, Any]]) -> None:
        self.base = base
        self.plan = [dict(p) for p in plan]

    def _planned(self, trial: optuna.trial.FrozenTrial) -> dict[str, Any] | None:
        return self.plan[trial.number] if trial.number < len(self.plan) else None

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        if self._planned(trial) is not None:
            return {}
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        if self._planned(trial) is not None:
            return {}
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        planned = self._planned(trial)
        if planned is not None and param_name in planned:
            return planned[param_name]
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


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
    Here the run directory's rule (``rundir.end_state``): failed -> FAIL, stopped before its epoch
    budget -> PRUNED, complete -> COMPLETE.
    """

    budget: Any = None  # an orchestrator.budget.EnergyBudget, or None
    storage_url: str | None = None  # the spec's optuna_storage (None: the run's journal file)

    @property
    def study(self) -> optuna.Study:
        assert self._ot_study is not None, "the study is created when Tune sets the search properties"
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.budget is not None and self.budget.exhausted:
            return Searcher.FINISHED  # type: ignore[return-value]  # why: budget spent; launch nothing more
        return super().suggest(trial_id)

    def _setup_study(self, mode: str | list[str]) -> None:
        super()._setup_study(mode)
        name_objectives(self.study, self._metric_names())

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Every epoch into the study (``orchestrator.optuna_study.record_epoch``; with several objectives, kept
        for the trial's end)."""
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        record_epoch(self._ot_trials[trial_id], result, self._metric_names(), self._epochs_of(trial_id))

    def _epochs_of(self, trial_id: str) -> dict[str, list]:
        """This trial's objective values so far, per metric (kept in the searcher: Tune pickles it on resume)."""
        by_epoch: dict[str, dict[str, list]] = self.__dict__.setdefault("_by_epoch", {})
        return by_epoch.setdefault(trial_id, {})

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        if self.study._storage.get_trial(ot_trial._trial_id).state.is_finished():
            # why: after a resume, Tune may end again a trial whose end Optuna already has
            self._completed_trials.add(trial_id)
            return
        result = result or {}
        epochs_run, budget = int(result.get(EPOCH, 0)), int(result.get(BUDGET_EPOCHS, 0))
        attrs: dict[str, Any] = {"tune_trial_id": trial_id}
        if result:
            attrs |= {"epochs_run": epochs_run, "budget_epochs": budget, **trial_facts(result)}
        # why the last epoch here too: a result the scheduler answers with STOP reaches the searcher only as the
        # trial's end; one write for it, the trial's facts and its per-epoch series (optuna_study.write_trial)
        record_epoch(ot_trial, result, self._metric_names(), self._epochs_of(trial_id), attrs, ended=True)
        # why one rule (rundir.end_state): the run directory and the study must agree on every trial;
        # a trial with no result at all never ran an epoch of its budget
        ended = end_state(error=error or not result, epochs_run=epochs_run, budget_epochs=budget)
        state = _OPTUNA_STATE[ended]
        values = [float(result[m]) for m in self._metric_names()] if ended == "complete" else None
        self.study.tell(ot_trial, values, state=state)
        self._completed_trials.add(trial_id)
        self.__dict__.get("_by_epoch", {}).pop(trial_id, None)

    def _reopen_study(self, run_dir: Path) -> None:
        """The study in ``run_dir``'s own journal: the restored one names the path the first driver wrote, which a
        moved run no longer has and a copied run shares with its original."""
        old = self.study
        storage = optuna_storage(run_dir)
        study = optuna.load_study(study_name=old.study_name, storage=storage, sampler=old.sampler)
        self._storage, self._ot_study = storage, study  # type: ignore[assignment]  # why: Ray types it None
        self._ot_trials = {tid: optuna.trial.Trial(study, t._trial_id) for tid, t in self._ot_trials.items()}

    def _metric_names(self) -> list[str]:
        return self.metric if isinstance(self.metric, list) else [self.metric]

    def restore(self, checkpoint_path: str) -> None:
        """Restore (on resume), then close Optuna trials the dead driver asked for but Tune never saw."""
        super().restore(checkpoint_path)
        from orchestrator.relocate import current

        here = current()
        if here is not None and self.storage_url is None:  # why: a database study stays where it is
            self._reopen_study(here)
        known = {t._trial_id for t in self._ot_trials.values()}
        # why: the study is written as trials end, Tune's snapshot on its own period (orchestrator.tune_driver), so a
        # trial can have ended in the study after the snapshot Tune resumes from; Tune then runs its last epochs
        # again, and the study keeps the end it has
        ended = {t._trial_id for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()}
        self._completed_trials.update(tid for tid, t in self._ot_trials.items() if t._trial_id in ended)
        for frozen in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if frozen._trial_id not in known:
                # why: otherwise they stay RUNNING forever and the constant liar keeps imagining them
                storage = self.study._storage
                storage.set_trial_user_attr(frozen._trial_id, "orphaned", "suggested just before the driver died")
                storage.set_trial_state_values(frozen._trial_id, optuna.trial.TrialState.FAIL)


def make_search(spec: SweepSpec, run_dir: Path, data_shape: DataShape | None = None) -> HonestOptunaSearch:
    """Multi-objective OptunaSearch over all of the spec's objectives, stored in <run_dir>/optuna_journal.log
    (or the spec's ``optuna_storage`` URL, a team's shared database).

    ``data_shape``: the dataset's (input shape, classes), for the cheap start's cost prediction.

    why Optuna's JournalStorage (a file), not SQLite: the driver asks and tells between one trial's end and the
    next one's start, while that trial slot idles; measured here, SQLite took ~0.55 s to create the study (before
    any trial can start) and ~18 ms per trial, the journal file 2 ms and ~2 ms (benchmarks/RESULTS.md)."""
    storage = optuna.storages.RDBStorage(spec.optuna_storage) if spec.optuna_storage else optuna_storage(run_dir)
    # why: Optuna's INFO line about the new study repeats what the sweep's first line says (run dir, name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = HonestOptunaSearch(
        space=SearchSpaceFn(spec.space, spec.fixed),
        metric=[o.metric for o in spec.objectives],
        mode=[o.direction for o in spec.objectives],
        sampler=make_sampler(spec, data_shape),
        storage=storage,
        study_name=spec.name,
    )
    search.storage_url = spec.optuna_storage
    return search


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
    return MOASHAScheduler(tie_break=s.tie_break, keep_front=s.keep_front, **common)
