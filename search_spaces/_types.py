"""The frozen, typed objects a spec becomes (``SweepSpec`` and its sections)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from search_spaces._check import (
    NUM_SAMPLES_MAX,
    SpecError,
    _check_name,
    _int,
    _num,
    _seed,
    parse_loggers,
    parse_optuna_storage,
)
from trainables.config import ConfigError, DatasetConfig, TrialConfig, check_compatible
from trainables.loader import BUILTIN, reference

PARAM_KINDS = ("choice", "uniform", "loguniform", "int")
SAMPLERS = ("nsga2", "tpe", "random")
SCHEDULERS = ("fifo", "moasha", "weighted_asha")
TIE_BREAKS = ("crowding", "hypervolume")  # moasha's order within a front (orchestrator.moasha.TIE_BREAKS)


@dataclass(frozen=True)
class Param:
    """One searched trial key."""

    name: str
    kind: str  # choice | uniform | loguniform | int
    default: Any
    values: tuple[Any, ...] = ()  # choice
    low: float | int | None = None  # ranges, inclusive
    high: float | int | None = None
    step: int | None = None  # int ranges

    def candidates(self) -> Sequence[Any]:
        """Values this parameter can take, for combination checks (range ends for continuous kinds).

        An int range is a ``range``: never a list, whose size is the range's (0 to 10**12 is a MemoryError)."""
        if self.kind == "choice":
            return self.values
        if self.kind == "int":
            assert self.low is not None and self.high is not None
            return range(int(self.low), int(self.high) + 1, self.step or 1)
        return (self.low, self.high)

    def largest(self) -> Any:
        """The largest value this parameter can take (without listing an int range's values)."""
        values = self.candidates()
        return values[-1] if isinstance(values, range) else max(values)


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # "max" | "min"


@dataclass(frozen=True)
class SamplerSpec:
    kind: str = "nsga2"
    seed: int = 0
    population_size: int | None = None  # nsga2 only; None = optuna's default (50) capped to num_samples
    # cheap start: the first `cheap_start` trials are each the predicted-cheapest of `cheap_start_candidates`
    # random draws (orchestrator.search.CheapStartSampler); 0 = off
    cheap_start: int = 0
    cheap_start_candidates: int = 4


@dataclass(frozen=True)
class SchedulerSpec:
    """Early stopping. fifo: none; moasha: multi-objective ASHA; weighted_asha: ASHA on a weighted sum."""

    kind: str = "fifo"
    grace_period: int = 1  # epochs before the first rung
    reduction_factor: float = 3.0  # eta: keep the top 1/eta at each rung
    weights: tuple[float, ...] | None = None  # weighted_asha: one weight per objective (normalised objectives)
    tie_break: str = "crowding"  # moasha: order within a front, "crowding" or "hypervolume" (contribution)
    defer: bool = False  # judge a trial reaching a rung with < eta points once eta are there (not pass it)
    keep_front: bool = False  # moasha: a trial on the rung's Pareto front goes on even outside the top 1/eta


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    gpu: float | str = "auto"  # "auto": one whole GPU per trial where the cluster has or can start GPUs, else none
    # a GPU model (A10G, L4, H100): trials land only on nodes with Ray's accelerator_type:<model> resource
    accelerator_type: str | None = None


@dataclass(frozen=True)
class EnergySettings:
    watts_per_core: float | None = None  # estimate backend; None = the meter's documented default
    idle_baseline_s: float = 2.0  # seconds of idle measurement at sweep start (0 = none)
    grid_g_per_kwh: float | None = None  # carbon intensity; None = documented default
    pue: float | None = None
    budget_j: float | None = None  # stop launching trials once the sweep has spent this many joules
    # "provider:region" (gcp:us-central1, aws:us-west-2) for the grid intensity when the cluster does not say
    # (orchestrator.grid); None = read it from the cluster, if it is on a cloud
    cloud_region: str | None = None


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep, as loaded from YAML (plus CLI overrides applied with ``with_overrides``)."""

    name: str
    dataset: DatasetConfig | None  # None: a custom trainable that loads its own data
    fixed: Mapping[str, Any]
    space: tuple[Param, ...]
    objectives: tuple[Objective, ...]
    sampler: SamplerSpec = SamplerSpec()
    num_samples: int = 16
    resources: Resources = Resources()
    scheduler: SchedulerSpec = SchedulerSpec()
    energy: EnergySettings = EnergySettings()
    description: str = ""
    max_epochs: int | None = None  # CLI --max-epochs: caps each trial's epochs
    tensorboard: bool = False  # also write TensorBoard event files under <run>/tune (CLI --tensorboard)
    loggers: tuple[str, ...] = ()  # trackers fed every epoch's metrics (_check.LOGGERS; CLI --logger)
    # an Optuna RDB storage URL (no password in it) for the study instead of the run's journal file
    optuna_storage: str | None = None
    source: str = ""  # the file it came from
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # "package.module:function" of the trainable (the Python API may hand the function itself)
    trainable: str | Callable[..., Any] = BUILTIN
    cost: str | Callable[..., Any] | None = None  # a custom trainable's cost(config) -> float, for the cheap start
    # the CLI overrides applied (with_overrides), as given: a resumed sweep applies them again to ``raw``
    overrides: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_builtin(self) -> bool:
        """The built-in ResNet / FFNN trainable, whose keys and values ``trainables.config`` checks."""
        return self.trainable == BUILTIN

    @property
    def trainable_ref(self) -> str:
        """``package.module:function`` of the trainable (what the manifest records)."""
        return reference(self.trainable)

    def full_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's config as the run directory records it: the built-in's with every key's default filled in
        (so report columns are never blank), a custom trainable's as it is."""
        return TrialConfig.from_mapping(config).to_dict() if self.is_builtin else dict(config)

    def default_config(self) -> dict[str, Any]:
        """The trial config with every searched key at its default."""
        return {**self.fixed, **{p.name: p.default for p in self.space}}

    def trial_config(self, overrides: Mapping[str, Any] | None = None) -> TrialConfig:
        """Validated TrialConfig of the built-in trainable: fixed settings, space defaults, then overrides."""
        values = {**self.default_config(), **(overrides or {})}
        try:
            cfg = TrialConfig.from_mapping(values)
            if self.dataset is not None:
                check_compatible(cfg.model, self.dataset)
        except SpecError:
            raise
        except ConfigError as e:
            raise SpecError(e.field, e.value, e.allowed) from None
        return cfg

    def budget_epochs(self) -> int:
        """The most epochs a trial of this sweep runs (the scheduler's maximum budget)."""
        by_name = {p.name: p for p in self.space}
        if "epochs" in by_name:
            epochs = int(by_name["epochs"].largest())
        else:
            epochs = int(self.fixed.get("epochs", TrialConfig.epochs if self.is_builtin else 0))
        return min(epochs, self.max_epochs) if self.max_epochs else epochs

    def with_overrides(self, **changes: Any) -> SweepSpec:
        """A copy with CLI overrides (num_samples, max_epochs, seed, name, energy_budget, tensorboard, loggers,
        optuna_storage, grid_intensity); validated."""
        seed = changes.pop("seed", None)
        budget = changes.pop("energy_budget", None)
        grid = changes.pop("grid_intensity", None)
        if budget is not None:
            changes["energy"] = replace(self.energy, budget_j=_num("--energy-budget", budget, positive=True))
        if grid is not None:
            energy = changes.get("energy", self.energy)
            changes["energy"] = replace(energy, grid_g_per_kwh=_num("--grid-intensity", grid, minimum=0.0))
        if changes.get("loggers") is not None:
            changes["loggers"] = parse_loggers("--logger", changes["loggers"])
        if changes.get("optuna_storage") is not None:
            changes["optuna_storage"] = parse_optuna_storage("--optuna-storage", changes["optuna_storage"])
        extra = {"seed": seed, "energy_budget": budget, "grid_intensity": grid}
        given = {k: v for k, v in {**changes, **extra}.items() if v is not None}
        if "loggers" in given:
            given["loggers"] = list(given["loggers"])  # why: the manifest is JSON
        given.pop("energy", None)
        spec = replace(
            self, **{k: v for k, v in changes.items() if v is not None}, overrides={**self.overrides, **given}
        )
        if seed is not None:
            spec = replace(spec, sampler=replace(spec.sampler, seed=_seed("--seed", seed)))
        _int("--num-samples", spec.num_samples, 1, NUM_SAMPLES_MAX)
        if spec.max_epochs is not None:
            _int("--max-epochs", spec.max_epochs, 1)
        _check_name("--name", spec.name)
        return spec
