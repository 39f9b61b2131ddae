"""Issue 17, item 3: ``emissions.csv`` in CodeCarbon's format, and each trial's CO2e in trials.csv.

The runs are the report tests' synthetic ones (``conftest``: written with the sweep's own RunWriter, energy from
the real meters on fake hardware): the mixed run has measured GPU, CPU and DRAM energy (L4 node), a measured GPU
beside an estimated CPU (A10G node), grid 400 g/kWh and PUE 1.5 in its manifest; the standard run's energy is the
CPU-time estimate and its manifest names no grid.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest

from reports import build_report
from tests.reports.conftest import MANIFEST, make_run

# The fields of codecarbon.output_methods.emissions_data.EmissionsData in CodeCarbon 3.3.2 (PyPI), in order: the
# header its CSV output writes. Copied from that release's source, not from wattsweep.
CODECARBON_3_3_2_COLUMNS = [
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
]
J_PER_KWH = 3.6e6
GRID, PUE = 400.0, 1.5  # the synthetic runs' manifest
assert MANIFEST["carbon"] == {"grid_g_per_kwh": GRID, "pue": PUE}


def _frames(report: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    emissions = pd.read_csv(report / "emissions.csv", dtype={"run_id": str})
    trials = pd.read_csv(report / "trials.csv", dtype={"trial_id": str}).set_index("trial_id")
    return emissions, trials


def test_the_header_is_codecarbons(mixed_report: Path) -> None:
    with open(mixed_report / "emissions.csv", newline="") as f:
        assert next(csv.reader(f)) == CODECARBON_3_3_2_COLUMNS


def test_units_are_codecarbons_and_add_up(mixed_report: Path) -> None:
    emissions, trials = _frames(mixed_report)
    assert set(emissions["run_id"]) == set(trials.index[trials["energy_j"].notna()])
    for _, row in emissions.iterrows():
        t = trials.loc[row["run_id"]]
        kwh = t["energy_j"] / J_PER_KWH * PUE  # as CodeCarbon: IT energy x PUE
        assert row["energy_consumed"] == pytest.approx(kwh)
        assert row["cpu_energy"] + row["gpu_energy"] + row["ram_energy"] == pytest.approx(kwh)
        assert row["gpu_energy"] == pytest.approx(t["energy_gpu_j"] / J_PER_KWH * PUE)
        assert row["emissions"] == pytest.approx(kwh * GRID / 1000)  # kg
        assert row["duration"] == pytest.approx(t["time_s"])
        assert row["emissions_rate"] == pytest.approx(row["emissions"] / row["duration"])  # kg/s
        assert row["gpu_power"] == pytest.approx(t["energy_gpu_j"] * PUE / t["time_s"])  # W
        assert row["pue"] == PUE and row["project_name"] == "mixed" and row["tracking_mode"] == "process"
        assert row["gpu_model"] == t["gpu_model"]
    l4 = emissions[emissions["gpu_model"] == "NVIDIA L4"]
    assert len(l4) and (l4["ram_energy"] > 0).all()  # DRAM measured by RAPL on the L4 node


def test_trials_csv_has_each_trials_co2e_marked_estimated_where_its_energy_is(mixed_report: Path) -> None:
    emissions, trials = _frames(mixed_report)
    measured = trials[trials["energy_j"].notna()]
    assert measured["co2e_g"].to_numpy() == pytest.approx((measured["energy_j"] / J_PER_KWH * PUE * GRID).to_numpy())
    by_id = emissions.set_index("run_id")
    for tid, t in measured.iterrows():
        assert t["co2e_g"] == pytest.approx(by_id.loc[tid, "emissions"] * 1000)
    # the grid is set for the run: a trial's CO2e is an estimate exactly when its energy is
    assert (measured["co2e_estimated"] == measured["energy_estimated"]).all()
    assert not measured["co2e_estimated"].any()  # measured energy (GPU counters, RAPL) on a set grid


def test_estimated_energy_gives_an_estimated_co2e(report_dir: Path) -> None:
    _, trials = _frames(report_dir)  # the standard run: the CPU-time estimate on every trial, the grid set
    measured = trials[trials["energy_j"].notna()]
    assert measured["energy_estimated"].all() and measured["co2e_estimated"].all()


def test_a_default_grid_makes_every_co2e_an_estimate(tmp_path: Path) -> None:
    manifest = {k: v for k, v in MANIFEST.items() if k != "carbon"}
    report = build_report(make_run(tmp_path / "run", manifest=manifest, n_complete=3))
    emissions, trials = _frames(report)
    measured = trials[trials["energy_j"].notna()]
    assert measured["co2e_estimated"].all()
    assert measured["co2e_g"].to_numpy() == pytest.approx((measured["energy_j"] / J_PER_KWH * 480.0).to_numpy())
    assert (emissions["pue"] == 1.0).all() and (emissions["on_cloud"] == "N").all()


def test_the_cloud_region_the_run_recorded_is_in_the_rows(tmp_path: Path) -> None:
    carbon = {"grid_g_per_kwh": 79.23, "grid_estimated": True, "cloud_provider": "aws", "cloud_region": "us-west-2"}
    carbon |= {"country_name": "United States", "country_iso_code": "USA", "grid_source": "estimated: ..."}
    report = build_report(make_run(tmp_path / "run", manifest=MANIFEST | {"carbon": carbon}, n_complete=2))
    emissions, trials = _frames(report)
    assert set(emissions["cloud_region"]) == {"us-west-2"} and set(emissions["on_cloud"]) == {"Y"}
    assert set(emissions["country_iso_code"]) == {"USA"}
    assert trials.loc[trials["energy_j"].notna(), "co2e_estimated"].all()  # the grid figure is an estimate
    assert "Grid intensity: estimated: ..." in (report / "report.md").read_text()  # the summary says where from


def test_codecarbon_readers_parse_the_numbers(mixed_report: Path) -> None:
    text = (mixed_report / "emissions.csv").read_text()
    frame = pd.read_csv(io.StringIO(text))
    numeric = ["duration", "emissions", "emissions_rate", "cpu_power", "gpu_power", "ram_power", "energy_consumed"]
    assert all(pd.api.types.is_float_dtype(frame[c]) for c in numeric)
    assert (frame[numeric] >= 0).all().all()
