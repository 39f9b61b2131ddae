"""Figures about the trade-off itself: every trial against the front, the front's growth, two knobs."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reports._plot import (
    MARKERS,
    FigureData,
    accuracy_label,
    category_colours,
    energy_axis,
    metric_unit,
    new_figure,
    new_grid,
    safe_text,
    sorted_unique,
)
from reports.table import numeric
from trainables import metrics as m

GREY = (0.6, 0.6, 0.6, 1.0)
_PRUNE_BINS = (-np.inf, 0.0, 0.25, 0.5, 0.75, np.inf)
_PRUNE_BIN_LABELS = ("0 (dense)", "(0, 0.25]", "(0.25, 0.5]", "(0.5, 0.75]", "> 0.75")


def prune_groups(prune: pd.Series) -> tuple[npt.NDArray[np.intp], list[str]]:
    """A marker group per trial: each prune ratio when there are at most 5, else 5 bins. -1 = unknown."""
    values = sorted_unique(prune)
    if len(values) <= 5:
        codes = pd.Categorical(prune, categories=values).codes.astype(np.intp)
        return codes, [f"{v:g}" for v in values]
    codes = np.digitize(prune.to_numpy(dtype=float), _PRUNE_BINS[1:-1], right=True).astype(np.intp)
    codes[np.isnan(prune.to_numpy(dtype=float))] = -1
    return codes, list(_PRUNE_BIN_LABELS)


def _depth_colours(depth: pd.Series) -> tuple[npt.NDArray[np.float64], list[Line2D]]:
    values = sorted_unique(depth)
    palette = category_colours(values)
    table = np.array([palette[v] for v in values] + [GREY])
    codes = pd.Categorical(depth, categories=values).codes  # -1 (missing) picks GREY, the last row
    handles = [Line2D([], [], ls="", marker="o", color=palette[v], label=f"depth {safe_text(v)}") for v in values]
    return table[codes], handles


def _is_accuracy_energy(d: FigureData) -> bool:
    return {(o.metric, o.direction) for o in d.front.objectives} == {(m.ACCURACY, "max"), (m.ENERGY_J, "min")}


def _draw_front(ax: Axes, d: FigureData, pts: pd.DataFrame, factor: float) -> list[Line2D]:
    front = pts[pts["on_front"]].sort_values(m.ENERGY_J)
    if front.empty:
        return []
    x, y = front[m.ENERGY_J].to_numpy() / factor, front[m.ACCURACY].to_numpy()
    if _is_accuracy_energy(d):
        ax.step(x, y, where="post", color="black", lw=1.4, zorder=3)
        return [Line2D([], [], color="black", lw=1.4, label="Pareto front (complete trials)")]
    ax.scatter(x, y, s=90, facecolors="none", edgecolors="black", zorder=3)
    return [Line2D([], [], ls="", marker="o", mfc="none", mec="black", label="on the front (all objectives)")]


def draw_pareto(d: FigureData) -> Figure | str:
    """Accuracy against energy for every trial: colour = depth, marker = prune ratio, front and knee marked."""
    pts = d.trials.assign(**{m.ACCURACY: numeric(d.trials, m.ACCURACY), m.ENERGY_J: numeric(d.trials, m.ENERGY_J)})
    pts = pts.dropna(subset=[m.ACCURACY, m.ENERGY_J])
    if pts.empty:
        return "No trial reported both accuracy and energy."
    fig, ax = new_figure(9.0, 5.4)
    factor = energy_axis(ax, "x", pts[m.ENERGY_J], "Energy per trial", d.energy.estimated)
    ax.set_ylabel(accuracy_label())
    colours, handles = _depth_colours(pts["depth"])
    groups, group_labels = prune_groups(numeric(pts, "prune_ratio"))
    done = (pts["state"] == "complete").to_numpy(dtype=bool)
    x, y = pts[m.ENERGY_J].to_numpy() / factor, pts[m.ACCURACY].to_numpy()
    for g in range(-1, len(group_labels)):
        for is_done, alpha, size in ((False, 0.3, 14), (True, 0.9, 30)):
            sel = (groups == g) & (done == is_done)
            if sel.any():
                ax.scatter(x[sel], y[sel], c=colours[sel], marker=MARKERS[g], s=size, alpha=alpha, linewidths=0)
    labels = [*group_labels, "n/a"] if (groups == -1).any() else group_labels
    handles += [
        Line2D([], [], ls="", marker=MARKERS[g if g < len(group_labels) else -1], color="0.3", label=f"prune {lbl}")
        for g, lbl in enumerate(labels)
    ]
    handles += [
        Line2D([], [], ls="", marker="o", color="0.3", label="complete (full budget)"),
        Line2D([], [], ls="", marker="o", color="0.3", alpha=0.3, label="stopped / running / failed"),
    ]
    handles += _draw_front(ax, d, pts, factor)
    knee = pts[pts["knee"]]
    if not knee.empty:
        kx, ky = float(knee[m.ENERGY_J].iloc[0]) / factor, float(knee[m.ACCURACY].iloc[0])
        ax.scatter([kx], [ky], marker="*", s=320, facecolors="none", edgecolors="red", linewidths=1.6, zorder=4)
        ax.annotate("knee", (kx, ky), xytext=(8, -14), textcoords="offset points", color="red")
        handles.append(Line2D([], [], ls="", marker="*", ms=14, mfc="none", mec="red", label="knee"))
    ax.grid(alpha=0.3)
    ax.set_title("Accuracy against energy, every trial")
    fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)
    return fig


def draw_hypervolume_history(d: FigureData) -> Figure | str:
    """Front hypervolume against the energy the whole sweep had spent, trials in the order they ended."""
    h = d.front.history
    if h.empty:
        return "No complete trial with every objective reported: there is no front whose hypervolume could grow."
    fig, ax = new_figure()
    factor = energy_axis(ax, "x", h["energy_spent_j"], "Energy spent by the sweep so far", d.energy.estimated)
    ax.step(h["energy_spent_j"] / factor, h["hypervolume"], where="post", color="C0")
    ax.set_ylabel("Front hypervolume (" + " x ".join(metric_unit(o.metric) for o in d.front.objectives) + ")")
    ax.set_title("Front hypervolume against energy spent (all trials, in the order they ended)")
    ax.grid(alpha=0.3)
    return fig


def draw_knobs(d: FigureData) -> Figure | str:
    """Learning rate and prune ratio against final accuracy and energy."""
    knobs = [k for k in ("lr", "prune_ratio") if numeric(d.trials, k).notna().any()]
    outcomes = [o for o in (m.ACCURACY, m.ENERGY_J) if numeric(d.trials, o).notna().any()]
    if not knobs or not outcomes:
        return "The run lacks learning rates / prune ratios or final accuracy / energy."
    fig, axes = new_grid(len(outcomes), len(knobs), 4.6 * len(knobs), 3.4 * len(outcomes))
    done = (d.trials["state"] == "complete").to_numpy(dtype=bool)
    for r, out in enumerate(outcomes):
        for c, knob in enumerate(knobs):
            ax, x, y = axes[r, c], numeric(d.trials, knob).to_numpy(), numeric(d.trials, out).to_numpy()
            if out == m.ACCURACY:
                ax.set_ylabel(accuracy_label())
            else:
                y = y / energy_axis(ax, "y", y, "Energy per trial", d.energy.estimated)
            if knob == "lr" and np.nanmin(x, initial=np.inf) > 0:
                ax.set_xscale("log")
            ax.set_xlabel("Learning rate (log scale)" if knob == "lr" else "Prune ratio (fraction of weights removed)")
            # why plot, not scatter: one colour and size per group draws ~3x faster through Agg's marker path
            ax.plot(
                x[~done],
                y[~done],
                ls="",
                marker="o",
                ms=3,
                mew=0,
                color="0.6",
                alpha=0.4,
                label="stopped / running / failed",
            )
            ax.plot(x[done], y[done], ls="", marker="o", ms=4, mew=0, color="C0", alpha=0.8, label="complete")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    fig.suptitle("Learning rate and prune ratio against final accuracy and energy")
    return fig
