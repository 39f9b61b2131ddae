"""What every figure shares: its input, labels with units, colours, and PNG rendering.

Figures are drawn on ``matplotlib.figure.Figure`` objects, never through pyplot:
no global state, no GUI backend, PNG through the Agg canvas.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.analysis import EnergyInfo, FrontResult
from reports.keys import SearchedKey
from trainables import metrics as m

DPI = 100
MAX_POINTS_PER_LINE = 2000  # why: a power trace of 100k samples draws no better than 2k, and far slower
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


@dataclass(frozen=True)
class FigureData:
    """Everything a figure may draw from."""

    trials: pd.DataFrame  # trials table with on_front / knee / pareto_rank
    epochs: pd.DataFrame  # epochs table
    front: FrontResult
    energy: EnergyInfo
    knee_final: Mapping[str, Any] = field(default_factory=dict)  # the knee's last epoch line, with FINAL_METRICS
    keys: tuple[SearchedKey, ...] = ()  # the run's searched config keys: a figure each


def has(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Rows where every named column holds a value."""
    return frame.dropna(subset=list(columns)) if all(c in frame.columns for c in columns) else frame.iloc[0:0]


def safe_text(value: Any) -> str:
    """Data as plain figure text: a '$' would start matplotlib's math mode."""
    return str(value).replace("$", r"\$")


def energy_scale(max_j: float) -> tuple[float, str]:
    """(divisor, unit) that keeps energies readable: J, kJ, MJ or GJ."""
    for factor, unit in ((1e9, "GJ"), (1e6, "MJ"), (1e3, "kJ")):
        if max_j >= 10 * factor:
            return factor, unit
    return 1.0, "J"


def energy_label(what: str, estimated: bool, unit: str = "J") -> str:
    """An energy axis label with its unit, saying '(estimated)' when it is."""
    return f"{what} ({unit})" + (" (estimated)" if estimated else "")


def energy_axis(ax: Axes, which: str, values: pd.Series | npt.NDArray[Any], what: str, estimated: bool) -> float:
    """Label an energy axis, log-scaled when the values span more than two decades; return the unit divisor."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    factor, unit = energy_scale(float(arr.max()) if len(arr) else 0.0)
    label = energy_label(what, estimated, unit)
    if len(arr) and arr.min() > 0 and arr.max() / arr.min() > 100:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    (ax.set_xlabel if which == "x" else ax.set_ylabel)(label)
    return factor


def category_colours(values: list[Any]) -> dict[Any, tuple[float, float, float, float]]:
    """A distinct colour per category (tab10 up to 10 categories, else viridis)."""
    cmap = colormaps["tab10"] if len(values) <= 10 else colormaps["viridis"]
    n = max(len(values) - 1, 1)
    return {v: cmap(i if len(values) <= 10 else i / n) for i, v in enumerate(values)}


def sorted_unique(series: pd.Series) -> list[Any]:
    """Distinct non-missing values, sorted (as text when they do not compare)."""
    values = list(pd.unique(series.dropna()))
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def downsample(x: npt.NDArray[Any], y: npt.NDArray[Any], n_max: int = MAX_POINTS_PER_LINE) -> tuple[Any, Any]:
    """Every k-th point so at most ``n_max`` remain (the last one always kept)."""
    if len(x) <= n_max:
        return x, y
    idx = np.unique(np.append(np.linspace(0, len(x) - 1, n_max).astype(int), len(x) - 1))
    return x[idx], y[idx]


def new_figure(width: float = 7.5, height: float = 4.8) -> tuple[Figure, Axes]:
    """A figure with one Axes."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots()


def new_grid(rows: int, cols: int, width: float, height: float) -> tuple[Figure, npt.NDArray[Any]]:
    """A figure with a rows x cols array of Axes (always 2-D)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def metric_unit(metric: str) -> str:
    """The unit a metric name carries (``_j`` J, ``_s`` s), else the name itself."""
    for suffix, unit in (("_j", "J"), ("_s", "s"), ("_ms", "ms"), ("_w", "W")):
        if metric.endswith(suffix):
            return unit
    return metric


def accuracy_label(metric: str = m.ACCURACY) -> str:
    """Axis label for an accuracy metric (a fraction in [0, 1])."""
    return {m.ACCURACY: "Validation accuracy (fraction)", m.TEST_ACCURACY: "Test accuracy (fraction)"}.get(
        metric, metric
    )
