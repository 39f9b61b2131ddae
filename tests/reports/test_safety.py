"""Nothing let in through a report (issue 16): its files are never written through a link planted in a received
run, report.md carries no link, image or HTML from a name or a config, and no CSV cell runs as a formula."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from reports import build_report
from rundir import RunWriter
from tests.reports.conftest import MANIFEST, config, make_run, write_trial

REPORT_FILES = (
    "index.html",
    "report.md",
    "trials.csv",
    "pareto.csv",
    "provenance.csv",
    "trials.parquet",
    "epochs.parquet",
)
LINK = "[x](http://evil.example/a)"
IMAGE = "![i](http://evil.example/p.png)"
FORMULA_ID = "@SUM(1+1)"  # a trial id that a spreadsheet would run (it is a directory name: no '/')
FORMULAS = {
    "formula": '=HYPERLINK("http://evil.example","x")',
    "note": "+1+cmd|' /C calc'!A0",
    "tag": "-2+3",
    "tabbed": "\t=1+1",
    "=key": "@cmd",  # the column's name is a cell too
}


def _small_run(root: Path, **manifest: object) -> Path:
    return make_run(root, manifest=MANIFEST | manifest, n_complete=4)


# links planted in the run ----------------------------------------------------------------
def test_report_directory_that_is_a_link_is_replaced_not_followed(tmp_path: Path) -> None:
    run, elsewhere = _small_run(tmp_path / "run"), tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "report").symlink_to(elsewhere, target_is_directory=True)
    out = build_report(run)
    assert list(elsewhere.iterdir()) == []
    assert out == run / "report" and not out.is_symlink() and out.is_dir()
    assert {p.name for p in out.iterdir()} >= set(REPORT_FILES)


def test_report_files_that_are_links_are_replaced_not_followed(tmp_path: Path) -> None:
    run, elsewhere = _small_run(tmp_path / "run"), tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim.txt"
    victim.write_text("keep me")
    (run / "report").mkdir()
    for i, name in enumerate(REPORT_FILES):
        if i == 0:
            os.link(victim, run / "report" / name)  # a hard link: truncating it would write the victim
        elif i % 2:
            (run / "report" / name).symlink_to(victim)  # a link to a file that exists
        else:
            (run / "report" / name).symlink_to(elsewhere / f"new-{name}")  # a dangling one: a file it would make
    out = build_report(run)
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["victim.txt"]
    for name in REPORT_FILES:
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0, name
    assert (out / "index.html").stat().st_nlink == 1


# report.md -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a run whose name, one trial id and its config values carry Markdown and formulas."""
    root = _small_run(tmp_path_factory.mktemp("hostile") / "run", name=f"run {LINK} <script>alert(1)</script>")
    # why in init: a searched key (it varies), so the Pareto table of report.md shows it
    cfg = config(init=f"{IMAGE} {LINK} \\{LINK} see http://evil.example/b www.evil.example") | FORMULAS
    cfg["offset"] = -0.5
    # best accuracy at the lowest energy: this trial is the front's best point and shows everywhere
    write_trial(RunWriter(root), FORMULA_ID, cfg, [0.9, 0.93, 0.95], [2.0, 4.0, 5.0], "complete")
    return build_report(root)


def _unescaped(md: str, char: str) -> list[int]:
    """Positions of ``char`` in ``md`` not escaped by a backslash (an even run of backslashes escapes nothing)."""
    return [m.start(2) for m in re.finditer(r"(\\*)(" + re.escape(char) + ")", md) if len(m.group(1)) % 2 == 0]


def test_report_md_carries_no_link_image_or_html(hostile: Path) -> None:
    md = (hostile / "report.md").read_text()
    assert "evil.example" in md  # the hostile values are shown, as text
    assert _unescaped(md, "[") == [] and _unescaped(md, "]") == [], md
    assert "<script" not in md and "&lt;script&gt;" in md
    # bare addresses, which GitHub's Markdown makes links of
    assert not re.search(r"(?<!\\)://|(?<![\w\\])www\.", md), re.findall(r".{20}://.{10}|.{20}www\..{10}", md)
    assert "\\[x\\]" in md and "!\\[i\\]" in md


# CSV -------------------------------------------------------------------------------------
def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(hostile: Path) -> None:
    for name in ("trials.csv", "pareto.csv", "provenance.csv"):
        rows = _rows(hostile / name)
        ids = [r["trial_id"] for r in rows]
        assert FORMULA_ID not in ids and "'" + FORMULA_ID in ids, (name, ids)
        with open(hostile / name, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f))
        assert not [h for h in header if h[:1] in ("=", "+", "-", "@", "\t", "\r")], (name, header)
    row = next(r for r in _rows(hostile / "trials.csv") if r["trial_id"] == "'" + FORMULA_ID)
    assert row["formula"] == "'" + FORMULAS["formula"] and row["note"] == "'" + FORMULAS["note"]
    assert row["tag"] == "'-2+3" and row["tabbed"] == "'\t=1+1" and row["'=key"] == "'@cmd"
    assert float(row["offset"]) == -0.5  # numbers stay numbers, negative ones too
    assert all(float(r["lr"]) > 0 and not r["energy_j"].startswith("'") for r in _rows(hostile / "trials.csv"))
