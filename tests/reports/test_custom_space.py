"""Reports of a run of a user's own trainable: its own config keys, its own metrics, its own failures.

The run directory is written with the sweep's RunWriter, in the calls the sweep's recorder makes
(orchestrator/recorder.py): write_manifest, update_manifest on the first result, start_trial with the
trial's config (for a custom trainable only its ``fixed:`` and ``space:`` keys), then per epoch
append_epoch and set_state("running"), and at the end set_state with the end state and Tune's error text.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reports import build_report
from reports.analysis import analyse_front, energy_info, objectives_from_manifest
from reports.errors import NO_ERROR, error_summary
from reports.figures import FigureData
from reports.figures_keys import draw_key
from reports.keys import BUILTIN_TRAINABLE, custom_trainable, searched_keys
from reports.table import CONFIG_COLUMNS, build_tables
from rundir import RunWriter, read_run
from tests.reports.conftest import cpu_node
from tests.reports.energy_rigs import TrialMeter

SPACE = {
    "channels": {"kind": "int", "low": 8, "high": 64},
    "dropout": {"kind": "uniform", "low": 0.0, "high": 0.5},
    "act": {"kind": "choice", "values": ["relu", "gelu", "tanh"]},
    "lr": {"kind": "loguniform", "low": 1e-4, "high": 1e-1},
}
FIXED = {"epochs": 3, "seed": 0}
OBJECTIVES = [{"metric": "f1", "direction": "max"}, {"metric": "energy_j", "direction": "min"}]
MANIFEST: dict[str, Any] = {
    "name": "my-net",
    "spec_path": "my_net.yaml",
    "spec": {
        "name": "my-net",
        "trainable": "mynet:train",
        "fixed": FIXED,
        "space": SPACE,
        "objectives": OBJECTIVES,
        "num_samples": 12,
    },
    "trainable": "mynet:train",
    "objectives": OBJECTIVES,
    "num_samples": 12,
    "status": "finished",
    "created_at": "2026-11-24T10:00:00+00:00",
    "carbon": {},
}
KEY_ERROR_TRACEBACK = """Failure # 1 (occurred at 2026-11-24_10-00-05)
ray::ImplicitFunc.train() (pid=4242, ip=127.0.0.1, actor_id=abc, repr=train)
  File "/venv/lib/python3.11/site-packages/ray/tune/trainable/function_trainable.py", line 261, in _trainable_func
    output = fn()
             ^^^^
  File "/home/me/mynet.py", line 41, in train
    ctx.report({"accuracy": acc, "f1": scores["f1"]})
                                       ~~~~~~^^^^^^
KeyError: 'f1'
"""
CONTRACT_ERROR = (
    "Traceback (most recent call last):\n"
    '  File "/repo/trainables/contract.py", line 210, in report\n'
    "    raise TrialContractError(message)\n"
    "trainables.contract.TrialContractError: objective 'f1' was never reported; "
    "the trial reported: accuracy, loss\n"
)
BUILTIN_ONLY = sorted(set(CONFIG_COLUMNS) - set(SPACE) - set(FIXED))  # model, depth, width, shortcut, ...
SEARCHED_FIGURES = [f"key_{k}" for k in SPACE]
STUDY_NOTES = {
    "epochs_by_depth": "This run has no `depth` key: the depth study needs one.",
    "depth_tradeoff": "This run has no `depth` key: the depth study needs one.",
    "shortcut": "This run has no `shortcut` key: the shortcut study needs one.",
    "heatmaps": "This run has no `width` key: the width x depth study needs one.",
    "families": "This run has no `model` key: the model families study needs one.",
}


def _epoch(epoch: int, budget: int, acc: float, f1: float, energy: dict[str, Any]) -> dict[str, Any]:
    # what the contract hands the recorder: the user's report (accuracy, loss, f1) plus the meter's measurements
    return {
        "accuracy": acc,
        "loss": 1.0 / epoch,
        "f1": f1,
        "epoch": epoch,
        **energy,
        "budget_epochs": budget,
        "node_id": "node-1",
    }


def _record(
    w: RunWriter, tid: str, config: dict[str, Any], epochs: list[tuple[float, float, float]], meter: TrialMeter
) -> None:
    budget = int(config["epochs"])
    w.start_trial(tid, config, budget)
    before = 0.0
    for n, (acc, f1, energy) in enumerate(epochs, 1):
        reading = meter.epoch(1.5, cpu_j=energy - before)  # the estimate's cumulative energy is `energy`
        before = energy
        w.append_epoch(tid, _epoch(n, budget, acc, f1, reading) | (meter.final() if n == budget else {}))
        w.set_state(tid, "running", epochs_run=n, budget_epochs=budget)
        if tid == "c00" and n == 1:
            w.update_manifest(energy_source="estimated-cpu", energy_estimated=True)
    meter.stop()


def write_custom_run(root: Path) -> Path:
    """Eight complete trials, two stopped early, two failed (a KeyError, a broken contract), one without an error."""
    w = RunWriter(root)
    w.write_manifest(MANIFEST)
    acts = ["relu", "gelu", "tanh"]
    with cpu_node() as trial:
        for i in range(8):
            channels, dropout, act, lr = 8 * (i + 1), 0.05 * i, acts[i % 3], 10 ** (-4 + 3 * i / 7)
            f1 = 0.5 + 0.05 * i - 0.2 * dropout
            energy = 10.0 * channels
            config = {**FIXED, "channels": channels, "dropout": dropout, "act": act, "lr": lr}
            epochs = [(f1, f1 - 0.2, energy / 3), (f1, f1 - 0.1, 2 * energy / 3), (f1, f1, energy)]
            _record(w, f"c{i:02d}", config, epochs, trial())
            w.set_state(f"c{i:02d}", "complete", epochs_run=3, budget_epochs=3)
        for i, (channels, act) in enumerate([(16, "relu"), (48, "tanh")]):
            config = {**FIXED, "channels": channels, "dropout": 0.1, "act": act, "lr": 1e-3}
            # better and cheaper than all, yet stopped: not on the front
            _record(w, f"s{i}", config, [(0.99, 0.99, 1.0)], trial())
            w.set_state(f"s{i}", "stopped", epochs_run=1, budget_epochs=3)
    for tid, error in (("f_key", KEY_ERROR_TRACEBACK), ("f_contract", CONTRACT_ERROR), ("f_none", None)):
        config = {**FIXED, "channels": 32, "dropout": 0.2, "act": "gelu", "lr": 1e-2}
        w.start_trial(tid, config, 3)
        w.set_state(tid, "failed", epochs_run=0, budget_epochs=3, error=error)
    return root


@pytest.fixture(scope="module")
def custom_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(write_custom_run(tmp_path_factory.mktemp("custom") / "run"))


def _drawn(page: str) -> set[str]:
    return set(re.findall(r'<figure id="fig-([\w]+)">\s*<img src="data:image/png;base64,', page))


def _left_out(page: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="note" id="fig-([\w]+)">([^<]*)</p>', page))


def test_custom_keys_and_user_metrics_are_columns_and_builtin_keys_are_not(custom_report: Path) -> None:
    trials = pd.read_csv(custom_report / "trials.csv")
    front = pd.read_csv(custom_report / "pareto.csv")
    for frame in (trials, front):
        assert {"channels", "dropout", "act", "lr", "epochs", "seed", "f1"} <= set(frame.columns)
        assert not set(BUILTIN_ONLY) & set(frame.columns), set(BUILTIN_ONLY) & set(frame.columns)
        assert "node_id" not in frame.columns  # the Ray adapter's, not the user's
    # the searched keys lead the config columns, in the spec's order
    config_cols = [c for c in trials.columns if c in {*SPACE, *FIXED}]
    assert config_cols == [*SPACE, *FIXED]
    assert trials.set_index("trial_id").loc["c07", "f1"] == pytest.approx(0.5 + 0.35 - 0.2 * 0.35)
    assert set(front["trial_id"]) <= {f"c{i:02d}" for i in range(8)} and len(front) >= 2
    epochs = pd.read_parquet(custom_report / "epochs.parquet")
    assert epochs.loc[epochs["trial_id"] == "c01", "f1"].round(6).tolist() == [0.34, 0.44, 0.54]


def test_custom_keys_and_f1_reach_both_pages(custom_report: Path) -> None:
    md = (custom_report / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| trial_id |"))
    for name in ("channels", "dropout", "act", "f1"):
        assert f"| {name} |" in header
    assert "shortcut" not in header and "depth" not in header
    assert "Searched keys**: channels, dropout, act, lr" in md and "Trainable: mynet:train" in md
    page = (custom_report / "index.html").read_text()
    headers = re.findall(r"<th>([^<]*)</th>", page)
    assert {"channels", "dropout", "act", "f1"} <= set(headers)
    assert not set(BUILTIN_ONLY) & set(headers)


def test_one_figure_per_searched_key_and_each_study_left_out_with_its_reason(custom_report: Path) -> None:
    page = (custom_report / "index.html").read_text()
    drawn, left_out = _drawn(page), _left_out(page)
    assert {"pareto", "hypervolume", *SEARCHED_FIGURES} <= drawn
    assert "key_epochs" not in drawn | set(left_out)  # fixed, not searched
    for key, reason in STUDY_NOTES.items():
        assert key not in drawn and reason in left_out[key], (key, left_out.get(key))
    assert "Could not be drawn" not in page
    md = (custom_report / "report.md").read_text()
    for reason in STUDY_NOTES.values():
        assert reason in md
    assert "- Searched key act: in index.html" in md


def test_failed_trials_show_a_summary_line_and_the_full_error(custom_report: Path) -> None:
    md = (custom_report / "report.md").read_text()
    failed_md = md[md.index("## Failed trials") :]
    assert "- f_key: KeyError: 'f1'" in failed_md
    contract = "objective 'f1' was never reported; the trial reported: accuracy, loss"
    assert f"- f_contract: trainables.contract.TrialContractError: {contract}" in failed_md
    assert f"- f_none: {NO_ERROR}" in failed_md
    assert "mynet.py" not in md  # the Markdown has the summary line only
    page = html.unescape((custom_report / "index.html").read_text())
    failed = page[page.index('id="failed"') : page.index('id="unreadable"')]
    assert "<code>KeyError: 'f1'</code>" in failed and contract in failed
    details = re.findall(r"<details><summary>full error</summary><pre>(.*?)</pre></details>", failed, re.S)
    assert len(details) == 2 and any('File "/home/me/mynet.py", line 41, in train' in d for d in details)
    trials_table = page[page.index('id="trials"') :]
    assert "KeyError: 'f1'" in trials_table and "mynet.py" not in trials_table  # the table cell: the summary


def _figure_data(root: Path) -> FigureData:
    run = read_run(root)
    tables = build_tables(run)
    trials, front = analyse_front(tables.trials, objectives_from_manifest(run.manifest))
    keys = searched_keys(run.manifest, trials, tables.columns.config).keys
    return FigureData(trials, tables.epochs, front, energy_info(trials), keys=keys)


def test_key_figures_put_the_key_on_x_and_the_objectives_on_y(tmp_path: Path) -> None:
    d = _figure_data(write_custom_run(tmp_path / "run"))
    by_name = {k.name: k for k in d.keys}
    act = draw_key(d, by_name["act"])
    assert not isinstance(act, str)
    f1_ax, energy_ax = act.axes
    assert f1_ax.get_ylabel() == "f1" and energy_ax.get_ylabel().startswith("Energy per trial (J)")
    assert [t.get_text() for t in f1_ax.get_xticklabels()] == ["gelu", "relu", "tanh"]  # categories, not numbers
    lr = draw_key(d, by_name["lr"])
    assert not isinstance(lr, str) and lr.axes[0].get_xscale() == "log"  # 1e-4 .. 1e-1 spans three decades
    channels = draw_key(d, by_name["channels"])
    assert not isinstance(channels, str) and channels.axes[0].get_xscale() == "linear"  # 8 .. 64: under a decade
    assert channels.axes[0].get_xlim()[1] >= 64


def test_a_key_no_trial_recorded_is_left_out_not_drawn_empty(tmp_path: Path) -> None:
    root = write_custom_run(tmp_path / "run")
    RunWriter(root).update_manifest(spec=MANIFEST["spec"] | {"space": SPACE | {"kernel": {"kind": "int"}}})
    d = _figure_data(root)
    kernel = next(k for k in d.keys if k.name == "kernel")
    assert draw_key(d, kernel) == "No trial recorded a `kernel` value."


def test_clashing_names_are_renamed_and_objectives_keep_theirs(tmp_path: Path) -> None:
    # a user reports the learning rate it ends with (metric `lr`) beside its config key `lr`, and a metric `error`
    w = RunWriter(tmp_path)
    w.write_manifest(MANIFEST | {"objectives": [{"metric": "lr", "direction": "max"}, OBJECTIVES[1]]})
    w.start_trial("a", {"lr": 0.1, "state": "x", "epochs": 1}, 1)
    with cpu_node() as trial:
        energy = trial().epoch(1.5, cpu_j=3.0)
    w.append_epoch("a", _epoch(1, 1, 0.5, 0.4, energy) | {"lr": 0.05, "error": 2.0, "per_class": [0.1, 0.2]})
    w.set_state("a", "complete", epochs_run=1, budget_epochs=1)
    out = build_report(tmp_path)
    row = pd.read_csv(out / "trials.csv").iloc[0]
    assert (row["config_lr"], row["lr"], row["config_state"], row["state"]) == (0.1, 0.05, "x", "complete")
    assert row["metric_error"] == 2.0 and pd.isna(row["error"])
    assert "per_class" not in row.index  # a list is not a scalar metric
    assert pd.read_csv(out / "pareto.csv")["trial_id"].tolist() == ["a"]  # the objective read the metric `lr`
    assert "metric_error" in pd.read_parquet(out / "epochs.parquet").columns


def test_the_builtin_trainable_is_named_as_the_loader_names_it() -> None:
    from trainables.loader import BUILTIN

    assert BUILTIN_TRAINABLE == BUILTIN
    assert custom_trainable({"trainable": BUILTIN, "spec": {"name": "x"}}) is None
    assert custom_trainable({}) is None  # a run made before custom trainables
    assert custom_trainable({"spec": {"trainable": "mynet:train"}}) == "mynet:train"  # only the raw spec says
    assert custom_trainable({"trainable": "mynet:train"}) == "mynet:train"


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        (KEY_ERROR_TRACEBACK, "KeyError: 'f1'"),
        (
            CONTRACT_ERROR,
            "trainables.contract.TrialContractError: objective 'f1' was never reported; "
            "the trial reported: accuracy, loss",
        ),
        ("ValueError: two lines\n  of message\n", "ValueError: two lines of message"),
        ("orphaned: started just before the driver died", "orphaned: started just before the driver died"),
        ('Traceback (most recent call last):\n  File "x.py", line 1\nSystemExit', "SystemExit"),
        (None, NO_ERROR),
        ("  \n", NO_ERROR),
    ],
)
def test_error_summary_is_the_exception_line(text: str | None, summary: str) -> None:
    assert error_summary(text) == summary


def test_a_builtin_run_still_gets_the_seed_studies(report_dir: Path) -> None:
    page = (report_dir / "index.html").read_text()
    drawn = _drawn(page)
    assert {"epochs_by_depth", "depth_tradeoff", "shortcut", "heatmaps", "families"} <= drawn
    # no spec in this manifest: the searched keys are the config keys that vary across trials
    assert {f"key_{k}" for k in ("model", "depth", "width", "shortcut", "lr", "prune_ratio")} == {
        k for k in drawn if k.startswith("key_")
    }
    assert _left_out(page) == {}
    trials = pd.read_csv(report_dir / "trials.csv")
    assert [c for c in trials.columns if c in CONFIG_COLUMNS] == list(CONFIG_COLUMNS)
