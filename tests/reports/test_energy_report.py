"""The report's energy: components (measured or estimated), GPU models (several said out loud), provenance.

The run directories are written by RunWriter with what the real meters recorded against fake hardware
(conftest's mixed A10G / L4 run, its CPU node run; ``energy_rigs``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reports import build_report
from reports.analysis import MODEL_FRONT, analyse_front, energy_info, objectives_from_manifest
from reports.components import components_table, counted
from reports.figures import FigureData
from reports.figures_front import draw_pareto
from reports.provenance import provenance_row, provenance_table
from reports.table import build_tables
from rundir import RunWriter, TrialRecord, read_run
from tests.reports.conftest import (
    A10G,
    A10G_LIMIT_W,
    A10G_RATIOS,
    L4,
    L4_LIMIT_W,
    MANIFEST,
    _machines,
    config,
    record_trial,
)
from tests.reports.energy_rigs import lab
from tests.reports.test_html_browser import find_chromium, open_in_chromium
from trainables import metrics as m

OLD_CONTRACT = (m.ENERGY_J, m.DYNAMIC_ENERGY_J, m.TIME_S, m.ENERGY_SOURCE, m.ENERGY_ESTIMATED)  # before issue 15


def _summary(md: str) -> list[str]:
    """The summary's items, as their Markdown lines, in order."""
    block = md[md.index("## Summary") : md.index("## Pareto front")]
    return [line for line in block.splitlines() if line.startswith("- **")]


def _item(md: str, label: str) -> str:
    return next(line for line in _summary(md) if line.startswith(f"- **{label}**"))


def _dominated(a: pd.Series, b: pd.Series) -> bool:
    """b dominates a: at least as accurate and as cheap, better in one."""
    ge = b["accuracy"] >= a["accuracy"] and b["energy_j"] <= a["energy_j"]
    return bool(ge and (b["accuracy"] > a["accuracy"] or b["energy_j"] < a["energy_j"]))


def test_a_mixed_a10g_l4_run_is_flagged_first_and_its_front_split(mixed_report: Path) -> None:
    md = (mixed_report / "report.md").read_text()
    head = md[: md.index("## Summary")]
    assert "MIXED GPU MODELS" in head  # the banner under the title
    hardware = _summary(md)[1]  # right under the trial count
    assert hardware.startswith("- **GPU models**: MIXED GPU MODELS: 2 models, the front spans them")
    assert f"{A10G} (7 trials, 1 on the front)" in hardware and f"{L4} (7 trials, 3 on the front)" in hardware
    assert "## Pareto front by GPU model" in md and f"### {A10G}" in md and f"### {L4}" in md
    trials = pd.read_csv(mixed_report / "trials.csv").set_index("trial_id")
    # each model's front, by brute force over its own complete trials
    for model in (A10G, L4):
        own = trials[(trials["gpu_model"] == model) & (trials["state"] == "complete")]
        expected = {i for i, row in own.iterrows() if not any(_dominated(row, other) for _, other in own.iterrows())}
        assert set(own.index[own[MODEL_FRONT]]) == expected, model
    # the A10G's cheapest trial is beaten by an L4 trial overall, yet leads its own model's front
    assert not trials.loc["a00", "on_front"] and trials.loc["a00", MODEL_FRONT]
    assert trials.loc["a04", "on_front"] and trials.loc["a04", MODEL_FRONT]  # the most accurate of all
    assert not trials.loc[["l_stopped", "a_failed"], MODEL_FRONT].any()
    html = (mixed_report / "index.html").read_text()
    assert 'class="banner warning">MIXED GPU MODELS' in html and 'id="model-fronts"' in html


def test_the_front_figure_colours_by_gpu_model_when_there_are_several(mixed_run: Path) -> None:
    run = read_run(mixed_run)
    trials, front = analyse_front(build_tables(run).trials, objectives_from_manifest(run.manifest))
    fig = draw_pareto(FigureData(trials, pd.DataFrame(), front, energy_info(trials)))
    assert not isinstance(fig, str)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {A10G, L4, "front of each GPU model"} <= set(labels)
    assert not any(label.startswith("depth") for label in labels)  # colour is the model, not the depth


def test_one_gpu_model_is_named_not_flagged(tmp_path: Path) -> None:
    w = RunWriter(tmp_path / "run")
    w.write_manifest(MANIFEST | {"name": "l4-only"})
    with lab(tmp_path / "machines") as machines:
        node = _machines(machines)[L4]
        for i, depth in enumerate((8, 14)):
            epochs = [(0.8 + 0.01 * depth, {"cpu_j": 5.0, "dram_j": 1.0})] * 3
            meter = machines.trial(node, gpu=i)
            record_trial(w, f"l{i}", config(depth=depth), meter, epochs, "complete", seconds=depth / 4)
    out = build_report(tmp_path / "run")
    md = (out / "report.md").read_text()
    assert _item(md, "GPU models") == f"- **GPU models**: {L4} (2 trials, 2 on the front)."
    assert "MIXED" not in md and "Pareto front by GPU model" not in md
    assert MODEL_FRONT not in pd.read_csv(out / "trials.csv").columns
    assert pd.read_csv(out / "pareto.csv")["gpu_model"].tolist() == [L4, L4]


def test_components_say_what_was_measured_and_what_estimated(mixed_run: Path, mixed_report: Path) -> None:
    trials = build_tables(read_run(mixed_run)).trials
    table = components_table(trials).set_index("component")
    assert table.loc["gpu", ["trials", "measured", "estimated", "in_energy_j"]].tolist() == [14, 14, 0, "yes"]
    assert table.loc["gpu", "sources"] == "nvml-counter (14)"
    # the A10G node has no RAPL: its CPU is estimated, recorded beside the measured GPU, not added to energy_j
    assert table.loc["cpu", ["trials", "measured", "estimated", "in_energy_j"]].tolist() == [14, 7, 7, "in 7 of 14"]
    assert set(table.loc["cpu", "sources"].split(", ")) == {"estimated-cpu (7)", "rapl (7)"}
    assert table.loc["dram", ["trials", "measured", "estimated"]].tolist() == [7, 7, 0]
    # what is inside energy_j adds up to every trial's energy_j (the meters' rule, read back by the report)
    inside = counted(trials)
    cols = {"gpu": m.ENERGY_GPU_J, "cpu": m.ENERGY_CPU_J, "dram": m.ENERGY_DRAM_J}
    summed = sum(trials[cols[c]].where(inside[c], 0.0).fillna(0.0) for c in cols)
    assert summed.tolist() == pytest.approx(trials[m.ENERGY_J].tolist(), rel=1e-9)
    assert table["share_of_energy_j"].sum() == pytest.approx(1.0)
    md = (mixed_report / "report.md").read_text()
    assert "| cpu | 14 | 7 | 7 |" in md and "| dram | 7 | 7 | 0 |" in md
    assert "not added to energy_j" in _item(md, "Energy components")
    assert "(82%) is above idle" in _item(md, "Dynamic energy")  # the GPUs' idle baselines (20 W, 16 W)


def test_a_cpu_run_has_only_the_columns_its_trials_have(report_dir: Path) -> None:
    trials = pd.read_csv(report_dir / "trials.csv")
    assert {"dynamic_energy_j", "energy_cpu_j", "energy_cpu_source", "energy_attribution"} <= set(trials.columns)
    assert not {"energy_gpu_j", "energy_gpu_source", "energy_dram_j", "gpu_model"} & set(trials.columns)
    assert not {"energy_gpu_j", "energy_dram_j", "gpu_model"} & set(pd.read_csv(report_dir / "pareto.csv").columns)
    md = (report_dir / "report.md").read_text()
    assert "| cpu | 20 | 0 | 20 | estimated-cpu (20) |" in md  # every trial, the corrupt one by its readable epoch
    assert _item(md, "GPU models") == "- **GPU models**: CPU only: no trial reported a GPU model."


def test_provenance_numbers_come_from_the_trials_records(mixed_report: Path) -> None:
    prov = pd.read_csv(mixed_report / "provenance.csv").set_index("trial_id")
    assert len(prov) == 12  # complete trials record it at their last epoch; the stopped and failed ones do not
    a10g, l4 = prov[prov["gpu_model"] == A10G], prov[prov["gpu_model"] == L4]
    assert sorted(a10g["crosscheck_ratio"]) == pytest.approx(A10G_RATIOS, abs=1e-5)
    assert (a10g["power_limit_w"] == A10G_LIMIT_W).all() and (l4["power_limit_w"] == L4_LIMIT_W).all()
    assert a10g["temperature_start_c"].tolist() == [40, 41, 42, 43, 44, 45]
    assert prov["counter_update_period_s"].tolist() == pytest.approx([0.02] * 12, rel=0.5)  # polled in real time
    assert (a10g["host"] == "estimate (10 W/core)").all() and (l4["host"] == "rapl (package-0, dram)").all()
    assert (a10g["energy_attribution"] == "exclusive").all() and (l4["energy_attribution"] == "shared:cpu-time").all()
    assert a10g["fallback_reasons"].str.startswith("rapl: no RAPL zones").all() and l4["fallback_reasons"].isna().all()
    md = (mixed_report / "report.md").read_text()
    gpu = _item(md, "GPU provenance")
    assert f"{A10G} x 6 trials, driver 580.65.06, NVML 13.580.65.06, power limit 300 W" in gpu
    assert "crosscheck ratio (integrated power / counter) 0.97-1.02 (median 0.995)" in gpu
    assert f"{L4} x 6 trials" in gpu and "power limit 72 W" in gpu and "2 trials recorded none" in gpu
    host = _item(md, "Host CPU provenance")
    assert host.endswith("estimate (10 W/core) x 6 trials, rapl (package-0, dram) x 6 trials.")
    assert "rapl: no RAPL zones under" in _item(md, "Fallbacks") and "(6 trials)" in _item(md, "Fallbacks")
    html = (mixed_report / "index.html").read_text()
    section = html[html.index('id="provenance"') : html.index('id="figures"')]
    assert section.count("<tr><td>") == 12 and "580.65.06" in section


def test_a_cpu_only_run_says_estimate_or_rapl_and_why(report_dir: Path, tmp_path: Path) -> None:
    md = (report_dir / "report.md").read_text()
    assert _item(md, "CPU energy provenance").startswith("- **CPU energy provenance**: estimate (10 W/core) x 16")
    assert "rapl: no RAPL zones under" in _item(md, "Fallbacks")
    w = RunWriter(tmp_path / "run")
    w.write_manifest(MANIFEST | {"name": "rapl"})
    with lab(tmp_path / "machines") as machines:
        node = machines.machine("cpu-rapl", rapl=True)
        for i in range(2):
            epochs = [(0.8 + 0.01 * i, {"cpu_j": 20.0 + i, "dram_j": 2.0})] * 3
            record_trial(w, f"r{i}", config(), machines.trial(node), epochs, "complete")
    md = (build_report(tmp_path / "run") / "report.md").read_text()
    assert "**Energy is measured.** Source: rapl." in md
    assert _item(md, "CPU energy provenance").endswith("rapl (package-0, dram) x 2 trials.")
    assert "Fallbacks" not in md
    assert "| dram | 2 | 2 | 0 | rapl (2) |" in md


def _old_run(root: Path, machines_root: Path) -> Path:
    """A run as the sweep wrote it before issue 15: the meter alone (no host part), no component or model
    metrics, and the manifest's ``energy`` entry the report used to read (the sweep never wrote one)."""
    w = RunWriter(root)
    w.write_manifest(MANIFEST | {"name": "old", "energy": {"source": "estimated-cpu", "estimated": True, "x": "y"}})
    with lab(machines_root) as machines:
        node = _machines(machines)[A10G]
        for i, depth in enumerate((8, 14, 20)):
            meter = machines.trial(node, gpu=0, composite=False)
            w.start_trial(f"o{i}", config(depth=depth), 1)
            energy = {k: v for k, v in meter.epoch(2.0).items() if k in OLD_CONTRACT}
            line: dict[str, Any] = {"epoch": 1, "accuracy": 0.8 + 0.005 * depth, "budget_epochs": 1, **energy}
            if i < 2:  # the third trial's last line was written before provenance existed
                line[m.ENERGY_PROVENANCE] = meter.final()[m.ENERGY_PROVENANCE]
            w.append_epoch(f"o{i}", line)
            meter.stop()
            w.set_state(f"o{i}", "complete", epochs_run=1, budget_epochs=1)
    return root


def test_an_old_run_without_the_new_keys_still_reports(tmp_path: Path) -> None:
    out = build_report(_old_run(tmp_path / "run", tmp_path / "machines"))
    md = (out / "report.md").read_text()
    assert "**Energy is measured.** Source: nvml-counter." in md  # the trials' records, not the manifest's entry
    assert "estimated-cpu" not in md and "x: y" not in md
    assert "did not record energy by component" in _item(md, "Energy components")
    # two trials name their GPU in their provenance; the third recorded neither
    assert (
        _item(md, "GPU models")
        == f"- **GPU models**: {A10G} (2 trials, 0 on the front); 1 trial without a GPU model on record."
    )
    assert f"{A10G} x 2 trials, driver 580.65.06" in _item(md, "GPU provenance")
    assert "1 trial recorded none" in _item(md, "GPU provenance")
    trials = pd.read_csv(out / "trials.csv")
    assert not {"energy_gpu_j", "energy_cpu_j", "energy_gpu_source", "energy_attribution"} & set(trials.columns)
    assert trials["gpu_model"].tolist()[:2] == [A10G, A10G] and pd.isna(trials["gpu_model"].iloc[2])
    prov = pd.read_csv(out / "provenance.csv")
    assert prov["backend"].tolist() == ["nvml", "nvml"] and prov["energy_attribution"].tolist() == ["exclusive"] * 2
    assert "No trial recorded" not in md


@pytest.mark.parametrize(
    "provenance",
    [
        "nvml-counter",
        {"backend": "composite", "parts": "not a list"},
        {"backend": "composite", "parts": [None, {"backend": "nvml", "devices": [None, {"name": 3}]}]},
        {"backend": "nvml", "devices": [{"power_limit_w": "300"}], "crosscheck_ratio": True},
        {"backend": "rapl", "zones": None, "fallback_reasons": "not a list"},
    ],
)
def test_odd_provenance_records_read_as_blanks(provenance: object) -> None:
    trial = TrialRecord("t", {}, "complete", [{m.ENERGY_PROVENANCE: provenance}], 1)
    row = provenance_row(trial)
    assert row is None or row["trial_id"] == "t"
    assert provenance_table([trial, trial]).columns[0] == "trial_id"


def test_temperatures_at_stop_and_several_gpus_are_read(tmp_path: Path) -> None:
    # a meter whose provenance is taken after it stopped (a meter used as a context manager) knows the stop
    with lab(tmp_path) as machines:
        node = machines.machine("a100", gpu="NVIDIA A100-SXM4-40GB", n_gpus=2)
        meter = machines.trial(node, gpu=1, temperature_c=(45, 71))
        meter.epoch(1.0)
        meter.stop()
        provenance = json.loads(json.dumps(meter.meter.provenance()))
    row = provenance_row(TrialRecord("t", {}, "complete", [{m.ENERGY_PROVENANCE: provenance}], 1))
    assert row is not None
    assert (row["temperature_start_c"], row["temperature_stop_c"]) == (45, 71)
    assert row["gpu_model"] == "NVIDIA A100-SXM4-40GB"
    two = {**provenance, "parts": [dict(provenance["parts"][0]), provenance["parts"][1]]}
    device = provenance["parts"][0]["devices"][0]
    two["parts"][0]["devices"] = [device, {**device, "power_limit_w": 250.0, "temperature_start_c": 45}]
    row = provenance_row(TrialRecord("t", {}, "complete", [{m.ENERGY_PROVENANCE: two}], 1))
    assert row is not None and (row["n_gpus"], row["power_limit_w"], row["temperature_start_c"]) == (2, "300/250", 45)


def test_a_meter_replaced_mid_trial_keeps_its_gpu_in_the_provenance(tmp_path: Path) -> None:
    # the shape a fallback meter records when a GPU is lost mid-trial: the estimate that took over, the composite
    # that failed under "replaced", the reason at the top
    with lab(tmp_path) as machines:
        gpu = machines.trial(_machines(machines)[A10G], gpu=0)
        gpu.epoch(2.0, cpu_j=4.0)
        failed = gpu.final()[m.ENERGY_PROVENANCE]
        cpu = machines.trial(machines.machine("same-host"))
        cpu.epoch(2.0, cpu_j=4.0)
        current = cpu.final()[m.ENERGY_PROVENANCE]
    lost = "nvml: GPU is lost (NVML_ERROR_GPU_IS_LOST)"
    record = {**current, "replaced": [failed], "fallback_reasons": [lost, *current["fallback_reasons"]]}
    row = provenance_row(TrialRecord("t", {}, "complete", [{m.ENERGY_PROVENANCE: record}], 1))
    assert row is not None
    assert row["backend"] == "estimate (after composite failed)"
    assert (row["gpu_model"], row["power_limit_w"], row["host"]) == (A10G, A10G_LIMIT_W, "estimate (10 W/core)")
    assert row["fallback_reasons"].startswith(lost + " | rapl: no RAPL zones")


def test_the_mixed_report_opens_in_a_browser(mixed_report: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium not found")
    verdict, _ = open_in_chromium(chromium, mixed_report / "index.html")
    # scripts: the probe, the interactive chart's data and its code
    assert verdict["broken"] == [] and verdict["errors"] == [] and verdict["scripts"] == 3


def test_model_fronts_only_among_complete_trials_of_each_model(mixed_run: Path) -> None:
    run = read_run(mixed_run)
    trials, _ = analyse_front(build_tables(run).trials, objectives_from_manifest(run.manifest))
    on = trials[trials[MODEL_FRONT]]
    assert (on["state"] == "complete").all()
    assert {k for k, _ in itertools.groupby(sorted(on["gpu_model"]))} == {A10G, L4}
