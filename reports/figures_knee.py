"""Figures about the knee trial: its power trace, confusion matrix and per-layer energy share."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from reports._plot import (
    FigureData,
    downsample,
    energy_label,
    energy_scale,
    new_figure,
    safe_text,
)
from reports.table import numeric
from trainables import metrics as m

MAX_LAYERS = 25  # why: a bar per layer of a 56-layer ResNet is unreadable; the rest are summed
NO_KNEE = "No knee: no complete trial has every objective reported."


def _knee_id(d: FigureData) -> str:
    return safe_text(d.front.knee_id)


def draw_knee_power(d: FigureData) -> Figure | str:
    """The knee trial's power draw over its training time."""
    if d.front.knee_id is None:
        return NO_KNEE
    trace = d.knee_final.get(m.POWER_TRACE)
    if not isinstance(trace, dict):
        return "The knee trial recorded no power trace."
    try:
        t = np.asarray(trace.get("t_s"), dtype=float)
        w = np.asarray(trace.get("watts"), dtype=float)
    except (TypeError, ValueError):
        return "The knee trial's power trace is not numeric."
    if t.ndim != 1 or t.shape != w.shape or len(t) < 2:
        return "The knee trial's power trace has fewer than two samples or mismatched lengths."
    source = str(trace.get("source", "unknown source"))
    estimated = d.energy.estimated or source.startswith("estimated")
    t, w = downsample(t, w)
    fig, ax = new_figure(7.5, 3.8)
    ax.plot(t, w, color="C3", lw=1)
    ax.fill_between(t, w, alpha=0.2, color="C3")
    ax.set_xlabel("Training time (s)")
    ax.set_ylabel("Power (W)" + (" (estimated)" if estimated else ""))
    ax.set_title(f"Knee trial {_knee_id(d)}: power draw ({safe_text(source)})")
    ax.grid(alpha=0.3)
    return fig


def draw_knee_confusion(d: FigureData) -> Figure | str:
    """The knee trial's confusion matrix on the test split (colour: share of the true class)."""
    if d.front.knee_id is None:
        return NO_KNEE
    raw = d.knee_final.get(m.CONFUSION_MATRIX)
    try:
        cm = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        return "The knee trial's confusion matrix is not a numeric square table."
    if raw is None or cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 2:
        return "The knee trial recorded no confusion matrix."
    share = cm / np.where(cm.sum(axis=1, keepdims=True) > 0, cm.sum(axis=1, keepdims=True), 1.0)
    n = cm.shape[0]
    fig, ax = new_figure(5.8, 5.0)
    img = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(img, ax=ax, label="Share of the true class")
    if n <= 15:
        for (i, j), v in np.ndenumerate(cm):
            ax.text(
                j,
                i,
                f"{v:.0f}",
                ha="center",
                va="center",
                fontsize="small",
                color="white" if share[i, j] > 0.5 else "black",
            )
    ticks = range(n) if n <= 30 else range(0, n, max(n // 15, 1))
    ax.set_xticks(list(ticks))
    ax.set_yticks(list(ticks))
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(f"Knee trial {_knee_id(d)}: confusion matrix (test split, counts)")
    return fig


def layer_energy(energy_j: float, layer_flops: dict[str, Any]) -> list[tuple[str, float]]:
    """Split ``energy_j`` across layers in proportion to their FLOPs, largest first, after MAX_LAYERS one 'other'."""
    pairs = [(str(k), float(v)) for k, v in layer_flops.items() if isinstance(v, (int, float)) and v > 0]
    total = sum(v for _, v in pairs)
    if total <= 0:
        return []
    shares = sorted(((k, energy_j * v / total) for k, v in pairs), key=lambda kv: -kv[1])
    if len(shares) > MAX_LAYERS:
        rest = shares[MAX_LAYERS - 1 :]
        shares = [*shares[: MAX_LAYERS - 1], (f"other ({len(rest)} layers)", sum(v for _, v in rest))]
    return shares


def draw_knee_layers(d: FigureData) -> Figure | str:
    """The knee trial's energy attributed to layers by their share of forward FLOPs."""
    if d.front.knee_id is None:
        return NO_KNEE
    flops = d.knee_final.get(m.LAYER_FLOPS)
    knee = d.trials[d.trials["knee"]]
    energy = float(numeric(knee, m.ENERGY_J).iloc[0]) if not knee.empty else float("nan")
    if not isinstance(flops, dict) or not np.isfinite(energy) or energy <= 0:
        return "The knee trial recorded no per-layer FLOPs (or no energy) to attribute."
    shares = layer_energy(energy, flops)
    if not shares:
        return "The knee trial's per-layer FLOPs are all zero."
    factor, unit = energy_scale(max(v for _, v in shares))
    fig, ax = new_figure(8.0, 1.2 + 0.28 * len(shares))
    names = [safe_text(k) for k, _ in shares][::-1]
    ax.barh(names, [v / factor for _, v in shares][::-1], color="C2")
    ax.set_xlabel(energy_label("Energy attributed to the layer", d.energy.estimated, unit))
    ax.set_title(
        f"Knee trial {_knee_id(d)}: energy by layer, attributed by FLOPs share, not measured per layer",
        fontsize="medium",
    )
    ax.tick_params(axis="y", labelsize="small")
    ax.grid(alpha=0.3, axis="x")
    return fig
