"""Figures about the architecture: depth, shortcuts, width x depth, model families (the seed's studies).

Each study needs config keys of the built-in trainable (``depth``, ``width``, ``shortcut``, ``model``);
a run without one (a user's own trainable) gets the study left out with a line naming the key.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reports._plot import (
    FigureData,
    accuracy_label,
    category_colours,
    energy_label,
    energy_scale,
    new_figure,
    new_grid,
    safe_text,
    sorted_unique,
)
from reports.table import complete, numeric
from trainables import metrics as m

MAX_CURVES_PER_DEPTH = 100  # why: 10k faint curves draw slowly and show no more than 100 do
_FAMILY_ORDER = ("FFNN", "FFNN pruned", "ResNet", "ResNet pruned")


def missing_key(d: FigureData, study: str, *keys: str) -> str | None:
    """Why ``study`` cannot be drawn: the first of ``keys`` the run lacks or no trial set (None: all there)."""
    for key in keys:
        if key not in d.trials.columns:
            return f"This run has no `{key}` key: the {study} study needs one."
        if d.trials[key].isna().all():
            return f"No trial recorded a `{key}` value: the {study} study needs one."
    return None


def _models(frame: pd.DataFrame) -> pd.Series:
    # the model of each trial; a run without a `model` key is one model
    if "model" not in frame.columns:
        return pd.Series("all trials", index=frame.index, dtype=object)
    return frame["model"].astype(object).fillna("model n/a")


def _with_numbers(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    out = frame.assign(**{c: numeric(frame, c) for c in columns})
    return out.dropna(subset=list(columns))


def _curves(sub: pd.DataFrame) -> list[Any]:
    ids = pd.unique(sub["trial_id"])
    keep = set(ids[np.linspace(0, len(ids) - 1, min(len(ids), MAX_CURVES_PER_DEPTH)).astype(int)])
    s = sub[sub["trial_id"].isin(keep)].sort_values(["trial_id", m.EPOCH], kind="stable")
    xy = s[[m.EPOCH, m.ACCURACY]].to_numpy(dtype=float)
    cuts = np.flatnonzero(s["trial_id"].to_numpy()[1:] != s["trial_id"].to_numpy()[:-1]) + 1
    return np.split(xy, cuts)


def draw_epochs_by_depth(d: FigureData) -> Figure | str:
    """Validation accuracy over epochs: one thick median line per depth over faint single trials."""
    if why := missing_key(d, "depth", "depth"):
        return why
    e = _with_numbers(d.epochs, m.EPOCH, m.ACCURACY)
    if e.empty:
        return "No epoch reported an accuracy."
    depth = e["trial_id"].map(d.trials.set_index("trial_id")["depth"].astype(object))
    e = e.assign(depth=depth.map(lambda v: "n/a" if pd.isna(v) else v))
    fig, ax = new_figure()
    depths = sorted_unique(e["depth"])
    colours = category_colours(depths)
    for v in depths:
        sub = e[e["depth"] == v]
        ax.add_collection(LineCollection(_curves(sub), colors=[colours[v]], alpha=0.12, linewidths=0.7))
        med = sub.groupby(m.EPOCH)[m.ACCURACY].median()
        n = sub["trial_id"].nunique()
        ax.plot(
            med.index, med.to_numpy(), color=colours[v], lw=2.2, marker="o", ms=3, label=f"depth {safe_text(v)} (n={n})"
        )
    ax.autoscale_view()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Epoch")
    ax.set_ylabel(accuracy_label())
    ax.set_title("Accuracy over epochs by depth (thick: median over trials; thin: single trials)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def draw_depth_tradeoff(d: FigureData) -> Figure | str:
    """Median energy against median accuracy per depth (bars: quartiles), one line per model."""
    if why := missing_key(d, "depth", "depth"):
        return why
    c = _with_numbers(complete(d.trials), "depth", m.ACCURACY, m.ENERGY_J)
    if c["depth"].nunique() < 2:
        return "Fewer than two depths among complete trials with accuracy and energy."
    c = c.assign(model=_models(c))
    factor, unit = energy_scale(float(c[m.ENERGY_J].max()))
    fig, ax = new_figure()
    for i, (model, g) in enumerate(c.groupby("model", sort=True)):
        q = g.groupby("depth")[[m.ACCURACY, m.ENERGY_J]].quantile([0.25, 0.5, 0.75]).unstack()
        acc, en = q[m.ACCURACY], q[m.ENERGY_J] / factor
        ax.errorbar(
            en[0.5],
            acc[0.5],
            xerr=[en[0.5] - en[0.25], en[0.75] - en[0.5]],
            yerr=[acc[0.5] - acc[0.25], acc[0.75] - acc[0.5]],
            marker="o",
            capsize=3,
            color=f"C{i}",
            label=safe_text(model),
        )
        for depth, x, y in zip(q.index, en[0.5], acc[0.5], strict=True):
            ax.annotate(f"d={depth:g}", (x, y), xytext=(4, 4), textcoords="offset points", fontsize="small")
    ax.set_xlabel(energy_label("Median energy per trial", d.energy.estimated, unit))
    ax.set_ylabel("Median " + accuracy_label().lower())
    ax.set_title("Energy against accuracy across depths (complete trials; bars: quartiles)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _shortcut_flag(value: Any) -> str | None:
    text = str(value).strip().lower()
    return {"true": "on", "false": "off", "1": "on", "0": "off"}.get(text)


def draw_shortcut(d: FigureData) -> Figure | str:
    """Shortcut on against off at equal depth (ResNet): median accuracy and energy, whiskers min to max."""
    if why := missing_key(d, "shortcut", "shortcut", "depth"):
        return why
    c = _with_numbers(complete(d.trials), "depth", m.ACCURACY)
    if "model" in c.columns and (c["model"] == "resnet").fillna(False).any():
        c = c[(c["model"] == "resnet").fillna(False)]
    c = c.assign(sc=c["shortcut"].astype(object).map(_shortcut_flag)).dropna(subset=["sc"])
    both = [v for v, g in c.groupby("depth") if g["sc"].nunique() == 2]
    if not both:
        return "No depth has complete trials both with and without shortcuts."
    c = c[c["depth"].isin(both)]
    outcomes = [o for o in (m.ACCURACY, m.ENERGY_J) if numeric(c, o).notna().any()]
    fig, axes = new_grid(1, len(outcomes), 5.2 * len(outcomes), 4.2)
    x = np.arange(len(both))
    for ax, out in zip(axes[0], outcomes, strict=True):
        factor, unit = energy_scale(float(numeric(c, out).max())) if out == m.ENERGY_J else (1.0, "")
        for k, (flag, colour) in enumerate((("on", "C0"), ("off", "C1"))):
            st = c[c["sc"] == flag].groupby("depth")[out].agg(["median", "min", "max"]).reindex(both) / factor
            err = [st["median"] - st["min"], st["max"] - st["median"]]
            ax.bar(x + (k - 0.5) * 0.4, st["median"], 0.4, yerr=err, capsize=3, color=colour, label=f"shortcut {flag}")
        ax.set_xticks(x, [f"{v:g}" for v in both])
        ax.set_xlabel("Depth (layers)")
        is_acc = out == m.ACCURACY
        ax.set_ylabel(accuracy_label() if is_acc else energy_label("Energy per trial", d.energy.estimated, unit))
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].legend(fontsize="small")
    fig.suptitle("ResNet shortcuts on against off at equal depth (complete trials; bar: median, whiskers: min-max)")
    return fig


def _heat(ax: Any, fig: Figure, table: pd.DataFrame, label: str, cmap: str) -> None:
    img = ax.imshow(table.to_numpy(dtype=float), aspect="auto", origin="lower", cmap=cmap)
    ax.set_xticks(range(table.shape[1]), [f"{v:g}" for v in table.columns])
    ax.set_yticks(range(table.shape[0]), [f"{v:g}" for v in table.index])
    ax.set_xlabel("Width (units / first-stage channels)")
    ax.set_ylabel("Depth (layers)")
    fig.colorbar(img, ax=ax, label=label)
    if table.size <= 144:
        for (i, j), v in np.ndenumerate(table.to_numpy(dtype=float)):
            if np.isfinite(v):
                r, g, b, _ = img.cmap(img.norm(v))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # why: readable text on every cell colour
                ax.text(
                    j, i, f"{v:.3g}", ha="center", va="center", fontsize="small", color="white" if dark else "black"
                )


def draw_heatmaps(d: FigureData) -> Figure | str:
    """Width x depth heat maps per model: best accuracy and median energy of complete trials."""
    if why := missing_key(d, "width x depth", "width", "depth"):
        return why
    c = _with_numbers(complete(d.trials), "depth", "width", m.ACCURACY)
    c = c.assign(model=_models(c))
    models = [k for k, g in c.groupby("model") if len(g[["depth", "width"]].drop_duplicates()) >= 2]
    if not models:
        return "No model has complete trials at two or more width x depth combinations."
    has_energy = numeric(c, m.ENERGY_J).notna().any()
    factor, unit = energy_scale(float(numeric(c, m.ENERGY_J).max())) if has_energy else (1.0, "J")
    fig, axes = new_grid(len(models), 2 if has_energy else 1, 11 if has_energy else 6, 4.2 * len(models))
    for r, model in enumerate(models):
        g = c[c["model"] == model]
        acc = g.pivot_table(index="depth", columns="width", values=m.ACCURACY, aggfunc="max")
        _heat(axes[r, 0], fig, acc, "Best validation accuracy (fraction)", "viridis")
        axes[r, 0].set_title(f"{safe_text(model)}: best accuracy")
        if has_energy:
            en = g.assign(e=numeric(g, m.ENERGY_J) / factor).pivot_table(
                index="depth", columns="width", values="e", aggfunc="median"
            )
            _heat(axes[r, 1], fig, en, energy_label("Median energy per trial", d.energy.estimated, unit), "magma")
            axes[r, 1].set_title(f"{safe_text(model)}: median energy")
    fig.suptitle("Width x depth (complete trials; blank: no trial there)")
    return fig


def _family(model: Any, prune: float) -> str:
    name = {"ffnn": "FFNN", "resnet": "ResNet"}.get(str(model), str(model))
    return f"{name} pruned" if prune > 0 else name


def draw_families(d: FigureData) -> Figure | str:
    """FFNN, ResNet and pruned ResNet side by side: the best-accuracy complete trial of each."""
    if why := missing_key(d, "model families", "model"):
        return why
    c = _with_numbers(complete(d.trials), m.ACCURACY).dropna(subset=["model"])
    if c.empty:
        return "No complete trial with a model and an accuracy."
    fam = [_family(mo, p) for mo, p in zip(c["model"], numeric(c, "prune_ratio").fillna(0.0), strict=True)]
    c = c.assign(family=fam)
    if c["family"].nunique() < 2:
        return f"Only one model family among complete trials ({safe_text(c['family'].iloc[0])}): nothing to compare."
    best = c.loc[c.groupby("family")[m.ACCURACY].idxmax()]
    order = sorted(best["family"], key=lambda f: (_FAMILY_ORDER.index(f) if f in _FAMILY_ORDER else 9, f))
    best = best.set_index("family").loc[order]
    flops_col = m.EFFECTIVE_FLOPS if numeric(best, m.EFFECTIVE_FLOPS).notna().any() else m.FLOPS
    factor, unit = energy_scale(float(numeric(best, m.ENERGY_J).max(skipna=True) or 0.0))
    panels = [
        (m.ACCURACY, 1.0, "Best validation accuracy (fraction)"),
        (m.ENERGY_J, factor, energy_label("Energy of that trial", d.energy.estimated, unit)),
        (
            flops_col,
            1.0,
            "FLOPs per sample of that trial" + (" (after pruning)" if flops_col == m.EFFECTIVE_FLOPS else ""),
        ),
    ]
    fig, axes = new_grid(1, 3, 13, 4.2)
    colours = category_colours(order)
    for ax, (col, div, label) in zip(axes[0], panels, strict=True):
        vals = numeric(best, col) / div
        ax.bar([safe_text(f) for f in order], vals.fillna(0.0), color=[colours[f] for f in order])
        for i, v in enumerate(vals):
            ax.text(i, 0 if pd.isna(v) else v, "n/a" if pd.isna(v) else f"{v:.3g}", ha="center", va="bottom")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Model families side by side: the best-accuracy complete trial of each")
    return fig
