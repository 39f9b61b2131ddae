"""The report's words and tables, as plain strings shared by index.html and report.md."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reports.analysis import (
    DUPLICATES_RULE,
    HV_REFERENCE_RULE,
    MODEL_FRONT,
    CarbonEstimate,
    EnergyInfo,
    FrontResult,
    accuracy_metric,
)
from reports.keys import SearchSpace, custom_trainable
from reports.pareto import KNEE_RULE
from reports.table import Columns, complete, numeric
from trainables import metrics as m

PARETO_METRICS = ("trial_id", m.ACCURACY, m.TEST_ACCURACY, m.ENERGY_J, m.DYNAMIC_ENERGY_J, m.ENERGY_SOURCE)
# where the trials recorded them: the GPU model and the energy by component (sources are in trials.csv)
PARETO_ENERGY = (m.GPU_MODEL, *(j for _, j, _ in m.ENERGY_COMPONENTS))
PARETO_KEYS = ("depth", "width", "lr", "prune_ratio")  # the built-in's main knobs, up front where a run has them
PARETO_HEAD = PARETO_METRICS + PARETO_KEYS


def fmt(value: Any) -> str:
    """A cell as text: blank when missing, 4 significant digits for floats."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_energy(joules: float) -> str:
    """Joules with the kWh beside them."""
    return f"{joules:.4g} J ({joules / 3.6e6:.3g} kWh)"


@dataclass(frozen=True)
class TableText:
    """A table as header names and rows of cell strings."""

    headers: list[str]
    rows: list[list[str]]


def _column_text(values: pd.Series) -> list[str]:
    # why per column, not per cell: a 10k-trial table has ~400k cells; typed list comprehensions are ~10x faster
    if pd.api.types.is_float_dtype(values.dtype):
        return [f"{v:.4g}" if v == v else "" for v in values.to_numpy(dtype=float, na_value=np.nan).tolist()]
    return [fmt(v) for v in values.astype(object).tolist()]


def table_text(frame: pd.DataFrame, columns: Sequence[str]) -> TableText:
    """Format the named columns of ``frame`` (missing ones skipped) as strings."""
    cols = [c for c in columns if c in frame.columns]
    text_columns = [_column_text(frame[c]) for c in cols]
    return TableText(cols, [list(row) for row in zip(*text_columns, strict=True)] if cols else [])


def pareto_columns(
    front: FrontResult, columns: Columns, available: Sequence[str] = (), *, head_only: bool = False
) -> list[str]:
    """pareto.csv's columns: the fixed head, the GPU model and energy components (those in ``available``), the
    objectives, then (unless ``head_only``) the config columns and the user's metrics."""
    config = list(columns.config.values())
    head = [*PARETO_METRICS, *(c for c in PARETO_ENERGY if c in available), *(c for c in PARETO_KEYS if c in config)]
    rest = [*(o.metric for o in front.objectives), "knee", "pareto_rank"]
    if not head_only:
        rest += [*config, *columns.extra_metrics.values()]
    return list(dict.fromkeys([*head, *rest]))


def _front_rows(
    trials: pd.DataFrame, mask: pd.Series, front: FrontResult, columns: Columns, *, head_only: bool = False
) -> pd.DataFrame:
    on = trials[mask.fillna(False).to_numpy(dtype=bool)]
    key = m.ENERGY_J if m.ENERGY_J in on.columns else front.objectives[0].metric
    on = on.sort_values([key, "trial_id"], kind="stable")
    return on.reindex(columns=pareto_columns(front, columns, list(trials.columns), head_only=head_only))


def pareto_frame(trials: pd.DataFrame, front: FrontResult, columns: Columns) -> pd.DataFrame:
    """The front's trials (complete only), energy ascending when energy is reported, else by first objective."""
    return _front_rows(trials, trials["on_front"], front, columns)


def model_front_frames(
    trials: pd.DataFrame, front: FrontResult, columns: Columns, models: Sequence[str]
) -> list[tuple[str, pd.DataFrame]]:
    """Per GPU model, the front of that model's complete trials (``MODEL_FRONT``), the pareto table's head columns
    (the whole rows are in pareto.csv and trials.csv); empty for fewer than two models."""
    if len(models) < 2 or MODEL_FRONT not in trials.columns:
        return []
    on_model = trials[MODEL_FRONT].astype(bool)
    return [
        (str(k), _front_rows(trials, on_model & (trials[m.GPU_MODEL] == k), front, columns, head_only=True))
        for k in models
    ]


def _row_text(trials: pd.DataFrame, mask: pd.Series) -> Mapping[str, Any] | None:
    rows = trials[mask.fillna(False).to_numpy(dtype=bool)]
    return None if rows.empty else rows.iloc[0].to_dict()


def _described(row: Mapping[str, Any] | None, acc: str) -> str:
    if row is None:
        return "none"
    return f"trial {row['trial_id']}: {acc} {fmt(row.get(acc))}, energy {fmt(row.get(m.ENERGY_J))} J"


def searched_text(space: SearchSpace) -> str:
    """The searched keys in words, saying where the list came from."""
    names = ", ".join(k.name for k in space.keys) or "none"
    return names if space.from_spec else f"{names} (the manifest has no spec: the config keys that vary across trials)"


def _best(trials: pd.DataFrame, metric: str, largest: bool) -> Mapping[str, Any] | None:
    c = complete(trials)
    values = numeric(c, metric)
    if values.notna().sum() == 0:
        return None
    return c.loc[values.idxmax() if largest else values.idxmin()].to_dict()


def summary_items(
    trials: pd.DataFrame,
    front: FrontResult,
    energy: EnergyInfo,
    carbon: CarbonEstimate,
    manifest: Mapping[str, Any] | None = None,
    space: SearchSpace | None = None,
    *,
    hardware: str | None = None,
    energy_items: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """The summary as (label, text) pairs, in reading order.

    ``hardware``: the GPU models in words (second, right under the trial count: a mixed run must say so first);
    ``energy_items``: the energy's components and provenance, after the energy source.
    """
    counts = trials["state"].value_counts()
    states = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("complete", "stopped", "failed", "running"))
    n_bad = int(trials["unreadable"].notna().sum())
    items = [("Trials", f"{len(trials)} ({states}; {n_bad} unreadable)")]
    if hardware:
        items.append(("GPU models", hardware))
    objectives = ", ".join(f"{o.metric} ({o.direction})" for o in front.objectives)
    items.append(("Objectives", objectives))
    if space is not None:
        items.append(("Searched keys", searched_text(space)))
    if front.missing_metrics:
        items.append(("Missing objectives", "no trial reported " + ", ".join(front.missing_metrics)))
    if front.n_candidates == 0:
        items.append(
            (
                "Pareto front",
                "No trial has completed its full budget with every objective reported, "
                "so there is no Pareto front yet.",
            )
        )
    else:
        n_front = int(trials["on_front"].sum())
        items.append(
            (
                "Pareto front",
                f"{n_front} of {front.n_candidates} complete trials (only trials that ran "
                f"their full budget are candidates); {DUPLICATES_RULE}",
            )
        )
        acc = accuracy_metric(front.objectives)
        items.append((f"Best {acc} (complete trials)", _described(_best(trials, acc, True), acc)))
        items.append(("Lowest energy (complete trials)", _described(_best(trials, m.ENERGY_J, False), acc)))
        items.append(("Knee", _described(_row_text(trials, trials["knee"]), acc) + f". Rule: {KNEE_RULE}."))
        ref = ", ".join(
            f"{o.metric} = {v:.4g}"
            for o, v in zip(front.objectives, front.reference if front.reference is not None else [], strict=False)
        )
        items.append(("Hypervolume", f"{front.hypervolume:.4g} (reference point {ref}; {HV_REFERENCE_RULE})"))
    items.append(("Energy source", energy.statement))
    items.extend(energy_items)
    items.append(("Energy spent by the sweep", _energy_spent(carbon, energy.estimated)))
    items.append(("The sweep's bill", sweep_bill(trials, manifest or {}, energy.estimated)))
    items.append(("CO2e (estimate)", _co2(carbon) + _grid_source(manifest or {})))
    return items


def _grid_source(manifest: Mapping[str, Any]) -> str:
    """Where the run's grid intensity came from (``orchestrator.grid``), as its manifest recorded it; "" if not."""
    carbon = manifest.get("carbon")
    source = carbon.get("grid_source") if isinstance(carbon, Mapping) else None
    return f" Grid intensity: {source}." if isinstance(source, str) and source else ""


def _energy_spent(carbon: CarbonEstimate, estimated: bool) -> str:
    text = fmt_energy(carbon.total_energy_j) + (" (estimated)" if estimated else "")
    text += ", every trial's last reported energy summed: complete, stopped, failed and running trials alike"
    if carbon.n_trials_without_energy:
        text += f" ({carbon.n_trials_without_energy} trials reported no energy and add nothing)"
    return text + "."


def sweep_bill(trials: pd.DataFrame, manifest: Mapping[str, Any], estimated: bool) -> str:
    """Energy by how trials ended, and how much of the slots' time went to no training at all."""
    est = " (estimated)" if estimated else ""
    energy = pd.to_numeric(trials.get(m.ENERGY_J, pd.Series(dtype=float)), errors="coerce").fillna(0.0)
    parts = [
        f"{state} {fmt_energy(float(energy[trials['state'] == state].sum()))}"
        for state in ("complete", "stopped", "failed", "running")
        if (trials["state"] == state).any()
    ]
    text = "energy by how trials ended: " + (", ".join(parts) or "none") + est
    started, ended = manifest.get("created_at"), manifest.get("finished_at")
    slots = manifest.get("slots")
    if started and ended and isinstance(slots, int) and slots > 0:
        wall_s = (pd.Timestamp(ended) - pd.Timestamp(started)).total_seconds()
        busy_s = float(pd.to_numeric(trials.get(m.TIME_S, pd.Series(dtype=float)), errors="coerce").fillna(0).sum())
        idle_s = max(0.0, wall_s * slots - busy_s)
        text += (
            f"; slots: {slots} x {wall_s:.0f} s wall = {wall_s * slots:.0f} slot-seconds, of which trials trained "
            f"{busy_s:.0f} s and {idle_s:.0f} s ({idle_s / max(wall_s * slots, 1e-9):.0%}) went to start-up, "
            "scheduling and waiting"
        )
    return text + "."


def _co2(carbon: CarbonEstimate) -> str:
    defaults = f" (defaults used for {', '.join(carbon.defaults_used)})" if carbon.defaults_used else ""
    return (
        f"{carbon.co2e_g:.4g} g CO2e, an estimate: {carbon.kwh:.4g} kWh x {carbon.grid_g_per_kwh:g} g/kWh "
        f"grid intensity x PUE {carbon.pue:g}{defaults}."
    )


def run_facts(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The manifest's facts worth a line: dataset, status, start, sample count."""
    dataset = manifest.get("dataset")
    name = dataset.get("name") if isinstance(dataset, Mapping) else dataset
    facts = [
        ("Trainable", custom_trainable(manifest)),  # None (left out) for the built-in
        ("Dataset", name),
        ("Status", manifest.get("status")),
        ("Created", manifest.get("created_at")),
        ("Samples asked for", manifest.get("num_samples")),
    ]
    return [(k, str(v)) for k, v in facts if v is not None]


def status_warning(manifest: Mapping[str, Any], manifest_problem: str | None = None) -> str | None:
    """A line to show when the run has not finished cleanly, or its manifest could not be read."""
    if manifest_problem is not None:
        return (
            f"Partial report: {manifest_problem}. It is drawn from the trials' own records; the objectives are "
            "assumed to be the defaults (accuracy max, energy_j min) and the sweep's settings are unknown."
        )
    status = manifest.get("status")
    if status == "running":
        return "The run is still running (or its driver stopped without saying): this report is a snapshot."
    if status == "failed":
        return "The sweep's driver failed: this report shows what the run recorded before it stopped."
    return None
