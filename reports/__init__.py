"""Reports of a wattsweep run: tidy tables, the accuracy-vs-energy Pareto front, figures, one HTML page.

Reads the run directory only; never imports Ray or torch.
"""

from __future__ import annotations

from reports.build import build_report, report_from_tables
from reports.rundir import NotARunError, RunRecord, RunWriter, TrialRecord, is_run_dir, read_run

__all__ = [
    "NotARunError",
    "RunRecord",
    "RunWriter",
    "TrialRecord",
    "build_report",
    "is_run_dir",
    "read_run",
    "report_from_tables",
]
