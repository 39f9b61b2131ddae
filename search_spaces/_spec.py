"""Sweep specs: YAML in, frozen typed objects out, validated before Ray starts.

A spec names the dataset, the trial settings held fixed, the settings searched
(each with a kind and a default), the objectives, the sampler, the number of
trials and the resources per trial. Every error is a ``SpecError`` naming the
field (dotted path), the bad value and what is allowed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from trainables.config import (
    TRIAL_KEYS,
    ConfigError,
    DatasetConfig,
    TrialConfig,
    check_compatible,
    check_value,
)
from trainables.loader import BUILTIN, load_cost, load_trainable, reference
from trainables.metrics import OBJECTIVE_METRICS

PARAM_KINDS = ("choice", "uniform", "loguniform", "int")
SAMPLERS = ("nsga2", "tpe", "random")
SCHEDULERS = ("fifo", "moasha", "weighted_asha")
TIE_BREAKS = ("crowding", "hypervolume")  # moasha's order within a front (orchestrator.moasha.TIE_BREAKS)
TOP_KEYS = (
    "name",
    "trainable",
    "cost",
    "description",
    "dataset",
    "fixed",
    "space",
    "objectives",
    "sampler",
    "num_samples",
    "resources",
    "scheduler",
    "energy",
    "tensorboard",
)


class SpecError(ConfigError):
    """A spec (or a flag that overrides one) is wrong. Exit code 2."""


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

    def candidates(self) -> list[Any]:
        """Values this parameter can take, for combination checks (range ends for continuous kinds)."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            assert self.low is not None and self.high is not None
            return list(range(int(self.low), int(self.high) + 1, self.step or 1))
        return [self.low, self.high]


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


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    gpu: float | str = "auto"  # "auto": one whole GPU per trial where the cluster has GPUs, else none


@dataclass(frozen=True)
class EnergySettings:
    watts_per_core: float | None = None  # estimate backend; None = the meter's documented default
    idle_baseline_s: float = 2.0  # seconds of idle measurement at sweep start (0 = none)
    grid_g_per_kwh: float | None = None  # carbon intensity; None = documented default
    pue: float | None = None
    budget_j: float | None = None  # stop launching trials once the sweep has spent this many joules


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
    source: str = ""  # the file it came from
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # "package.module:function" of the trainable (the Python API may hand the function itself)
    trainable: str | Callable[..., Any] = BUILTIN
    cost: str | Callable[..., Any] | None = None  # a custom trainable's cost(config) -> float, for the cheap start

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
            epochs = int(max(by_name["epochs"].candidates()))
        else:
            epochs = int(self.fixed.get("epochs", TrialConfig.epochs if self.is_builtin else 0))
        return min(epochs, self.max_epochs) if self.max_epochs else epochs

    def with_overrides(self, **changes: Any) -> SweepSpec:
        """A copy with CLI overrides (num_samples, max_epochs, seed, name, energy_budget, tensorboard); validated."""
        seed = changes.pop("seed", None)
        budget = changes.pop("energy_budget", None)
        if budget is not None:
            changes["energy"] = replace(self.energy, budget_j=_num("--energy-budget", budget, positive=True))
        spec = replace(self, **{k: v for k, v in changes.items() if v is not None})
        if seed is not None:
            spec = replace(spec, sampler=replace(spec.sampler, seed=_int("--seed", seed, 0)))
        _int("--num-samples", spec.num_samples, 1)
        if spec.max_epochs is not None:
            _int("--max-epochs", spec.max_epochs, 1)
        _check_name("--name", spec.name)
        return spec


def _int(field_: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise SpecError(field_, v, f"an integer >= {minimum}")
    return v


def _bool(field_: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise SpecError(field_, v, "true or false")
    return v


def _num(field_: str, v: Any, *, positive: bool = False, minimum: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpecError(field_, v, "a finite number")
    if positive and v <= 0:
        raise SpecError(field_, v, "a number > 0")
    if minimum is not None and v < minimum:
        raise SpecError(field_, v, f"a number >= {minimum}")
    return float(v)


def _mapping(field_: str, v: Any, allowed_keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise SpecError(field_, v, "a mapping (key: value)")
    if allowed_keys is not None:
        for k in v:
            if k not in allowed_keys:
                raise SpecError(f"{field_}.{k}" if field_ else str(k), v[k], f"one of the keys {list(allowed_keys)}")
    return dict(v)


def _check_name(field_: str, name: Any) -> str:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise SpecError(field_, name, "a non-empty name of letters, digits, '-', '_' or '.'")
    return name


def _check_trial_value(field_: str, key: str, value: Any) -> Any:
    try:
        return check_value(key, value)
    except ConfigError as e:
        raise SpecError(field_, value, e.allowed) from None


# Keys the contract itself reads from any trainable's config (trainables.contract): checked for every trainable.
CONTRACT_KEYS = ("epochs", "seed", "device")
_SCALARS = (str, int, float, bool, type(None))  # what Optuna can suggest as a categorical value


def _check_key(where: str, name: Any, raw: Any, builtin: bool) -> None:
    if builtin and name not in TRIAL_KEYS:
        raise SpecError(where, raw, f"a trial key of the built-in trainable, one of {list(TRIAL_KEYS)}")
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(where, raw, "a key that is a Python identifier (letters, digits, '_')")


def _check_key_value(field_: str, key: str, value: Any, builtin: bool) -> Any:
    """A value of trial key ``key``: checked by ``trainables.config`` for the built-in trainable and for the
    contract's own keys; any number or string (and lists of them under ``fixed:``) for a custom key."""
    if builtin or key in CONTRACT_KEYS:
        return _check_trial_value(field_, key, value)
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(field_, value, "a finite number")
    return value


def _parse_param(name: str, raw: Any, builtin: bool = True) -> Param:
    where = f"space.{name}"
    _check_key(where, name, raw, builtin)
    d = _mapping(where, raw, ("kind", "values", "low", "high", "step", "default"))
    kind = d.get("kind")
    if kind not in PARAM_KINDS:
        raise SpecError(f"{where}.kind", kind, f"one of {list(PARAM_KINDS)}")
    if kind == "choice":
        values = d.get("values")
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}.values", values, "a non-empty list")
        checked = tuple(_check_key_value(f"{where}.values", name, v, builtin) for v in values)
        bad = [v for v in checked if not isinstance(v, _SCALARS)]
        if bad:
            raise SpecError(f"{where}.values", bad[0], "numbers, strings, true/false or null (what Optuna can suggest)")
        default = _check_key_value(f"{where}.default", name, d.get("default", checked[0]), builtin)
        if default not in checked:
            raise SpecError(f"{where}.default", default, f"one of the values {list(checked)}")
        return Param(name, kind, default, values=checked)
    for k in ("low", "high"):
        if k not in d:
            raise SpecError(f"{where}.{k}", None, f"a number (a {kind} range needs low and high)")
    low = _check_key_value(f"{where}.low", name, d["low"], builtin)
    high = _check_key_value(f"{where}.high", name, d["high"], builtin)
    if isinstance(low, bool) or not isinstance(low, (int, float)):
        raise SpecError(f"{where}.kind", kind, f"choice (the key {name!r} is not numeric)")
    if low > high:
        raise SpecError(f"{where}.low", low, f"a value <= high ({high}); the range is empty")
    if kind == "loguniform" and low <= 0:
        raise SpecError(f"{where}.low", low, "a number > 0 for a loguniform range")
    step = None
    if kind == "int":
        if not (isinstance(low, int) and isinstance(high, int)):
            raise SpecError(f"{where}.kind", kind, f"uniform or loguniform ({name!r} is not an integer key)")
        step = _int(f"{where}.step", d.get("step", 1), 1)
    default = d.get("default", low)
    default = _check_key_value(f"{where}.default", name, default, builtin)
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise SpecError(f"{where}.default", default, f"a number in [{low}, {high}]")
    if not low <= default <= high:
        raise SpecError(f"{where}.default", default, f"a value in [{low}, {high}]")
    return Param(name, kind, default, low=low, high=high, step=step)


def _parse_objectives(raw: Any, builtin: bool = True) -> tuple[Objective, ...]:
    if raw is None:
        return (Objective("accuracy", "max"), Objective("energy_j", "min"))
    if not isinstance(raw, list) or not raw:
        raise SpecError("objectives", raw, "a non-empty list of {metric, direction}")
    out: list[Objective] = []
    for i, item in enumerate(raw):
        d = _mapping(f"objectives[{i}]", item, ("metric", "direction"))
        metric = d.get("metric")
        if builtin and metric not in OBJECTIVE_METRICS:
            raise SpecError(f"objectives[{i}].metric", metric, f"one of {list(OBJECTIVE_METRICS)}")
        if not isinstance(metric, str) or not metric.isidentifier():
            measured = list(OBJECTIVE_METRICS)
            allowed = f"a metric the trainable reports (a name such as f1), or one wattsweep measures: {measured}"
            raise SpecError(f"objectives[{i}].metric", metric, allowed)
        if metric not in OBJECTIVE_METRICS and "direction" not in d:
            raise SpecError(f"objectives[{i}].direction", None, f"max or min (say which for your metric {metric!r})")
        direction = d.get("direction", OBJECTIVE_METRICS.get(metric))
        if direction not in ("max", "min"):
            raise SpecError(f"objectives[{i}].direction", direction, "max or min")
        if any(o.metric == metric for o in out):
            raise SpecError(f"objectives[{i}].metric", metric, "each metric once")
        out.append(Objective(metric, direction))
    return tuple(out)


def _parse_sampler(raw: Any) -> SamplerSpec:
    d = _mapping("sampler", raw, ("kind", "seed", "population_size", "cheap_start", "cheap_start_candidates"))
    kind = d.get("kind", "nsga2")
    if kind not in SAMPLERS:
        raise SpecError("sampler.kind", kind, f"one of {list(SAMPLERS)}")
    seed = _int("sampler.seed", d.get("seed", 0), 0)
    pop = d.get("population_size")
    if pop is not None:
        pop = _int("sampler.population_size", pop, 2)
    cheap = _int("sampler.cheap_start", d.get("cheap_start", 0), 0)
    candidates = _int("sampler.cheap_start_candidates", d.get("cheap_start_candidates", 4), 2)
    return SamplerSpec(kind, seed, pop, cheap, candidates)


def _parse_resources(raw: Any) -> Resources:
    d = _mapping("resources", raw, ("cpu", "gpu"))
    cpu = _num("resources.cpu", d.get("cpu", 1), positive=True)
    gpu = d.get("gpu", "auto")
    if gpu != "auto":
        gpu = _num("resources.gpu", gpu, minimum=0.0)
    return Resources(cpu, gpu)


def _parse_energy(raw: Any) -> EnergySettings:
    d = _mapping("energy", raw, ("watts_per_core", "idle_baseline_s", "grid_g_per_kwh", "pue", "budget_j"))
    budget = d.get("budget_j")
    wpc = d.get("watts_per_core")
    grid = d.get("grid_g_per_kwh")
    pue = d.get("pue")
    return EnergySettings(
        watts_per_core=None if wpc is None else _num("energy.watts_per_core", wpc, positive=True),
        idle_baseline_s=_num("energy.idle_baseline_s", d.get("idle_baseline_s", 2.0), minimum=0.0),
        grid_g_per_kwh=None if grid is None else _num("energy.grid_g_per_kwh", grid, minimum=0.0),
        pue=None if pue is None else _num("energy.pue", pue, minimum=1.0),
        budget_j=None if budget is None else _num("energy.budget_j", budget, positive=True),
    )


def parse_spec(raw: Any, *, source: str = "<memory>") -> SweepSpec:
    """Validate a spec given as a mapping (parsed YAML; the Python API may put functions under
    ``trainable`` and ``cost``)."""
    d = _mapping("", raw, TOP_KEYS)
    trainable = _parse_trainable(d.get("trainable", BUILTIN))
    builtin = trainable == BUILTIN
    default_name = Path(source).stem if builtin or source != "<memory>" else reference(trainable).rpartition(":")[2]
    name = _check_name("name", d.get("name") or default_name)
    dataset = _parse_dataset(d.get("dataset", {"name": "digits"} if builtin else None))
    fixed_raw = _mapping("fixed", d.get("fixed"))
    fixed = {}
    for k, v in fixed_raw.items():
        _check_key(f"fixed.{k}", k, v, builtin)
        fixed[k] = _check_key_value(f"fixed.{k}", k, v, builtin)
    space_raw = _mapping("space", d.get("space"))
    space = tuple(_parse_param(k, v, builtin) for k, v in space_raw.items())
    for p in space:
        if p.name in fixed:
            raise SpecError(f"space.{p.name}", p.name, "a key that is not also under fixed")
    spec = SweepSpec(
        name=name,
        dataset=dataset,
        fixed=fixed,
        space=space,
        objectives=_parse_objectives(d.get("objectives"), builtin),
        sampler=_parse_sampler(d.get("sampler")),
        num_samples=_int("num_samples", d.get("num_samples", 16), 1),
        resources=_parse_resources(d.get("resources")),
        scheduler=_parse_scheduler(d.get("scheduler", "fifo")),
        energy=_parse_energy(d.get("energy")),
        description=str(d.get("description", "")),
        tensorboard=_bool("tensorboard", d.get("tensorboard", False)),
        source=source,
        raw={**d, "trainable": reference(trainable), **({"cost": reference(d["cost"])} if d.get("cost") else {})},
        trainable=trainable,
        cost=_parse_cost(d.get("cost"), builtin),
    )
    if builtin:
        _check_combinations(spec)
    elif spec.budget_epochs() < 1:
        raise SpecError("fixed.epochs", None, "the trial's epoch budget, an integer >= 1 under fixed: or space:")
    w = spec.scheduler.weights
    if spec.scheduler.kind == "weighted_asha" and (w is None or len(w) != len(spec.objectives)):
        raise SpecError(
            "scheduler.weights", list(w) if w else None, f"{len(spec.objectives)} numbers, one per objective"
        )
    return spec


def _parse_trainable(raw: Any) -> str | Callable[..., Any]:
    """The trainable's reference (or function), checked importable and callable as ``f(config, ctx)``."""
    if raw == BUILTIN:
        return BUILTIN  # why: importing the built-in would import torch into the driver (~1.5 s) for nothing
    try:
        load_trainable(raw)
    except ConfigError as e:
        raise SpecError(e.field, e.value, e.allowed) from None
    return raw if callable(raw) else str(raw)


def _parse_cost(raw: Any, builtin: bool) -> str | Callable[..., Any] | None:
    if raw is None:
        return None
    if builtin:
        raise SpecError("cost", raw, "no cost for the built-in trainable (its cost is computed from its config)")
    try:
        load_cost(raw)
    except ConfigError as e:
        raise SpecError(e.field, e.value, e.allowed) from None
    return raw if callable(raw) else str(raw)


def _parse_dataset(raw: Any) -> DatasetConfig | None:
    if raw is None:
        return None
    try:
        return DatasetConfig.from_mapping(_mapping("dataset", raw))
    except ConfigError as e:
        raise SpecError(e.field, e.value, e.allowed) from None


def _parse_scheduler(raw: Any) -> SchedulerSpec:
    d = (
        {"kind": raw}
        if isinstance(raw, str)
        else _mapping("scheduler", raw, ("kind", "grace_period", "reduction_factor", "weights", "tie_break", "defer"))
    )
    kind = d.get("kind", "fifo")
    if kind not in SCHEDULERS:
        raise SpecError("scheduler.kind", kind, f"one of {list(SCHEDULERS)}")
    grace = _int("scheduler.grace_period", d.get("grace_period", 1), 1)
    eta = _num("scheduler.reduction_factor", d.get("reduction_factor", 3), minimum=1.01)
    weights = d.get("weights")
    if weights is not None:
        if not isinstance(weights, list) or not weights:
            raise SpecError("scheduler.weights", weights, "a list of numbers, one per objective")
        weights = tuple(_num("scheduler.weights", w, minimum=0.0) for w in weights)
    tie_break = d.get("tie_break", "crowding")
    if tie_break not in TIE_BREAKS:
        raise SpecError("scheduler.tie_break", tie_break, f"one of {list(TIE_BREAKS)}")
    return SchedulerSpec(kind, grace, eta, weights, tie_break, _bool("scheduler.defer", d.get("defer", False)))


def _check_combinations(spec: SweepSpec) -> None:
    """Every model x depth the search can draw must be buildable on the dataset."""
    by_name = {p.name: p for p in spec.space}
    try:
        spec.trial_config()  # the defaults themselves
    except SpecError as e:
        where = f"space.{e.field}.default" if e.field in by_name else f"fixed.{e.field}"
        raise SpecError(where if e.field in TRIAL_KEYS else e.field, e.value, e.allowed) from None
    assert spec.dataset is not None, "the built-in trainable's spec always has a dataset"
    models = by_name["model"].candidates() if "model" in by_name else [spec.fixed.get("model", TrialConfig.model)]
    depth_field = "space.depth" if "depth" in by_name else "fixed.depth"
    depths = by_name["depth"].candidates() if "depth" in by_name else [spec.fixed.get("depth", TrialConfig.depth)]
    for model in models:
        try:
            check_compatible(model, spec.dataset)
        except ConfigError as e:
            raise SpecError("space.model" if "model" in by_name else "fixed.model", model, e.allowed) from None
        if model == "resnet":
            bad = [d for d in depths if (int(d) - 2) % 6 != 0]
            if bad:
                allowed = "for resnet, depths 6n+2 (8, 14, 20, 26, 32, 44, 56, ...); an int range needs step 6"
                raise SpecError(depth_field, bad[0], allowed)


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and validate a YAML spec file."""
    p = Path(path)
    shipped = Path(__file__).parent / p.name
    if not p.is_file() and p.parent == Path("search_spaces") and shipped.is_file():
        p = shipped  # why: an installed wattsweep run outside the repo still finds its shipped specs
    if not p.is_file():
        raise SpecError("spec", str(p), "the path of an existing YAML spec file (see search_spaces/)")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError("spec", str(p), f"valid YAML (parse error{where}: {getattr(e, 'problem', e)})") from None
    return parse_spec(raw, source=str(p))


def parse_set(items: list[str], spec: SweepSpec | None = None) -> dict[str, Any]:
    """``--set key=value`` pairs; values parsed as YAML scalars (3, 1e-3, true, resnet). Keys are checked
    against the built-in trainable's, or for a custom trainable's ``spec`` against its fixed and space keys."""
    builtin = spec is None or spec.is_builtin
    known = TRIAL_KEYS if builtin else tuple(spec.default_config()) if spec is not None else ()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError("--set", item, "key=value, e.g. --set depth=14 --set lr=0.001")
        if key not in known:
            raise SpecError(f"--set {key}", text, f"a trial key, one of {list(known)}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        out[key] = _check_key_value(f"--set {key}", key, value, builtin)
    return out
