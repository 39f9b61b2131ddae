"""The report's figures, in the order the report shows them, rendered to PNG.

A figure whose data the run lacks is not drawn: it comes back with a one-line
note saying what is missing, and the report prints the note instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from reports._plot import FigureData, to_png
from reports.figures_front import draw_hypervolume_history, draw_knobs, draw_pareto
from reports.figures_knee import draw_knee_confusion, draw_knee_layers, draw_knee_power
from reports.figures_study import (
    draw_depth_tradeoff,
    draw_epochs_by_depth,
    draw_families,
    draw_heatmaps,
    draw_shortcut,
)

__all__ = ["FIGURES", "FigureData", "FigureSpec", "RenderedFigure", "build_figures"]

log = logging.getLogger(__name__)

Drawer = Callable[[FigureData], "Figure | str"]


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its key (file-safe), title, and how to read it."""

    key: str
    title: str
    caption: str
    draw: Drawer


@dataclass(frozen=True)
class RenderedFigure:
    """A drawn figure (``png``) or the reason it was left out (``note``)."""

    key: str
    title: str
    caption: str
    png: bytes | None
    note: str | None = None


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "pareto",
        "Accuracy against energy",
        "Every trial; colour = depth, marker = prune ratio, faint = did "
        "not run its full budget. The line is the Pareto front of complete trials; the star is the knee.",
        draw_pareto,
    ),
    FigureSpec(
        "hypervolume",
        "Front hypervolume against energy spent",
        "How the front improved as the sweep spent "
        "energy (every trial counts, stopped and failed ones too), trials in the order they ended.",
        draw_hypervolume_history,
    ),
    FigureSpec(
        "epochs_by_depth",
        "Accuracy over epochs by depth",
        "Validation accuracy per epoch; thick lines are the median over the trials of one depth.",
        draw_epochs_by_depth,
    ),
    FigureSpec(
        "depth_tradeoff",
        "Energy against accuracy across depths",
        "Median energy and accuracy of the complete trials at each depth, with quartiles.",
        draw_depth_tradeoff,
    ),
    FigureSpec(
        "shortcut",
        "Shortcuts on against off",
        "ResNets of equal depth with and without identity shortcuts (complete trials).",
        draw_shortcut,
    ),
    FigureSpec(
        "heatmaps",
        "Width x depth",
        "Best accuracy and median energy at each width and depth (complete trials).",
        draw_heatmaps,
    ),
    FigureSpec(
        "knobs",
        "Learning rate and prune ratio",
        "Final accuracy and energy against the learning rate and the prune ratio.",
        draw_knobs,
    ),
    FigureSpec(
        "families",
        "Model families",
        "FFNN, ResNet and pruned ResNet: the best-accuracy complete trial of each, its energy and its FLOPs.",
        draw_families,
    ),
    FigureSpec("knee_power", "Knee trial: power trace", "Power drawn while the knee trial trained.", draw_knee_power),
    FigureSpec(
        "knee_confusion",
        "Knee trial: confusion matrix",
        "Rows are true classes, columns predictions.",
        draw_knee_confusion,
    ),
    FigureSpec(
        "knee_layers",
        "Knee trial: energy by layer",
        "The knee trial's energy split across layers in "
        "proportion to their FLOPs: attributed by FLOPs share, not measured per layer.",
        draw_knee_layers,
    ),
)


def _render(spec: FigureSpec, data: FigureData) -> RenderedFigure:
    try:
        drawn = spec.draw(data)
    except Exception as e:
        log.exception("figure %s failed", spec.key)
        return RenderedFigure(
            spec.key, spec.title, spec.caption, None, f"Could not be drawn ({type(e).__name__}: {e})."
        )
    if isinstance(drawn, str):
        return RenderedFigure(spec.key, spec.title, spec.caption, None, drawn)
    return RenderedFigure(spec.key, spec.title, spec.caption, to_png(drawn))


def build_figures(data: FigureData, specs: tuple[FigureSpec, ...] = FIGURES) -> list[RenderedFigure]:
    """Draw every figure in ``specs`` (all of the report's by default)."""
    return [_render(spec, data) for spec in specs]
