"""Each section of a spec (searched keys, objectives, sampler, scheduler, resources, energy, trainable),
checked where it enters: a ``SpecError`` names the field, the bad value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from search_spaces._check import NUM_SAMPLES_MAX, RESOURCE_MAX, SpecError, _bool, _finite, _int, _mapping, _num, _seed
from search_spaces._types import (
    PARAM_KINDS,
    SAMPLERS,
    SCHEDULERS,
    TIE_BREAKS,
    EnergySettings,
    Objective,
    Param,
    Resources,
    SamplerSpec,
    SchedulerSpec,
)
from trainables.config import TRIAL_KEYS, ConfigError, DatasetConfig, check_value
from trainables.loader import BUILTIN, load_cost, load_trainable
from trainables.metrics import OBJECTIVE_METRICS


def _check_trial_value(field_: str, key: str, value: Any) -> Any:
    try:
        return check_value(key, value)
    except ConfigError as e:
        raise SpecError(field_, value, e.allowed) from None


# why: Optuna stores every parameter value as a float (its internal representation): an int range's ends must
# be exact there, and numpy draws from it with int64
INT_RANGE_MAX = 2**53
# why: the cheap start draws this many candidates for each of its trials, in the driver, before the sweep starts
CHEAP_START_CANDIDATES_MAX = 1000

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
    for end, v in (("low", low), ("high", high)):
        if not _finite(v):
            raise SpecError(f"{where}.{end}", v, "a finite number")
    if low > high:
        raise SpecError(f"{where}.low", low, f"a value <= high ({high}); the range is empty")
    if kind == "loguniform" and low <= 0:
        raise SpecError(f"{where}.low", low, "a number > 0 for a loguniform range")
    if not _finite(float(high) - float(low)):
        # why: Optuna and numpy draw low + u * (high - low); a width past float's range is an OverflowError
        raise SpecError(f"{where}.high", high, f"a number with high - low a finite float (low is {low})")
    step = None
    if kind == "int":
        if not (isinstance(low, int) and isinstance(high, int)):
            raise SpecError(f"{where}.kind", kind, f"uniform or loguniform ({name!r} is not an integer key)")
        for end, v in (("low", low), ("high", high)):
            if abs(v) > INT_RANGE_MAX:
                raise SpecError(f"{where}.{end}", v, "an integer in [-2**53, 2**53] (what Optuna stores exactly)")
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
        if builtin and (not isinstance(metric, str) or metric not in OBJECTIVE_METRICS):  # why: a list is unhashable
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
    seed = _seed("sampler.seed", d.get("seed", 0))
    pop = d.get("population_size")
    if pop is not None:
        # why the cap: a generation larger than any sweep may run (num_samples' own cap) is never completed
        pop = _int("sampler.population_size", pop, 2, NUM_SAMPLES_MAX)
    cheap = _int("sampler.cheap_start", d.get("cheap_start", 0), 0)
    candidates = _int(
        "sampler.cheap_start_candidates", d.get("cheap_start_candidates", 4), 2, CHEAP_START_CANDIDATES_MAX
    )
    return SamplerSpec(kind, seed, pop, cheap, candidates)


def _parse_resources(raw: Any) -> Resources:
    d = _mapping("resources", raw, ("cpu", "gpu", "accelerator_type"))
    cpu = _num("resources.cpu", d.get("cpu", 1), positive=True)
    if cpu > RESOURCE_MAX:
        raise SpecError("resources.cpu", d["cpu"], f"a number > 0 and <= {RESOURCE_MAX:,} (CPUs one trial holds)")
    gpu = d.get("gpu", "auto")
    if gpu != "auto":
        gpu = _num("resources.gpu", gpu, minimum=0.0)
        if gpu > 1 and not gpu.is_integer():
            # why: Ray schedules a fraction of one GPU, or whole GPUs; 1.5 GPUs is neither, and Ray refuses it
            # only once the first trial is submitted
            raise SpecError("resources.gpu", d["gpu"], "auto, 0, a fraction in (0, 1) to share a GPU, or whole GPUs")
    accel = d.get("accelerator_type")
    if accel is not None and (
        not isinstance(accel, str) or not accel or not all(c.isascii() and (c.isalnum() or c in "-_") for c in accel)
    ):
        # why: it becomes the name of Ray's resource accelerator_type:<model>, as Ray's node types spell it
        allowed = "a GPU model such as A10G, L4 or H100 (letters, digits, '-', '_')"
        raise SpecError("resources.accelerator_type", accel, allowed)
    return Resources(cpu, gpu, accel)


def _parse_energy(raw: Any) -> EnergySettings:
    keys = ("watts_per_core", "idle_baseline_s", "grid_g_per_kwh", "pue", "budget_j", "cloud_region")
    d = _mapping("energy", raw, keys)
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
        cloud_region=_parse_cloud_region(d.get("cloud_region")),
    )


CLOUD_PROVIDERS = ("aws", "gcp")  # why these: the providers of orchestrator.grid's region table


def _parse_cloud_region(raw: Any) -> str | None:
    """``provider:region`` as the provider spells the region (``gcp:us-central1``, ``aws:us-west-2``)."""
    if raw is None:
        return None
    provider, sep, region = raw.partition(":") if isinstance(raw, str) else ("", "", "")
    if (
        not sep
        or provider not in CLOUD_PROVIDERS
        or not 0 < len(region) <= 64
        or not all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in region)
    ):
        allowed = f"provider:region, the provider one of {list(CLOUD_PROVIDERS)} (gcp:us-central1, aws:us-west-2)"
        raise SpecError("energy.cloud_region", raw, allowed)
    return raw


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
        else _mapping(
            "scheduler",
            raw,
            ("kind", "grace_period", "reduction_factor", "weights", "tie_break", "defer", "keep_front"),
        )
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
    defer = _bool("scheduler.defer", d.get("defer", False))
    return SchedulerSpec(
        kind, grace, eta, weights, tie_break, defer, _bool("scheduler.keep_front", d.get("keep_front", False))
    )
