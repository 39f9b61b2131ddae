"""The tidy tables: one row per trial, and one row per trial-epoch.

Columns of the trials table, in order: ``trial_id``, ``state``, ``epochs_run``,
``budget_epochs``, the trial config keys (``CONFIG_COLUMNS``, then any other key
a trial's config held), the final epoch's metrics (names from
``trainables.metrics``), ``error``, ``unreadable``, ``ended_at`` (Unix s) and
``end_order`` (0 = the first trial to end; running trials last, in table order).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.rundir import RunRecord, TrialRecord
from trainables import metrics as m
from trainables.config import TrialConfig

# The trial config keys. why derived: a key added to TrialConfig (bn_recalibrate, ...) is never missing here;
# trainables.config is a plain dataclass module (no torch), so reports still import without the training stack
CONFIG_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrialConfig))
HEAD_COLUMNS: tuple[str, ...] = ("trial_id", "state", "epochs_run", "budget_epochs")
METRIC_COLUMNS: tuple[str, ...] = tuple(c for c in m.EPOCH_METRICS if c not in (m.EPOCH, m.BUDGET_EPOCHS))
TAIL_COLUMNS: tuple[str, ...] = ("error", "unreadable", "ended_at", "end_order")
_TEXT_METRICS = frozenset({m.ENERGY_SOURCE, m.ENERGY_ESTIMATED})


@dataclass(frozen=True)
class Tables:
    """The run as two tidy tables."""

    trials: pd.DataFrame  # one row per trial
    epochs: pd.DataFrame  # one row per reported epoch: trial_id, then the epoch metrics


def _budget(t: TrialRecord) -> Any:
    if t.budget_epochs is not None:
        return t.budget_epochs
    return t.final.get(m.BUDGET_EPOCHS, t.config.get("epochs"))


def _trial_row(t: TrialRecord, extra_keys: list[str]) -> dict[str, Any]:
    final = t.final
    row: dict[str, Any] = {
        "trial_id": t.trial_id,
        "state": t.state,
        "epochs_run": final.get(m.EPOCH, len(t.epochs)) if t.epochs else 0,
        "budget_epochs": _budget(t),
    }
    row.update({k: t.config.get(k) for k in CONFIG_COLUMNS})
    row.update({_extra_name(k): t.config.get(k) for k in extra_keys})
    row.update({k: final.get(k) for k in METRIC_COLUMNS})
    row.update({"error": t.error, "unreadable": t.unreadable, "ended_at": t.ended_at})
    return row


_RESERVED = frozenset(HEAD_COLUMNS + METRIC_COLUMNS + TAIL_COLUMNS + ("on_front", "pareto_rank", "knee"))


def _extra_name(key: str) -> str:
    # why: a config key named like a report column must not overwrite that column
    return f"config_{key}" if key in _RESERVED else key


def tidy_column(values: pd.Series) -> pd.Series:
    """Give a column one honest type: boolean, Int64, float, string, or (mixed) text of each value."""
    present = values.dropna()
    kinds = {type(v) for v in present}
    if not kinds:
        return values.astype("float64") if values.dtype == object else values
    if kinds == {bool}:
        return values.astype("boolean")
    if kinds == {int}:
        return values.astype("Int64")
    if kinds <= {int, float}:
        return values.astype("float64")
    if kinds == {str}:
        return values.astype("string")
    # why: mixed types (a string in a numeric key) cannot go to parquet; show each value as text
    return values.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)).astype(
        "string"
    )


def _end_order(ended_at: pd.Series) -> pd.Series:
    # why: hypervolume is plotted against energy spent in the order trials ended; without
    # timestamps the table order (trial ids, which Ray numbers in start order) stands in
    order = ended_at.astype("float64").reset_index(drop=True).sort_values(kind="stable", na_position="last").index
    ranks = pd.Series(range(len(order)), index=order).sort_index()
    return ranks.astype("int64").set_axis(ended_at.index)


def trials_table(run: RunRecord) -> pd.DataFrame:
    """One row per trial: state, config, final metrics, error and why it is unreadable (if it is)."""
    extra = sorted({k for t in run.trials for k in t.config} - set(CONFIG_COLUMNS))
    columns = [*HEAD_COLUMNS, *CONFIG_COLUMNS, *(_extra_name(k) for k in extra), *METRIC_COLUMNS, *TAIL_COLUMNS[:-1]]
    frame = pd.DataFrame([_trial_row(t, extra) for t in run.trials], columns=columns, dtype=object)
    for col in frame.columns:
        if col in ("trial_id", "state", "error", "unreadable"):
            frame[col] = frame[col].astype("string")
        elif col in METRIC_COLUMNS and col not in _TEXT_METRICS:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        else:
            frame[col] = tidy_column(frame[col])
    frame["end_order"] = _end_order(frame["ended_at"])
    return frame


def epochs_table(run: RunRecord) -> pd.DataFrame:
    """One row per reported epoch: ``trial_id`` and the scalar epoch metrics (no confusion matrix etc.)."""
    rows = [row for t in run.trials for row in t.epochs]
    ids = [t.trial_id for t in run.trials for _ in t.epochs]
    frame = (
        pd.DataFrame.from_records(rows, columns=list(m.EPOCH_METRICS))
        if rows
        else pd.DataFrame(columns=list(m.EPOCH_METRICS))
    )
    frame.insert(0, "trial_id", pd.array(ids, dtype="string"))
    for col in m.EPOCH_METRICS:
        if col in _TEXT_METRICS:
            frame[col] = tidy_column(frame[col].astype(object))
        else:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame


def complete(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that ran their whole budget and could be read: the ones whose final numbers compare."""
    return trials[(trials["state"] == "complete").fillna(False) & trials["unreadable"].isna()]


def numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats (NaN where missing or not a number); all NaN when the column is absent."""
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column].astype(object), errors="coerce").astype("float64")


def build_tables(run: RunRecord) -> Tables:
    """Both tidy tables of a run."""
    return Tables(trials=trials_table(run), epochs=epochs_table(run))


def write_tables(tables: Tables, out_dir: Path) -> list[Path]:
    """Write ``trials.csv``, ``trials.parquet`` and ``epochs.parquet`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "trials.csv", out_dir / "trials.parquet", out_dir / "epochs.parquet"]
    tables.trials.to_csv(paths[0], index=False)
    tables.trials.to_parquet(paths[1], index=False)
    tables.epochs.to_parquet(paths[2], index=False)
    return paths
