"""Energy by component (GPU, CPU package, DRAM) and by GPU model: what was measured, what estimated, what it cost.

Per epoch a trial records each component's cumulative joules and source (``trainables.metrics.ENERGY_COMPONENTS``;
null where its machine has no such reading). Its ``energy_j`` is the sum of the measured components, or of the
estimated ones when nothing was measured: an estimate beside a measurement is recorded, not added.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from reports.provenance import trials_text
from reports.table import numeric
from trainables import metrics as m

COMPONENT_COLUMNS: tuple[str, ...] = (
    "component",
    "trials",
    "measured",
    "estimated",
    "sources",
    "energy_j",
    "in_energy_j",
    "share_of_energy_j",
)


def is_estimate(source: object) -> bool:
    """A source that names an estimate (``estimated-cpu``...), not a measurement."""
    return isinstance(source, str) and source.startswith("estimated")


def _text(trials: pd.DataFrame, column: str) -> list[str | None]:
    if column not in trials.columns:
        return [None] * len(trials)
    return [v if isinstance(v, str) else None for v in trials[column].astype(object).tolist()]


def counted(trials: pd.DataFrame) -> dict[str, npt.NDArray[np.bool_]]:
    """Per component, which trials' joules are inside their ``energy_j`` (the rule above)."""
    present = {c: numeric(trials, j).notna().to_numpy(dtype=bool) for c, j, _ in m.ENERGY_COMPONENTS}
    measured = {
        c: present[c] & ~np.array([is_estimate(v) for v in _text(trials, s)], dtype=bool)
        for c, _, s in m.ENERGY_COMPONENTS
    }
    any_measured = np.logical_or.reduce(list(measured.values()))
    return {c: measured[c] | (present[c] & ~any_measured) for c in present}


def _sources(values: list[str | None]) -> str:
    counts = Counter(v if v is not None else "not stated" for v in values)
    return ", ".join(f"{s} ({n})" for s, n in counts.items())


def components_table(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per component any trial recorded: how many measured or estimated it, its sources, its joules,
    the joules inside ``energy_j`` and their share of all trials' ``energy_j`` (every state counts)."""
    total = float(numeric(trials, m.ENERGY_J).fillna(0.0).sum())
    inside = counted(trials)
    rows = []
    for component, joules_col, source_col in m.ENERGY_COMPONENTS:
        joules = numeric(trials, joules_col).to_numpy(dtype=np.float64)
        has = ~np.isnan(joules)
        if not has.any():
            continue
        sources = [s for s, h in zip(_text(trials, source_col), has, strict=True) if h]
        n_estimated = sum(map(is_estimate, sources))
        n_in, n = int(inside[component].sum()), int(has.sum())
        rows.append(
            {
                "component": component,
                "trials": n,
                "measured": n - n_estimated,
                "estimated": n_estimated,
                "sources": _sources(sources),
                "energy_j": float(joules[has].sum()),
                "in_energy_j": "yes" if n_in == n else ("no" if n_in == 0 else f"in {n_in} of {n}"),
                "share_of_energy_j": float(joules[inside[component]].sum()) / total if total > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=list(COMPONENT_COLUMNS))


def components_text(table: pd.DataFrame) -> str:
    """The components table in one sentence."""
    if table.empty:
        return "The trials did not record energy by component (runs made before components were recorded)."
    parts = []
    for row in table.itertuples(index=False):
        how = []
        if row.measured:
            how.append(f"measured in {trials_text(int(row.measured))}")
        if row.estimated:
            how.append(f"estimated in {trials_text(int(row.estimated))}")
        share = "" if pd.isna(row.share_of_energy_j) else f", {row.share_of_energy_j:.0%} of energy_j"
        note = "" if row.in_energy_j == "yes" else f" (inside energy_j: {row.in_energy_j})"
        parts.append(f"{row.component} {' and '.join(how)} [{row.sources}]{share}{note}")
    text = "; ".join(parts) + "."
    if (table["in_energy_j"] != "yes").any():
        text += " An estimate beside a measured component is recorded but not added to energy_j."
    return text


def dynamic_text(trials: pd.DataFrame) -> str | None:
    """The energy above idle (``dynamic_energy_j``) against all energy, over every trial that reported both."""
    energy, dynamic = numeric(trials, m.ENERGY_J), numeric(trials, m.DYNAMIC_ENERGY_J)
    both = energy.notna() & dynamic.notna()
    if not both.any():
        return None
    total, above = float(energy[both].sum()), float(dynamic[both].sum())
    n_flat = int((dynamic[both] >= energy[both]).sum())
    share = f" ({above / total:.0%})" if total > 0 else ""
    text = (
        f"{above:.4g} J of {total:.4g} J{share} is above idle (dynamic_energy_j: energy minus idle power x time, "
        f"summed over {trials_text(int(both.sum()))})"
    )
    if n_flat:
        text += f"; {trials_text(n_flat)} had no idle baseline (or used none): there dynamic energy is all energy"
    return text + "."


def with_gpu_models(trials: pd.DataFrame, provenance: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with ``gpu_model`` filled from the provenance where the epochs did not record it.

    why: runs made before ``gpu_model`` was an epoch metric name their GPUs only in the provenance.
    """
    if m.GPU_MODEL not in provenance.columns or provenance[m.GPU_MODEL].isna().all():
        return trials
    known = provenance.dropna(subset=[m.GPU_MODEL]).set_index("trial_id")[m.GPU_MODEL]
    from_provenance = trials["trial_id"].map(known).astype("string")
    if m.GPU_MODEL not in trials.columns:
        return trials.assign(**{m.GPU_MODEL: from_provenance})
    return trials.assign(**{m.GPU_MODEL: trials[m.GPU_MODEL].astype("string").fillna(from_provenance)})


def gpu_models(trials: pd.DataFrame) -> list[str]:
    """The GPU models the trials ran on (``gpu_model``), most trials first."""
    if m.GPU_MODEL not in trials.columns:
        return []
    counts = trials[m.GPU_MODEL].dropna().astype(str).value_counts(sort=False)
    return [str(k) for k in counts.sort_values(ascending=False, kind="stable").index]


def hardware_text(trials: pd.DataFrame, models: Sequence[str]) -> str:
    """Which GPU models the trials (and the front) ran on, said out loud when there is more than one."""
    n_cpu = int(trials[m.GPU_MODEL].isna().sum()) if m.GPU_MODEL in trials.columns else len(trials)
    cpu = f"; {trials_text(n_cpu)} without a GPU model on record" if n_cpu and models else ""
    if not models:
        return "CPU only: no trial reported a GPU model."

    def one(model: str) -> str:
        on = trials[m.GPU_MODEL] == model
        return f"{model} ({trials_text(int(on.sum()))}, {int((on & trials['on_front']).sum())} on the front)"

    if len(models) == 1:
        return f"{one(models[0])}{cpu}."
    front_models = trials.loc[trials["on_front"], m.GPU_MODEL].dropna().nunique()
    spans = "the front spans" if front_models > 1 else "the front holds one of"
    return (
        f"MIXED GPU MODELS: {len(models)} models, {spans} them: {', '.join(map(one, models))}{cpu}. Energy on "
        "different GPUs is not like for like: the front is also given per model (Pareto front by GPU model)."
    )
