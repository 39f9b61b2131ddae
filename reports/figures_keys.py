"""One figure per searched config key: the key's value against the run's accuracy, energy and other objectives.

why one small figure per key, not one parallel-coordinates view of all keys: every key keeps its own
readable axis (categories as categories, a log axis for a learning rate, units on the energy axis),
stopped trials can be drawn faint beside complete ones, and a key the run lacks is left out on its own
line; parallel coordinates of mixed categorical / log / linear keys tangle into lines whose effect per
key is hard to read. The pairwise grid costs a figure per key, which a sweep of a handful of keys affords.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports._plot import FigureData, accuracy_label, energy_axis, metric_unit, new_grid, safe_text, sorted_unique
from reports.analysis import outcome_metrics
from reports.keys import SearchedKey
from reports.table import numeric
from trainables import metrics as m

MAX_TICK_CHARS = 18  # why: a long category name (a module path) would push the panel off the figure
JITTER = 0.3  # width of the strip a category's points spread over, in category slots
LOG_SPAN = 10.0  # a positive numeric key whose max / min exceeds this (> 1 decade) is drawn on a log axis


def _categorical(key: SearchedKey, values: pd.Series) -> bool:
    # the spec's word wins (a choice of numbers stays a choice); numbers are a range, text and booleans categories
    is_number = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
    return bool(key.categorical) if key.categorical is not None and is_number else not is_number


def _positions(values: pd.Series) -> tuple[npt.NDArray[np.float64], list[str]]:
    """x of each point for a categorical key (its category's slot, spread a little), and the tick labels."""
    cats = sorted_unique(values)
    codes = pd.Categorical(values.astype(object), categories=cats).codes.astype(np.float64)
    spread = ((np.arange(len(values)) * 0.618034) % 1.0 - 0.5) * JITTER  # why: deterministic, evenly spread
    labels = [safe_text(c)[:MAX_TICK_CHARS] + ("…" if len(str(c)) > MAX_TICK_CHARS else "") for c in cats]
    return codes + spread, labels


def _label_y(ax: Axes, d: FigureData, metric: str, y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if metric.endswith("_j"):
        what = "Energy per trial" if metric == m.ENERGY_J else metric
        return y / energy_axis(ax, "y", y, what, d.energy.estimated)
    unit = metric_unit(metric)
    ax.set_ylabel(accuracy_label(metric) if unit == metric else f"{metric} ({unit})")
    return y


def _medians(ax: Axes, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], done: npt.NDArray[np.bool_]) -> None:
    # a short black bar at each category's median over its complete trials
    slots = np.rint(x[done])
    for slot in np.unique(slots):
        vals = y[done][(slots == slot) & np.isfinite(y[done])]
        if len(vals):
            ax.plot([slot - 0.3, slot + 0.3], [np.median(vals)] * 2, color="black", lw=1.6, zorder=3)


def _panel(ax: Axes, d: FigureData, pts: pd.DataFrame, metric: str, x: npt.NDArray[np.float64], cat: bool) -> None:
    y = _label_y(ax, d, metric, numeric(pts, metric).to_numpy())
    done = (pts["state"] == "complete").to_numpy(dtype=bool)
    front = pts["on_front"].to_numpy(dtype=bool)
    ax.plot(x[~done], y[~done], ls="", marker="o", ms=3, mew=0, color="0.6", alpha=0.4, label="stopped / other")
    ax.plot(x[done], y[done], ls="", marker="o", ms=4.5, mew=0, color="C0", alpha=0.85, label="complete")
    ax.plot(x[front], y[front], ls="", marker="o", ms=8, mfc="none", mec="black", mew=1, label="on the front")
    if cat:
        _medians(ax, x, y, done)
    ax.grid(alpha=0.3)


def draw_key(d: FigureData, key: SearchedKey) -> Figure | str:
    """The searched ``key`` against the run's accuracy, energy and other objectives, one small panel each."""
    if key.column not in d.trials.columns or d.trials[key.column].isna().all():
        return f"No trial recorded a `{key.name}` value."
    pts = d.trials[d.trials[key.column].notna()]
    metrics = [o for o in outcome_metrics(d.front.objectives) if numeric(pts, o).notna().any()]
    if not metrics:
        return f"No trial with a `{key.name}` value reported " + " or ".join(outcome_metrics(d.front.objectives)) + "."
    cat = _categorical(key, pts[key.column])
    x, ticks = _positions(pts[key.column]) if cat else (numeric(pts, key.column).to_numpy(), [])
    span = x[np.isfinite(x)]
    log = not cat and (key.log or (len(span) > 0 and span.min() > 0 and span.max() / span.min() > LOG_SPAN))
    fig, axes = new_grid(1, len(metrics), 4.3 * len(metrics), 3.5)
    for ax, metric in zip(axes[0], metrics, strict=True):
        _panel(ax, d, pts, metric, x, cat)
        if cat:
            ax.set_xticks(range(len(ticks)), ticks, rotation=30 if len(ticks) > 4 else 0)
        elif log:
            ax.set_xscale("log")
        ax.set_xlabel(safe_text(key.name) + (" (log scale)" if log else ""))
    axes[0, 0].legend(fontsize="small")
    bars = " (black bars: median of the complete trials)" if cat else ""
    fig.suptitle(f"{safe_text(key.name)} against the final values of every trial{bars}")
    return fig
