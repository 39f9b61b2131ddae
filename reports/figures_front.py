"""Figures about the trade-off itself: every trial against the front, and the front's growth."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib import colormaps
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
    safe_text,
    sorted_unique,
)
from reports.analysis import MODEL_FRONT, accuracy_metric
from reports.exports import EXPORTED
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


def _depth_colours(pts: pd.DataFrame) -> tuple[npt.NDArray[np.float64], list[Line2D]]:
    # colour = depth where the run has one (the built-in trainable); one colour for a run without
    if "depth" not in pts.columns or pts["depth"].isna().all():
        return np.tile(colormaps["tab10"](0), (len(pts), 1)), []
    return _category_colours(pts["depth"], "depth ")


def _category_colours(values: pd.Series, prefix: str = "") -> tuple[npt.NDArray[np.float64], list[Line2D]]:
    categories = sorted_unique(values)
    palette = category_colours(categories)
    table = np.array([palette[v] for v in categories] + [GREY])
    codes = pd.Categorical(values, categories=categories).codes  # -1 (missing) picks GREY, the last row
    handles = [Line2D([], [], ls="", marker="o", color=palette[v], label=f"{prefix}{safe_text(v)}") for v in categories]
    return table[codes], handles


def gpu_model_split(pts: pd.DataFrame) -> bool:
    """True when the trials ran on more than one GPU model: then colour is the model, not the depth."""
    return m.GPU_MODEL in pts.columns and pts[m.GPU_MODEL].dropna().nunique() > 1


def _is_accuracy_energy(d: FigureData, acc: str) -> bool:
    return {(o.metric, o.direction) for o in d.front.objectives} == {(acc, "max"), (m.ENERGY_J, "min")}


def _draw_front(ax: Axes, d: FigureData, pts: pd.DataFrame, acc: str, factor: float) -> list[Line2D]:
    front = pts[pts["on_front"]].sort_values(m.ENERGY_J)
    if front.empty:
        return []
    x, y = front[m.ENERGY_J].to_numpy() / factor, front[acc].to_numpy()
    if _is_accuracy_energy(d, acc):
        ax.step(x, y, where="post", color="black", lw=1.4, zorder=3)
        return [Line2D([], [], color="black", lw=1.4, label="Pareto front (complete trials)")]
    ax.scatter(x, y, s=90, facecolors="none", edgecolors="black", zorder=3)
    return [Line2D([], [], ls="", marker="o", mfc="none", mec="black", label="on the front (all objectives)")]


def _draw_model_fronts(ax: Axes, pts: pd.DataFrame, acc: str, factor: float) -> list[Line2D]:
    """Each GPU model's own front (``on_gpu_model_front``), dashed in the model's colour."""
    if MODEL_FRONT not in pts.columns or not gpu_model_split(pts):
        return []
    palette = category_colours(sorted_unique(pts[m.GPU_MODEL]))
    for model, colour in palette.items():
        own = pts[pts[MODEL_FRONT].astype(bool) & (pts[m.GPU_MODEL] == model)].sort_values(m.ENERGY_J)
        if not own.empty:
            ax.step(own[m.ENERGY_J] / factor, own[acc], where="post", color=colour, lw=1.0, ls="--", zorder=2)
    return [Line2D([], [], color="0.3", lw=1.0, ls="--", label="front of each GPU model")]


def draw_exported(ax: Axes, pts: pd.DataFrame, acc: str, factor: float) -> list[Line2D]:
    """A square around each trial exported with ``export`` (the ``exported`` column, present when the run has
    exports); nothing otherwise."""
    if EXPORTED not in pts.columns:
        return []
    done = pts[pts[EXPORTED].fillna("").astype(str) != ""]
    if done.empty:
        return []
    x, y = done[m.ENERGY_J].to_numpy() / factor, done[acc].to_numpy()
    ax.scatter(x, y, marker="s", s=170, facecolors="none", edgecolors="tab:green", linewidths=1.4, zorder=4)
    return [Line2D([], [], ls="", marker="s", ms=11, mfc="none", mec="tab:green", label="exported (see Exports)")]


def _scatter_trials(ax: Axes, pts: pd.DataFrame, acc: str, factor: float) -> list[Line2D]:
    """Every trial: colour = GPU model (several) or depth, marker = prune ratio (where the run has them), faint
    when not complete."""
    colours, handles = _category_colours(pts[m.GPU_MODEL]) if gpu_model_split(pts) else _depth_colours(pts)
    has_prune = numeric(pts, "prune_ratio").notna().any()
    groups, group_labels = prune_groups(numeric(pts, "prune_ratio")) if has_prune else (np.zeros(len(pts), int), [])
    done = (pts["state"] == "complete").to_numpy(dtype=bool)
    x, y = pts[m.ENERGY_J].to_numpy() / factor, pts[acc].to_numpy()
    for g in range(-1, max(len(group_labels), 1)):
        for is_done, alpha, size in ((False, 0.3, 14), (True, 0.9, 30)):
            sel = (groups == g) & (done == is_done)
            if sel.any():
                ax.scatter(x[sel], y[sel], c=colours[sel], marker=MARKERS[g], s=size, alpha=alpha, linewidths=0)
    labels = [*group_labels, "n/a"] if (groups == -1).any() else group_labels
    handles += [
        Line2D([], [], ls="", marker=MARKERS[g if g < len(group_labels) else -1], color="0.3", label=f"prune {lbl}")
        for g, lbl in enumerate(labels)
    ]
    return [
        *handles,
        Line2D([], [], ls="", marker="o", color="0.3", label="complete (full budget)"),
        Line2D([], [], ls="", marker="o", color="0.3", alpha=0.3, label="stopped / running / failed"),
    ]


def draw_pareto(d: FigureData) -> Figure | str:
    """The run's accuracy against energy for every trial, the front and the knee marked."""
    acc = accuracy_metric(d.front.objectives)
    pts = d.trials.assign(**{acc: numeric(d.trials, acc), m.ENERGY_J: numeric(d.trials, m.ENERGY_J)})
    pts = pts.dropna(subset=[acc, m.ENERGY_J])
    if pts.empty:
        return f"No trial reported both {acc} and energy."
    fig, ax = new_figure(9.0, 5.4)
    factor = energy_axis(ax, "x", pts[m.ENERGY_J], "Energy per trial", d.energy.estimated)
    ax.set_ylabel(accuracy_label(acc))
    handles = _scatter_trials(ax, pts, acc, factor)
    handles += _draw_front(ax, d, pts, acc, factor)
    handles += _draw_model_fronts(ax, pts, acc, factor)
    handles += draw_exported(ax, pts, acc, factor)
    knee = pts[pts["knee"]]
    if not knee.empty:
        kx, ky = float(knee[m.ENERGY_J].iloc[0]) / factor, float(knee[acc].iloc[0])
        ax.scatter([kx], [ky], marker="*", s=320, facecolors="none", edgecolors="red", linewidths=1.6, zorder=4)
        ax.annotate("knee", (kx, ky), xytext=(8, -14), textcoords="offset points", color="red")
        handles.append(Line2D([], [], ls="", marker="*", ms=14, mfc="none", mec="red", label="knee"))
    ax.grid(alpha=0.3)
    ax.set_title(("Accuracy" if acc == m.ACCURACY else safe_text(acc)) + " against energy, every trial")
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
