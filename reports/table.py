"""The tidy tables: one row per trial, and one row per trial-epoch.

Columns of the trials table, in order: ``trial_id``, ``state``, ``epochs_run``,
``budget_epochs``, the trial config keys, the final epoch's metrics (names from
``trainables.metrics``; the energy components, attribution and GPU model only where
some trial recorded them: ``OPTIONAL_METRICS``), the user's own scalar metrics (final epoch), ``error``,
``unreadable``, ``ended_at`` (Unix s) and ``end_order`` (0 = the first trial to end;
running trials last, in table order).

Config keys: a built-in run's are ``CONFIG_COLUMNS`` (every TrialConfig key, whether
a trial set it or not), then any other key a trial's config held, sorted. A custom
trainable's run has only the keys its trials hold: the searched ones (spec order),
then the rest as the configs list them. A config key named like a report column or a
metric is renamed ``config_<key>``; a user metric named like a report column
``metric_<name>``. Metrics keep their names otherwise: objectives refer to them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.keys import custom_trainable, spec_space
from reports.output import report_dir, write_csv, write_parquet
from rundir import RunRecord, TrialRecord
from trainables import metrics as m
from trainables.config import TrialConfig

# The trial config keys. why derived: a key added to TrialConfig (bn_recalibrate, ...) is never missing here;
# trainables.config is a plain dataclass module (no torch), so reports still import without the training stack
CONFIG_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrialConfig))
HEAD_COLUMNS: tuple[str, ...] = ("trial_id", "state", "epochs_run", "budget_epochs")
METRIC_COLUMNS: tuple[str, ...] = tuple(c for c in m.EPOCH_METRICS if c not in (m.EPOCH, m.BUDGET_EPOCHS))
TAIL_COLUMNS: tuple[str, ...] = ("error", "unreadable", "ended_at", "end_order")
_TEXT_METRICS = frozenset(
    {m.ENERGY_SOURCE, m.ENERGY_ESTIMATED, m.ENERGY_ATTRIBUTION, m.GPU_MODEL, *(s for _, _, s in m.ENERGY_COMPONENTS)}
)
# Metrics a trial may lack by nature (no GPU, no RAPL DRAM, a run made before they were recorded): a column no
# trial has is left out of the tables rather than shown empty.
OPTIONAL_METRICS: frozenset[str] = frozenset(
    {m.ENERGY_ATTRIBUTION, m.GPU_MODEL, *(name for _, j, s in m.ENERGY_COMPONENTS for name in (j, s))}
)
_KNOWN_METRICS = frozenset((*m.EPOCH_METRICS, *m.FINAL_METRICS, *m.RAY_METRICS))
_RESERVED = frozenset(HEAD_COLUMNS + METRIC_COLUMNS + TAIL_COLUMNS + ("on_front", "pareto_rank", "knee"))


@dataclass(frozen=True)
class Columns:
    """Which columns of the tables hold config keys and the user's own metrics."""

    config: Mapping[str, str] = field(default_factory=dict)  # config key -> its trials column, in column order
    extra_metrics: Mapping[str, str] = field(default_factory=dict)  # user metric -> its column (trials and epochs)


@dataclass(frozen=True)
class Tables:
    """The run as two tidy tables."""

    trials: pd.DataFrame  # one row per trial
    epochs: pd.DataFrame  # one row per reported epoch: trial_id, the epoch metrics, the user's own metrics
    columns: Columns  # which columns are config keys and user metrics


def _budget(t: TrialRecord) -> Any:
    if t.budget_epochs is not None:
        return t.budget_epochs
    return t.final.get(m.BUDGET_EPOCHS, t.config.get("epochs"))


def _config_keys(run: RunRecord) -> list[str]:
    seen = list(dict.fromkeys(k for t in run.trials for k in t.config))
    if custom_trainable(run.manifest) is None:
        return [*CONFIG_COLUMNS, *sorted(set(seen) - set(CONFIG_COLUMNS))]
    # why not CONFIG_COLUMNS: a user's trainable has its own keys; the built-in's would be empty columns
    searched = [str(k) for k in spec_space(run.manifest) or {} if k in seen]
    return list(dict.fromkeys([*searched, *seen]))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _extra_metric_names(run: RunRecord) -> list[str]:
    """The user's own scalar metrics (outside trainables.metrics), in the order the epochs first report them."""
    rows = [row for t in run.trials for row in t.epochs]
    names = set().union(*rows) - _KNOWN_METRICS  # why a set union first: C speed on 10k-trial runs
    if not names:
        return []
    first_seen = dict.fromkeys(k for row in rows for k in row if k in names)
    return [k for k in first_seen if all(_is_scalar(row.get(k)) for row in rows)]


def table_columns(run: RunRecord) -> Columns:
    """The config and user-metric columns of a run's tables, with clashing names renamed."""
    # why metrics keep their names: objectives name them; a config key or report column gives way instead
    metrics = {k: f"metric_{k}" if k in _RESERVED else k for k in _extra_metric_names(run)}
    taken = _RESERVED | set(metrics.values())
    config = {k: f"config_{k}" if k in taken else k for k in _config_keys(run)}
    return Columns(config, metrics)


def _trial_row(t: TrialRecord, cols: Columns) -> dict[str, Any]:
    final = t.final
    row: dict[str, Any] = {
        "trial_id": t.trial_id,
        "state": t.state,
        "epochs_run": final.get(m.EPOCH, len(t.epochs)) if t.epochs else 0,
        "budget_epochs": _budget(t),
    }
    row.update({c: t.config.get(k) for k, c in cols.config.items()})
    row.update({k: final.get(k) for k in METRIC_COLUMNS})
    row.update({c: final.get(k) for k, c in cols.extra_metrics.items()})
    row.update({"error": t.error, "unreadable": t.unreadable, "ended_at": t.ended_at})
    return row


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


def _metric_column(values: pd.Series) -> pd.Series:
    # a user metric: floats when every value is a number (as the contract's metrics are), else tidy_column's type
    present = values.dropna()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pd.to_numeric(values, errors="coerce").astype("float64")
    return tidy_column(values.astype(object))


def trials_table(run: RunRecord, cols: Columns | None = None) -> pd.DataFrame:
    """One row per trial: state, config, final metrics, error and why it is unreadable (if it is)."""
    cols = cols or table_columns(run)
    extra = list(cols.extra_metrics.values())
    columns = [*HEAD_COLUMNS, *cols.config.values(), *METRIC_COLUMNS, *extra, *TAIL_COLUMNS[:-1]]
    frame = pd.DataFrame([_trial_row(t, cols) for t in run.trials], columns=columns, dtype=object)
    for col in frame.columns:
        if col in ("trial_id", "state", "error", "unreadable"):
            frame[col] = frame[col].astype("string")
        elif col in METRIC_COLUMNS and col not in _TEXT_METRICS:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        elif col in extra:
            frame[col] = _metric_column(frame[col])
        else:
            frame[col] = tidy_column(frame[col])
    frame["end_order"] = _end_order(frame["ended_at"])
    return _without_empty_optional(frame)


def _without_empty_optional(frame: pd.DataFrame) -> pd.DataFrame:
    empty = [c for c in frame.columns if c in OPTIONAL_METRICS and frame[c].isna().all()]
    return frame.drop(columns=empty)


def epochs_table(run: RunRecord, cols: Columns | None = None) -> pd.DataFrame:
    """One row per reported epoch: ``trial_id``, the scalar epoch metrics (no confusion matrix etc.), user metrics."""
    extra = (cols or table_columns(run)).extra_metrics
    names = [*m.EPOCH_METRICS, *extra]
    rows = [row for t in run.trials for row in t.epochs]
    ids = [t.trial_id for t in run.trials for _ in t.epochs]
    frame = pd.DataFrame.from_records(rows, columns=names) if rows else pd.DataFrame(columns=names)
    frame = frame.rename(columns=dict(extra))
    frame.insert(0, "trial_id", pd.array(ids, dtype="string"))
    for col in m.EPOCH_METRICS:
        if col in _TEXT_METRICS:
            frame[col] = tidy_column(frame[col].astype(object))
        else:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    for col in extra.values():
        frame[col] = _metric_column(frame[col])
    return _without_empty_optional(frame)


def complete(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that ran their whole budget and could be read: the ones whose final numbers compare."""
    return trials[(trials["state"] == "complete").fillna(False) & trials["unreadable"].isna()]


def numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats (NaN where missing or not a number); all NaN when the column is absent."""
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column].astype(object), errors="coerce").astype("float64")


def build_tables(run: RunRecord) -> Tables:
    """Both tidy tables of a run, and which of their columns are config keys and user metrics."""
    cols = table_columns(run)
    return Tables(trials=trials_table(run, cols), epochs=epochs_table(run, cols), columns=cols)


def write_tables(tables: Tables, out_dir: Path) -> list[Path]:
    """Write ``trials.csv``, ``trials.parquet`` and ``epochs.parquet`` into ``out_dir``; return their paths."""
    report_dir(out_dir)
    return [
        write_csv(tables.trials, out_dir / "trials.csv"),
        write_parquet(tables.trials, out_dir / "trials.parquet"),
        write_parquet(tables.epochs, out_dir / "epochs.parquet"),
    ]
