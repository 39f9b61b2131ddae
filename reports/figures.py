"""The report's figures, in the order the report shows them, rendered to PNG.

The front, its growth, one figure per searched config key, the seed's studies (depth,
shortcuts, width x depth, model families: drawn where the run has their keys), the knee.
A figure whose data the run lacks is not drawn: it comes back with a one-line
note saying what is missing, and the report prints the note instead.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from reports._plot import FigureData, to_png
from reports.figures_front import draw_hypervolume_history, draw_pareto
from reports.figures_keys import draw_key
from reports.figures_knee import draw_knee_confusion, draw_knee_layers, draw_knee_power
from reports.figures_study import (
    draw_depth_tradeoff,
    draw_epochs_by_depth,
    draw_families,
    draw_heatmaps,
    draw_shortcut,
)
from reports.keys import SearchedKey

__all__ = ["FIGURES", "FigureData", "FigureSpec", "RenderedFigure", "build_figures", "report_figures"]

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


FRONT_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "pareto",
        "Accuracy against energy",
        "Every trial (the run's accuracy: its first objective to maximise); colour = the GPU model where the "
        "trials ran on several (dashed: each model's own front), else depth, and marker = prune ratio where the "
        "run has them; faint = did not run its full budget. The line (or the rings, with more objectives) is the "
        "Pareto front of complete trials; the star is the knee.",
        draw_pareto,
    ),
    FigureSpec(
        "hypervolume",
        "Front hypervolume against energy spent",
        "How the front improved as the sweep spent "
        "energy (every trial counts, stopped and failed ones too), trials in the order they ended.",
        draw_hypervolume_history,
    ),
)
STUDY_FIGURES: tuple[FigureSpec, ...] = (
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
        "families",
        "Model families",
        "FFNN, ResNet and pruned ResNet: the best-accuracy complete trial of each, its energy and its FLOPs.",
        draw_families,
    ),
)
KNEE_FIGURES: tuple[FigureSpec, ...] = (
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


FIGURES = FRONT_FIGURES + STUDY_FIGURES + KNEE_FIGURES  # the figures every run gets (key figures go after the front)


def key_figure(key: SearchedKey) -> FigureSpec:
    """The figure of one searched config key (its file-safe key: ``key_<name>``)."""
    return FigureSpec(
        "key_" + re.sub(r"[^A-Za-z0-9_]", "_", key.name),
        f"Searched key {key.name}",
        f"Final values of every trial against {key.name}: solid = complete trials, faint = stopped, running "
        "or failed ones, ringed = on the Pareto front.",
        functools.partial(draw_key, key=key),
    )


def report_figures(keys: tuple[SearchedKey, ...]) -> tuple[FigureSpec, ...]:
    """The report's figures for a run whose searched keys are ``keys``, in reading order."""
    return FRONT_FIGURES + tuple(key_figure(k) for k in keys) + STUDY_FIGURES + KNEE_FIGURES


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


def build_figures(data: FigureData, specs: tuple[FigureSpec, ...] | None = None) -> list[RenderedFigure]:
    """Draw every figure in ``specs`` (by default the report's, with a figure per key in ``data.keys``)."""
    return [_render(spec, data) for spec in (report_figures(data.keys) if specs is None else specs)]
