"""build_report: a run directory in, ``<run_dir>/report/`` out."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from reports import analysis
from reports.components import (
    components_table,
    components_text,
    dynamic_text,
    gpu_models,
    hardware_text,
    with_gpu_models,
)
from reports.emissions import with_co2e, write_emissions
from reports.errors import failed_trials, summarised
from reports.exports import mark_exported, read_exports
from reports.figures import FigureData, build_figures
from reports.html import ReportPage, write_pages
from reports.interactive import interactive_chart
from reports.keys import searched_keys
from reports.output import report_dir, write_csv
from reports.provenance import provenance_summary, provenance_table
from reports.summary import (
    TableText,
    model_front_frames,
    pareto_frame,
    run_facts,
    status_warning,
    summary_items,
    table_text,
)
from reports.table import Tables, build_tables, write_tables
from rundir import REPORT_DIR, RunRecord, read_run

__all__ = ["build_report", "report_from_tables"]


def _knee_final(run: RunRecord | None, knee_id: str | None) -> dict[str, Any]:
    if run is None or knee_id is None:
        return {}
    return next((t.final for t in run.trials if t.trial_id == knee_id), {})


def _listing(trials: pd.DataFrame, column: str) -> list[tuple[str, str]]:
    # (trial id, text of column) of the rows with a value
    rows = trials[trials[column].notna()]
    return [(str(i), str(v)) for i, v in zip(rows["trial_id"], rows[column], strict=True)]


def _energy_items(trials: pd.DataFrame, components: pd.DataFrame, provenance: pd.DataFrame) -> list[tuple[str, str]]:
    """The summary's energy lines after the source: components, dynamic energy, provenance."""
    items = [("Energy components", components_text(components))]
    dynamic = dynamic_text(trials)
    if dynamic:
        items.append(("Dynamic energy", dynamic))
    return items + provenance_summary(provenance, len(trials))


def _components_text(components: pd.DataFrame) -> TableText:
    shown = components.assign(
        energy_j=components["energy_j"].map(lambda j: f"{j:.4g}"),
        share_of_energy_j=components["share_of_energy_j"].map(lambda v: "" if pd.isna(v) else f"{v:.1%}"),
    )
    return table_text(shown, shown.columns)


def report_from_tables(
    tables: Tables,
    manifest: Mapping[str, Any],
    out_dir: Path,
    *,
    run: RunRecord | None = None,
) -> Path:
    """Write the report for already-built tables into ``out_dir`` (``run`` supplies the knee's traces).

    Split from build_report so a benchmark can time the report without the run directory's reading.
    """
    report_dir(out_dir)
    objectives = analysis.objectives_from_manifest(manifest)
    provenance = provenance_table(run.trials if run is not None else [])
    write_csv(provenance, out_dir / "provenance.csv")
    trials, front = analysis.analyse_front(with_gpu_models(tables.trials, provenance), objectives)
    energy = analysis.energy_info(trials)
    carbon = analysis.carbon_estimate(manifest, trials)
    trials = with_co2e(trials, manifest)  # why before the tables: trials.csv carries each trial's CO2e
    write_emissions(trials, manifest, out_dir)
    write_tables(dataclasses.replace(tables, trials=trials), out_dir)
    exports = read_exports(run.run_dir) if run is not None else read_exports(out_dir.parent)
    pareto = mark_exported(pareto_frame(trials, front, tables.columns), exports)  # why: `report` after `export`
    write_csv(pareto, out_dir / "pareto.csv")
    if not exports.empty:
        write_csv(exports, out_dir / "exports.csv")
    components = components_table(trials)
    models = gpu_models(trials)
    hardware = hardware_text(trials, models)
    space = searched_keys(manifest, trials, tables.columns.config)
    knee = _knee_final(run, front.knee_id)
    marked = mark_exported(trials, exports)  # why: the front figure marks exported trials
    figures = build_figures(FigureData(marked, tables.epochs, front, energy, knee, keys=space.keys))
    energy_items = _energy_items(trials, components, provenance)
    summary = summary_items(
        trials, front, energy, carbon, manifest, space, hardware=hardware, energy_items=energy_items
    )
    model_fronts = model_front_frames(trials, front, tables.columns, models)
    page = ReportPage(
        title=str(manifest.get("name", out_dir.parent.name)),
        facts=run_facts(manifest),
        warning=status_warning(manifest, run.manifest_problem if run is not None else None),
        energy_estimated=energy.estimated,
        energy_statement=energy.statement,
        hardware_warning=hardware if len(models) > 1 else None,
        summary=summary,
        pareto=table_text(pareto, pareto.columns),
        model_fronts=[(model, table_text(f, f.columns)) for model, f in model_fronts],
        components=_components_text(components),
        provenance=table_text(provenance, provenance.columns),
        figures=figures,
        failed=failed_trials(trials),
        unreadable=_listing(trials, "unreadable"),
        # why the summary line: a traceback of 4,000 characters in a table cell; the failed list has it whole
        trials=table_text(trials.assign(error=summarised(trials["error"])), trials.columns),
        chart=interactive_chart(marked, front, energy, space.keys),  # why marked: exported trials say so
        exports=None if exports.empty else table_text(exports, exports.columns),
    )
    write_pages(page, out_dir)
    return out_dir


def build_report(run_dir: str | os.PathLike[str]) -> Path:
    """Read a run directory and write its report into ``<run_dir>/report/``; return that directory.

    Writes ``index.html`` (self-contained), ``report.md``, ``pareto.csv``, ``trials.csv``, ``provenance.csv``
    (each trial's energy provenance, one row per trial that recorded it), ``emissions.csv`` (CodeCarbon's
    format, ``reports.emissions``), ``trials.parquet`` and ``epochs.parquet``. Works on unfinished runs (a
    snapshot) and without Ray or torch. Links planted in the run's ``report/`` are replaced, never written
    through; CSV cells that would run as formulas are neutralised (see ``reports.output``).
    Raises ``NotARunError`` naming the path when ``run_dir`` is missing or not a wattsweep run.
    """
    run = read_run(run_dir)
    return report_from_tables(build_tables(run), run.manifest, run.run_dir / REPORT_DIR, run=run)
