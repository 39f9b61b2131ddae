"""From the trials table to what the report states: objectives, front, knee, hypervolume, energy, CO2e."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from reports import pareto
from rundir import MANIFEST, NotARunError
from trainables import metrics as m

J_PER_KWH = 3.6e6
# why: one documented default for the whole project (the energy layer's; a plain-Python module, no torch)
from trainables.energy._carbon import DEFAULT_GRID_G_PER_KWH, DEFAULT_PUE  # noqa: E402

HV_REFERENCE_RULE = (
    "reference point = the worst value of each objective among the front's candidates "
    "(complete trials), pushed 10% of that objective's range further"
)
DUPLICATES_RULE = "trials with identical objective values do not dominate each other: all of them stay on the front"
MODEL_FRONT = "on_gpu_model_front"  # trials column, only when the trials ran on more than one GPU model


@dataclass(frozen=True)
class Objective:
    """One objective: a metric name from trainables.metrics and the direction that is better."""

    metric: str
    direction: pareto.Direction


DEFAULT_OBJECTIVES = (Objective(m.ACCURACY, "max"), Objective(m.ENERGY_J, "min"))


def accuracy_metric(objectives: tuple[Objective, ...]) -> str:
    """The run's accuracy: its first objective to maximise (a user metric such as ``f1``), else ``accuracy``."""
    return next((o.metric for o in objectives if o.direction == "max"), m.ACCURACY)


def outcome_metrics(objectives: tuple[Objective, ...]) -> list[str]:
    """What figures put on their y axes: the run's accuracy, ``energy_j``, then its other objectives."""
    return list(dict.fromkeys([accuracy_metric(objectives), m.ENERGY_J, *(o.metric for o in objectives)]))


def objectives_from_manifest(manifest: Mapping[str, Any]) -> tuple[Objective, ...]:
    """The run's objectives (accuracy max + energy_j min when the manifest names none)."""
    raw = manifest.get("objectives")
    if not raw:
        return DEFAULT_OBJECTIVES
    # why NotARunError: a run whose manifest says nothing usable is bad input to `report` (exit 2, named), not a crash
    if not isinstance(raw, list):
        raise NotARunError(f"{MANIFEST}: objectives must be a list, but got {str(raw)[:100]!r}")
    out = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("metric"), str):
            shown = str(item)[:100]
            raise NotARunError(f"{MANIFEST}: each objective must be {{'metric': str, 'direction': 'max'|'min'}}, "
                               f"but got {shown!r}")  # fmt: skip
        if item.get("direction") not in ("max", "min"):
            raise NotARunError(
                f"{MANIFEST}: objective direction must be 'max' or 'min', but got {item.get('direction')!r}"
            )
        out.append(Objective(item["metric"], item["direction"]))
    return tuple(out)


@dataclass(frozen=True)
class FrontResult:
    """The Pareto analysis of the complete trials."""

    objectives: tuple[Objective, ...]
    n_candidates: int  # complete, readable trials with every objective reported
    knee_id: str | None
    reference: npt.NDArray[np.float64] | None  # hypervolume reference point, objectives' own units
    hypervolume: float | None
    history: pd.DataFrame = field(repr=False)  # energy_spent_j, hypervolume, n_candidates (step "post")
    missing_metrics: tuple[str, ...] = ()  # objectives no trial reported


def candidates_mask(trials: pd.DataFrame, objectives: tuple[Objective, ...]) -> npt.NDArray[np.bool_]:
    """Trials that may sit on the front: state complete, readable, every objective a finite number."""
    ok = ((trials["state"] == "complete").fillna(False) & trials["unreadable"].isna()).to_numpy(dtype=bool)
    for o in objectives:
        if o.metric not in trials.columns:
            return np.zeros(len(trials), dtype=bool)
        ok = ok & np.isfinite(pd.to_numeric(trials[o.metric], errors="coerce").to_numpy(dtype=np.float64))
    return ok


def _values(trials: pd.DataFrame, objectives: tuple[Objective, ...]) -> npt.NDArray[np.float64]:
    cols = [pd.to_numeric(trials[o.metric], errors="coerce").to_numpy(dtype=np.float64) for o in objectives]
    return np.column_stack(cols) if cols else np.zeros((len(trials), 0))


def _history(
    trials: pd.DataFrame,
    cand: npt.NDArray[np.bool_],
    values: npt.NDArray[np.float64],
    directions: tuple[str, ...],
    reference: npt.NDArray[np.float64] | None,
) -> pd.DataFrame:
    # why every trial's energy: the x axis is what the sweep paid, including trials that never reached the front
    order = np.argsort(trials["end_order"].to_numpy(), kind="stable")
    spent = np.cumsum(np.nan_to_num(trials[m.ENERGY_J].to_numpy(dtype=np.float64)[order], nan=0.0))
    cand_pos = np.flatnonzero(cand[order])
    if len(cand_pos) == 0 or reference is None:
        return pd.DataFrame(columns=["energy_spent_j", "hypervolume", "n_candidates"])
    ks, hv = pareto.hypervolume_history(values[order][cand_pos], directions, reference)
    x = spent[cand_pos[ks - 1]]
    rows = pd.DataFrame({"energy_spent_j": x, "hypervolume": hv, "n_candidates": ks})
    start = pd.DataFrame({"energy_spent_j": [0.0], "hypervolume": [0.0], "n_candidates": [0]})
    end = pd.DataFrame({"energy_spent_j": [spent[-1]], "hypervolume": [hv[-1]], "n_candidates": [ks[-1]]})
    return pd.concat([start, rows, end], ignore_index=True)


def analyse_front(trials: pd.DataFrame, objectives: tuple[Objective, ...]) -> tuple[pd.DataFrame, FrontResult]:
    """Add ``pareto_rank`` (front number among candidates), ``on_front`` and ``knee`` to a copy of ``trials``;
    where the trials ran on more than one GPU model also ``on_gpu_model_front`` (see ``model_fronts``)."""
    out = trials.copy()
    missing = tuple(o.metric for o in objectives if o.metric not in out.columns or out[o.metric].isna().all())
    cand = candidates_mask(out, objectives)  # all False when an objective is missing
    directions = tuple(o.direction for o in objectives)
    values = np.zeros((len(out), len(objectives))) if missing else _values(out, objectives)
    ranks = pd.array([pd.NA] * len(out), dtype="Int64")
    out["knee"] = False
    knee_id, ref, hv = None, None, None
    if cand.any():
        rows, cv = np.flatnonzero(cand), values[cand]
        ranks[rows] = pareto.non_dominated_sort(cv, directions)
        knee_row = rows[pareto.knee_index(cv, directions)]
        out.loc[out.index[knee_row], "knee"] = True
        knee_id = str(out["trial_id"].iloc[knee_row])
        ref = pareto.reference_point(cv, directions)
        hv = pareto.hypervolume(cv, directions, ref)
    out["pareto_rank"] = ranks
    out["on_front"] = (out["pareto_rank"] == 0).fillna(False).astype(bool)
    if m.GPU_MODEL in out.columns and out[m.GPU_MODEL].dropna().nunique() > 1:
        out[MODEL_FRONT] = model_fronts(out, () if missing else objectives)
    history = _history(out, cand, values, directions, ref)
    return out, FrontResult(objectives, int(cand.sum()), knee_id, ref, hv, history, missing)


def model_fronts(trials: pd.DataFrame, objectives: tuple[Objective, ...], by: str = m.GPU_MODEL) -> pd.Series:
    """Whether each trial is on the front of the complete trials of its own ``by`` value (its GPU model).

    why: energy on an A10G and on an L4 is not like for like; one front over both hides the slower card's trials.
    """
    out = pd.Series(False, index=trials.index, dtype=bool)
    if by not in trials.columns or not objectives:
        return out
    cand = candidates_mask(trials, objectives)
    if not cand.any():
        return out
    values, directions = _values(trials, objectives), tuple(o.direction for o in objectives)
    groups = trials[by].astype(object).to_numpy()
    for model in pd.unique(trials.loc[cand, by].dropna()):
        rows = np.flatnonzero(cand & (groups == model))
        out.iloc[rows[pareto.pareto_front_mask(values[rows], directions)]] = True
    return out


@dataclass(frozen=True)
class EnergyInfo:
    """Where the energy figures came from, and whether they are measurements."""

    estimated: bool  # True when any energy is an estimate, or the run does not say (never claim a measurement)
    sources: tuple[str, ...]
    statement: str  # one sentence for the reader


def _section(manifest: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = manifest.get(key)
    return value if isinstance(value, Mapping) else {}


def energy_info(trials: pd.DataFrame) -> EnergyInfo:
    """Decide measured or estimated from every trial's own records (``energy_source``, ``energy_estimated``).

    why not the manifest: the sweep never wrote an ``energy`` entry there; what each trial recorded is the fact.
    """
    sources = {str(s) for s in trials.get(m.ENERGY_SOURCE, pd.Series(dtype=object)).dropna()}
    flags = [bool(v) for v in trials.get(m.ENERGY_ESTIMATED, pd.Series(dtype=object)).dropna()]
    says_estimated = any(flags) or any(s.startswith("estimated") for s in sources)
    says_measured = not all(flags) or any(not s.startswith("estimated") for s in sources)
    known = bool(flags or sources)
    src = ", ".join(sorted(sources)) or "not stated"
    if not known:
        statement = "The run does not say where its energy figures came from: treat them as estimates."
    elif says_estimated and says_measured:
        statement = f"Some trials' energy is measured, some estimated (sources: {src}): compare with care."
    elif says_estimated:
        statement = f"Source: {src}. Estimates: compare trials with each other, not with a power meter."
    else:
        statement = f"Source: {src}."
    return EnergyInfo(says_estimated or not known, tuple(sorted(sources)), statement)


def _positive(value: Any, default: float) -> tuple[float, bool]:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return (float(value), False) if ok else (default, True)


@dataclass(frozen=True)
class CarbonEstimate:
    """The whole sweep's energy (every trial, whatever its state) and its CO2e. An estimate."""

    total_energy_j: float
    n_trials_without_energy: int
    kwh: float
    grid_g_per_kwh: float
    pue: float
    co2e_g: float
    defaults_used: tuple[str, ...]  # carbon settings the manifest lacked (or had invalid)


def carbon_estimate(manifest: Mapping[str, Any], trials: pd.DataFrame) -> CarbonEstimate:
    """CO2e (g) = energy (kWh) x grid intensity (g/kWh) x PUE, over all trials' last reported energy."""
    carbon = _section(manifest, "carbon")
    grid, grid_default = _positive(carbon.get("grid_g_per_kwh"), DEFAULT_GRID_G_PER_KWH)
    pue, pue_default = _positive(carbon.get("pue"), DEFAULT_PUE)
    energy = pd.to_numeric(trials.get(m.ENERGY_J, pd.Series(dtype=float)), errors="coerce")
    total = float(energy.fillna(0.0).sum())
    kwh = total / J_PER_KWH
    defaults = tuple(n for n, d in (("grid_g_per_kwh", grid_default), ("pue", pue_default)) if d)
    return CarbonEstimate(total, int(energy.isna().sum()), kwh, grid, pue, kwh * grid * pue, defaults)
