"""The run's exports (``python -m orchestrator export``) in the report: a table of the artifacts, and the front's
trials marked with the formats they were exported to.

Read from ``RUN_DIR/exports/<trial_id>/model_card.json`` (JSON only, like everything the report reads: a received
run's cards can make the table wrong, never run code). A card that cannot be read is left out of the table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from rundir.layout import EXPORTS_DIR, MODEL_CARD

EXPORTED = "exported"  # the pareto table's column: the formats a front trial was exported to ("" when none)
COLUMNS = [
    "trial_id",
    "format",
    "test_accuracy",
    "accuracy_change_points",
    "params",
    "flops",
    "bytes",
    "latency_ms",
    "energy_j_per_1k",
    "energy_source",
    "quantisation",
    "file",
]
_ORDER = {"onnx": 0, "torchscript": 1, "int8": 2}


def _card(path: Path) -> Mapping[str, Any] | None:
    try:
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    ok = isinstance(card, Mapping) and isinstance(card.get("artifacts"), list)
    return card if ok else None


def _row(trial_id: str, artifact: Mapping[str, Any]) -> dict[str, Any]:
    row = {c: artifact.get(c) for c in COLUMNS if c != "trial_id"}
    quant = artifact.get("quantisation")
    row["quantisation"] = quant.get("mode") if isinstance(quant, Mapping) else None
    row["file"] = f"{EXPORTS_DIR}/{trial_id}/{artifact.get('file')}"
    return {"trial_id": trial_id, **row}


def read_exports(run_dir: Path) -> pd.DataFrame:
    """One row per exported artifact (``COLUMNS``), by trial and format; empty when the run has no exports."""
    root = run_dir / EXPORTS_DIR
    rows = []
    for card_path in sorted(root.glob(f"*/{MODEL_CARD}")) if root.is_dir() else []:
        card = _card(card_path)
        if card is None:
            continue
        trial_id = str(card.get("trial_id", card_path.parent.name))
        rows += [_row(trial_id, a) for a in card["artifacts"] if isinstance(a, Mapping)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if frame.empty:
        return frame
    order = frame["format"].map(lambda f: _ORDER.get(f, len(_ORDER)))
    return frame.assign(_o=order).sort_values(["trial_id", "_o"], kind="stable").drop(columns="_o")


def mark_exported(pareto: pd.DataFrame, exports: pd.DataFrame) -> pd.DataFrame:
    """``pareto`` with an ``exported`` column (the formats of each front trial's exports) when there are exports;
    unchanged when there are none."""
    if exports.empty or "trial_id" not in pareto.columns:
        return pareto
    formats = exports.groupby("trial_id", sort=False)["format"].agg(lambda f: ", ".join(f))
    marked = pareto.assign(**{EXPORTED: pareto["trial_id"].map(formats).fillna("")})
    # why second: a wide front table scrolls; the mark belongs beside the trial it marks
    return marked[["trial_id", EXPORTED, *(c for c in pareto.columns if c != "trial_id")]]
