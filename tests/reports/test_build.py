"""build_report end to end on synthetic run directories."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from reports import build_report
from reports.analysis import analyse_front, energy_info, objectives_from_manifest
from reports.figures import FigureData
from reports.figures_front import draw_pareto
from reports.table import build_tables
from rundir import NotARunError, RunWriter, read_run
from tests.reports.energy_rigs import lab

FILES = {"index.html", "report.md", "pareto.csv", "trials.csv", "trials.parquet", "epochs.parquet"}
N_FIXED_FIGURES = 10  # front, hypervolume, five seed studies, three of the knee; then one per searched key
# the synthetic run's manifest has no spec: its searched keys are the config keys that vary across its trials
VARYING_KEYS = ("model", "depth", "width", "shortcut", "lr", "prune_ratio")
PARETO_COLUMNS = [
    "trial_id",
    "accuracy",
    "test_accuracy",
    "energy_j",
    "dynamic_energy_j",
    "energy_source",
    "energy_cpu_j",  # the one component a CPU node without RAPL has: its estimate
    "depth",
    "width",
    "lr",
    "prune_ratio",
]


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', html)


def test_writes_every_file(report_dir: Path) -> None:
    assert report_dir.name == "report" and (report_dir.parent / "wattsweep.json").is_file()
    assert {p.name for p in report_dir.iterdir()} >= FILES


def test_pareto_csv_holds_only_complete_trials(report_dir: Path) -> None:
    front = pd.read_csv(report_dir / "pareto.csv")
    assert list(front.columns[: len(PARETO_COLUMNS)]) == PARETO_COLUMNS
    assert {"model", "shortcut", "seed", "knee"} <= set(front.columns)
    trials = pd.read_csv(report_dir / "trials.csv").set_index("trial_id")
    assert len(front) >= 1
    assert (trials.loc[front["trial_id"], "state"] == "complete").all()
    # t_stopped is better AND cheaper than every complete trial, yet stays off the front
    assert "t_stopped" not in set(front["trial_id"])
    assert front["knee"].sum() == 1


def test_trials_csv_has_every_trial_and_the_unreadable_one_is_listed(report_dir: Path) -> None:
    trials = pd.read_csv(report_dir / "trials.csv").set_index("trial_id")
    assert len(trials) == 20
    assert {"state", "depth", "lr", "accuracy", "energy_j", "error", "unreadable"} <= set(trials.columns)
    assert trials["unreadable"].notna().tolist().count(True) == 1
    assert "state.json: missing" in trials.loc["t_corrupt", "unreadable"]
    html = (report_dir / "index.html").read_text()
    unreadable = html[html.index('id="unreadable"') : html.index('id="trials"')]
    assert "t_corrupt" in unreadable
    failed = html[html.index('id="failed"') : html.index('id="unreadable"')]
    assert "t_failed" in failed and "CUDA out of memory" in failed
    assert len(pd.read_parquet(report_dir / "epochs.parquet")) == 16 * 3 + 5


def test_html_is_self_contained_with_every_figure(report_dir: Path) -> None:
    html = (report_dir / "index.html").read_text()
    images = _images(html)
    assert len(images) == N_FIXED_FIGURES + len(VARYING_KEYS), re.findall(r"left out\.[^<]*", html)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    assert "<link" not in html and "@import" not in html
    # the interactive chart's data (JSON, never run) and its inlined code are the only scripts; none has a src
    assert re.findall(r"<script[^>]*>", html) == ['<script type="application/json" id="ws-explore-data">', "<script>"]
    assert "Could not be drawn" not in html


def test_summary_states_energy_source_estimate_and_co2e(report_dir: Path) -> None:
    md = (report_dir / "report.md").read_text()
    assert "ENERGY IS ESTIMATED, NOT MEASURED" in md and "estimated-cpu" in md
    assert "Knee" in md and "utopia" in md  # the rule is stated
    assert "g CO2e, an estimate" in md and "400 g/kWh" in md and "PUE 1.5" in md
    energy = pd.read_csv(report_dir / "trials.csv")["energy_j"].sum()
    assert f"{energy:.4g} J" in md  # stopped, failed and running trials counted too
    assert "| trial_id | accuracy |" in md
    html = (report_dir / "index.html").read_text()
    assert "ENERGY IS ESTIMATED, NOT MEASURED" in html


def test_markup_in_names_and_configs_is_escaped(hostile_report: Path) -> None:
    html = (hostile_report / "index.html").read_text()
    # the chart's two script elements only (its data island escapes '<' as \u003c)
    assert html.count("<script") == 2 and "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "t-&lt;img src=x onerror=alert(2)&gt;" in html
    md = (hostile_report / "report.md").read_text()
    assert "<script" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "t-<img src=x onerror=alert(2)>" in set(pd.read_csv(hostile_report / "pareto.csv")["trial_id"])


def test_a_run_without_a_finished_trial_says_so(tmp_path: Path, trial_writer: Callable[..., None]) -> None:
    w = RunWriter(tmp_path)
    w.write_manifest({"name": "early", "status": "running"})
    trial_writer(w, "a", {"depth": 8}, [0.5], [3.0], "running")
    trial_writer(w, "b", {"depth": 8}, [0.6], [3.0], "stopped")
    out = build_report(tmp_path)
    md = (out / "report.md").read_text()
    assert "no Pareto front" in md and "still running" in md
    assert pd.read_csv(out / "pareto.csv").empty
    html = (out / "index.html").read_text()
    assert "No knee" in html and "left out" in html


def test_an_empty_run_still_reports(tmp_path: Path) -> None:
    RunWriter(tmp_path).write_manifest({"name": "empty"})
    out = build_report(tmp_path)
    assert {p.name for p in out.iterdir()} >= FILES
    assert "0 (0 complete" in (out / "report.md").read_text()


def test_figures_without_data_are_left_out_with_a_note(tmp_path: Path) -> None:
    # a bare trainable on a GPU node: accuracy and what the meter adds, nothing else (no FLOPs, no confusion matrix)
    w = RunWriter(tmp_path / "run")
    w.write_manifest({"name": "bare"})
    with lab(tmp_path / "machines") as machines:
        node = machines.machine("l4", gpu="NVIDIA L4", rapl=True)
        for i, acc in enumerate([0.7, 0.8]):
            meter = machines.trial(node, gpu=0, gpu_w=50.0 * (i + 1))
            w.start_trial(f"t{i}", {"model": "resnet", "depth": 8}, 1)
            w.append_epoch(f"t{i}", {"epoch": 1, "accuracy": acc, **meter.epoch(2.0, cpu_j=3.0), **meter.final()})
            meter.stop()
            w.set_state(f"t{i}", "complete", epochs_run=1, budget_epochs=1)
    html = (build_report(tmp_path / "run") / "index.html").read_text()
    notes = re.findall(r'<p class="note" id="fig-([a-z_]+)">', html)
    assert {"knee_confusion", "knee_layers", "shortcut", "heatmaps", "families"} <= set(notes)
    # one epoch, and still a power figure: a GPU trial's trace is the GPU's sampled power, not one point per epoch
    assert "knee_power" not in notes
    assert "ESTIMATED" not in html and "Energy is measured" in html
    assert len(_images(html)) == N_FIXED_FIGURES - len(notes)  # no key varies: no figure per key


@pytest.mark.parametrize(("estimated", "suffix"), [(True, "(estimated)"), (False, "")])
def test_energy_axis_says_estimated(run_dir: Path, estimated: bool, suffix: str) -> None:
    run = read_run(run_dir)
    trials = build_tables(run).trials.assign(energy_estimated=estimated, energy_source="x")
    trials, front = analyse_front(trials, objectives_from_manifest(run.manifest))
    fig = draw_pareto(FigureData(trials, pd.DataFrame(), front, energy_info(trials)))
    assert not isinstance(fig, str)
    label = fig.axes[0].get_xlabel()
    assert label.startswith("Energy per trial (J)") and label.endswith(suffix)


def test_not_a_run_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(NotARunError, match="missing-run"):
        build_report(tmp_path / "missing-run")
    with pytest.raises(NotARunError, match=re.escape(str(tmp_path))):
        build_report(tmp_path)


def test_reports_never_imports_ray_or_torch(tmp_path: Path, trial_writer: Callable[..., None]) -> None:
    w = RunWriter(tmp_path)
    w.write_manifest({"name": "tiny"})
    trial_writer(w, "a", {"depth": 8}, [0.5], [3.0], "complete", budget=1)
    code = (
        "import sys, reports; reports.build_report(sys.argv[1]); "
        "bad = [m for m in ('ray', 'torch') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=Path(__file__).parents[2])


def test_three_objectives(tmp_path: Path, make_run_dir: Callable[..., Path]) -> None:
    objectives = [
        {"metric": "accuracy", "direction": "max"},
        {"metric": "energy_j", "direction": "min"},
        {"metric": "params", "direction": "min"},
    ]
    root = make_run_dir(tmp_path / "run", manifest={"name": "three", "objectives": objectives}, n_complete=8)
    out = build_report(root)
    md = (out / "report.md").read_text()
    assert "params (min)" in md and "Hypervolume" in md
    assert "params" in pd.read_csv(out / "pareto.csv").columns
    assert len(_images((out / "index.html").read_text())) == N_FIXED_FIGURES + len(VARYING_KEYS)
