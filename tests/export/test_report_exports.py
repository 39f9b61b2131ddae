"""The report's side of export (reports/exports.py): reading model cards, marking the front. The cards of a real
export are read in test_export_runs.py; here, what the report does with a run without exports or with a card it
cannot read (a received run is data: a bad card leaves the table, it never breaks the report)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reports.exports import EXPORTED, mark_exported, read_exports

CARD = {
    "trial_id": "t1",
    "artifacts": [
        {"format": "int8", "file": "model.int8.onnx", "test_accuracy": 0.9, "quantisation": {"mode": "static"}},
        {"format": "onnx", "file": "model.onnx", "test_accuracy": 0.91},
    ],
}


def test_no_exports_leaves_the_front_as_it_was(tmp_path: Path) -> None:
    pareto = pd.DataFrame({"trial_id": ["t1"], "accuracy": [0.9]})
    exports = read_exports(tmp_path)
    assert exports.empty and mark_exported(pareto, exports) is pareto


def test_cards_become_rows_and_marks_and_a_bad_card_is_left_out(tmp_path: Path) -> None:
    for name, text in {"t1": json.dumps(CARD), "t2": "{not json", "t3": json.dumps({"trial_id": "t3"})}.items():
        (tmp_path / "exports" / name).mkdir(parents=True)
        (tmp_path / "exports" / name / "model_card.json").write_text(text)
    exports = read_exports(tmp_path)
    assert exports[["trial_id", "format"]].values.tolist() == [["t1", "onnx"], ["t1", "int8"]]  # format order
    assert exports["quantisation"].isna().tolist() == [True, False] and exports["quantisation"].iloc[1] == "static"
    assert exports["file"].tolist() == ["exports/t1/model.onnx", "exports/t1/model.int8.onnx"]
    pareto = pd.DataFrame({"trial_id": ["t0", "t1"], "accuracy": [0.8, 0.9]})
    marked = mark_exported(pareto, exports)
    assert list(marked.columns) == ["trial_id", EXPORTED, "accuracy"]
    assert marked[EXPORTED].tolist() == ["", "onnx, int8"]


def test_the_front_figure_squares_the_exported_trials_only() -> None:
    from matplotlib.figure import Figure

    from reports.figures_front import draw_exported

    ax = Figure().subplots()
    pts = pd.DataFrame({"energy_j": [1.0, 2.0], "accuracy": [0.5, 0.9], EXPORTED: ["", "onnx, int8"]})
    handles = draw_exported(ax, pts, "accuracy", 1.0)
    assert [h.get_label() for h in handles] == ["exported (see Exports)"]
    (squares,) = ax.collections
    assert squares.get_offsets().tolist() == [[2.0, 0.9]]
    assert draw_exported(Figure().subplots(), pts.drop(columns=EXPORTED), "accuracy", 1.0) == []
