"""Reports of a wattsweep run: tidy tables, the accuracy-vs-energy Pareto front, figures, one HTML page.

Reads the run directory only (through ``rundir``, the format it shares with the sweep); never imports Ray or torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reports.build import build_report, report_from_tables


def __getattr__(name: str) -> Any:
    # why lazy: the builder imports pandas and matplotlib (~0.5 s); a sweep's driver needs them only at its end,
    # where they load while Ray shuts down, not before Ray starts (the run directory's writer is all it needs then)
    if name in ("build_report", "report_from_tables"):
        from reports import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["build_report", "report_from_tables"]
