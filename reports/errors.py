"""Failed trials: one line that says what went wrong, and the full error text beside it.

A failed trial's ``error`` is what the sweep recorded: the user's Python traceback (the tail of
Tune's error file), or a one-line message (an orphaned trial, a broken contract).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

MAX_SUMMARY_CHARS = 300  # why: one line in a table; the full text is one click away
NO_ERROR = "(no error recorded)"
# The line a traceback ends with: an unindented exception name, optionally dotted, then ': message' or nothing.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?::\s.*)?$")


def error_summary(text: str | None) -> str:
    """One line for a failed trial: the exception line of a traceback (``KeyError: 'f1'``), or the message itself.

    A message that goes on after its exception line (a multi-line message) is joined into that line.
    """
    lines = [line.rstrip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return NO_ERROR
    starts = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    first = starts[-1] if starts else len(lines) - 1
    summary = " ".join(line.strip() for line in lines[first:])
    return summary if len(summary) <= MAX_SUMMARY_CHARS else summary[: MAX_SUMMARY_CHARS - 1] + "…"


@dataclass(frozen=True)
class FailedTrial:
    """A failed trial as the report lists it."""

    trial_id: str
    summary: str  # one line, see error_summary
    detail: str  # the full error text; "" when the summary already says all of it


def failed_trials(trials: pd.DataFrame) -> list[FailedTrial]:
    """Every failed trial of a trials table, in table order, with its error summarised."""
    failed = trials[(trials["state"] == "failed").fillna(False)]
    out = []
    for tid, err in zip(failed["trial_id"], failed["error"], strict=True):
        text = "" if pd.isna(err) else str(err).strip()
        summary = error_summary(text)
        out.append(FailedTrial(str(tid), summary, "" if text in ("", summary) else text))
    return out


def summarised(errors: pd.Series) -> pd.Series:
    """An ``error`` column with each error cut to its summary line (missing stays missing)."""
    return errors.map(error_summary, na_action="ignore").astype("string")
