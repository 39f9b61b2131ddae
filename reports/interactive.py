"""The report's interactive accuracy-energy chart: every trial's point, data for its tooltip, and the inlined code.

index.html stays one self-contained file that works offline: uPlot (vendored in ``reports/vendor/uplot``, see its
README for version and hashes) and the page's own chart code (``templates/explore.js``) are inlined, the data is a
JSON island (``<script type="application/json">``) read with ``JSON.parse``, never run. The static PNG of the same
chart stays in the report (figures, report.md).

The page opens zoomed to the Pareto front (stopped trials, which rank where they stopped, would otherwise stretch
the accuracy axis until the front is a dot); "Show all trials" zooms out.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import markupsafe
import pandas as pd

from reports.analysis import EnergyInfo, FrontResult, accuracy_metric
from reports.exports import EXPORTED
from reports.keys import SearchedKey
from reports.table import numeric
from trainables import metrics as m

VENDOR = Path(__file__).parent / "vendor" / "uplot"
CHART_JS = Path(__file__).parent / "templates" / "explore.js"
# Figures a trial's tooltip shows beside its objectives and searched keys, where the run has them.
TOOLTIP_FIGURES = (m.TEST_ACCURACY, m.TIME_S, m.PARAMS, m.EFFECTIVE_FLOPS, m.ENERGY_SOURCE)
SIGNIFICANT = 6  # digits kept of each number: the tooltip prints 4, the points need no more
# JSON inside <script>: '<' '>' '&' written as \\u escapes, so no '</script>' or '<!--' in data can end the island
_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


@dataclass(frozen=True)
class InteractiveChart:
    """What the template inlines: the chart library's CSS, the code (library + ours), the data as JSON."""

    css: markupsafe.Markup
    script: markupsafe.Markup
    data_json: markupsafe.Markup
    n_points: int


def _plain(value: Any) -> Any:
    """A cell as JSON: a number to SIGNIFICANT digits, a missing value as None, anything else as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        f = float(value)
        if not math.isfinite(f):
            return str(f)
        return int(f) if f.is_integer() and abs(f) < 2**53 else float(f"{f:.{SIGNIFICANT}g}")
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return str(value)


def _column(frame: pd.DataFrame, column: str) -> list[Any]:
    return [_plain(v) for v in frame[column].tolist()] if column in frame.columns else [None] * len(frame)


def chart_data(
    trials: pd.DataFrame, front: FrontResult, energy: EnergyInfo, keys: Sequence[SearchedKey]
) -> dict[str, Any] | None:
    """The chart's data: one entry per trial that reported both the run's accuracy and a positive energy, as
    columns (the page zips them). None when no trial did (the page then shows no chart, the figure's note says why).
    """
    acc = accuracy_metric(front.objectives)
    pts = trials.assign(**{acc: numeric(trials, acc), m.ENERGY_J: numeric(trials, m.ENERGY_J)})
    # why > 0: a trial's energy of 0 J is a bug, not a value, and a log axis cannot place it
    pts = pts[pts[acc].notna() & (pts[m.ENERGY_J] > 0)]
    if pts.empty:
        return None
    others = [o.metric for o in front.objectives if o.metric not in (acc, m.ENERGY_J)]
    figures = [c for c in (*others, *TOOLTIP_FIGURES) if c in pts.columns and c not in (acc, m.ENERGY_J)]
    key_columns = [(k.name, k.column) for k in keys if k.column in pts.columns]
    return {
        "accuracy": acc,
        "energy_estimated": bool(energy.estimated),
        "log_energy": bool(pts[m.ENERGY_J].max() / pts[m.ENERGY_J].min() > 100),  # the static figure's rule
        "trial_id": _column(pts, "trial_id"),
        "state": _column(pts, "state"),
        "x": _column(pts, m.ENERGY_J),
        "y": _column(pts, acc),
        "on_front": [bool(v) for v in pts["on_front"].fillna(False)] if "on_front" in pts else [False] * len(pts),
        "knee": [bool(v) for v in pts["knee"].fillna(False)] if "knee" in pts else [False] * len(pts),
        "epochs_run": _column(pts, "epochs_run"),
        "exported": _column(pts, EXPORTED),  # the formats a trial was exported to ("" or None: not exported)
        "budget_epochs": _column(pts, "budget_epochs"),
        "keys": [name for name, _ in key_columns],
        "config": [_column(pts, column) for _, column in key_columns],
        "figures": figures,
        "figure_values": [_column(pts, c) for c in figures],
    }


def json_island(data: Any) -> markupsafe.Markup:
    """``data`` as JSON that can sit inside a <script> element: nothing in it can close the element."""
    return markupsafe.Markup(json.dumps(data, separators=(",", ":"), allow_nan=False).translate(_JSON_ESCAPES))


@functools.cache
def _inlined_code() -> tuple[str, str]:
    """(CSS, JS) to inline: uPlot's, then ours. Read once per process, on first use (never at import)."""
    css = (VENDOR / "uPlot.min.css").read_text(encoding="utf-8")
    js = (VENDOR / "uPlot.iife.min.js").read_text(encoding="utf-8") + "\n" + CHART_JS.read_text(encoding="utf-8")
    for name, text in (("CSS", css), ("JS", js)):
        # why: inlined as-is; a closing tag inside would end the element early and show code as text
        if "</style" in text.lower() or "</script" in text.lower():
            raise ValueError(f"the chart's inlined {name} holds a closing tag and cannot be inlined")
    return css, js


def interactive_chart(
    trials: pd.DataFrame, front: FrontResult, energy: EnergyInfo, keys: Sequence[SearchedKey]
) -> InteractiveChart | None:
    """The chart for index.html, or None when no trial has a point to draw."""
    data = chart_data(trials, front, energy, keys)
    if data is None:
        return None
    css, js = _inlined_code()
    return InteractiveChart(
        css=markupsafe.Markup(css), script=markupsafe.Markup(js), data_json=json_island(data), n_points=len(data["x"])
    )
