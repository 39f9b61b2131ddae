"""Backend selection, idle baseline, carbon and the doctor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pynvml
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainables.energy import (
    DEFAULT_GRID_G_PER_KWH,
    co2e_g,
    doctor_lines,
    make_meter,
    measure_idle_power,
)

UUID_A = "GPU-aaaa1111-0000-0000-0000-000000000000"
UUID_B = "GPU-bbbb2222-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"device": "tpu"}, "device must be"),
        ({"device": "cuda:x"}, "device must be"),
        ({"backend": "zeus"}, "backend must be one of"),
        ({"gpu_fraction": 0.0}, "gpu_fraction must be"),
        ({"gpu_fraction": 1.5}, "gpu_fraction must be"),
        ({"sample_interval_s": 0.0}, "sample_interval_s must be"),
        ({"device": "cpu", "backend": "nvml"}, "measures GPUs"),
    ],
)
def test_make_meter_validates_where_inputs_enter(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_meter(**kwargs)


def test_auto_prefers_nvml_then_rapl_then_estimate(fake_nvml: Any, make_gpu: Any, fake_rapl: Any) -> None:
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    fake_nvml(make_gpu(UUID_A))
    # a GPU trial measures its GPU and, beside it, its host CPU
    assert make_meter("cuda", rapl_root=fake_rapl.root, crosscheck=False).source == "nvml-counter+rapl"
    assert make_meter("cpu", rapl_root=fake_rapl.root).source == "rapl"  # a cpu trial never asks NVML
    assert make_meter("cpu", backend="estimate", rapl_root=fake_rapl.root).source == "estimated-cpu"


def test_a_gpu_trials_energy_is_its_gpu_cpu_and_dram_each_recorded(
    fake_nvml: Any, make_gpu: Any, fake_rapl: Any
) -> None:
    from trainables.energy import CompositeMeter

    gpu = make_gpu(UUID_A, energy_mj=0)
    fake_nvml(gpu)
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    fake_rapl.add("intel-rapl:0:0", "dram", 0)
    meter = make_meter("cuda", rapl_root=fake_rapl.root, crosscheck=False)
    assert isinstance(meter, CompositeMeter)
    gpu_part, host_part = meter.parts
    gpu_part.idle_power_w, host_part.idle_power_w = 0.0, 0.0
    meter.start()
    gpu.energy_mj = 300_000  # 300 J
    fake_rapl.set("intel-rapl:0", 120_000_000)  # package 120 J
    fake_rapl.set("intel-rapl:0:0", 30_000_000)  # dram 30 J
    r = meter.stop()
    assert r.components == {"gpu": pytest.approx(300.0), "cpu": pytest.approx(120.0), "dram": pytest.approx(30.0)}
    assert r.component_sources == {"gpu": "nvml-counter", "cpu": "rapl", "dram": "rapl"}
    assert r.energy_j == pytest.approx(450.0) and r.dynamic_energy_j == pytest.approx(450.0)
    assert (r.source, r.estimated, r.attribution_label) == ("nvml-counter+rapl", False, "exclusive")
    prov = meter.provenance()
    assert prov["backend"] == "composite" and [p["backend"] for p in prov["parts"]] == ["nvml", "rapl"]


def test_an_estimated_host_is_recorded_beside_a_measured_gpu_not_added(fake_nvml: Any, make_gpu: Any) -> None:
    from trainables.energy import CompositeMeter, CpuTimeEstimateMeter, NvmlMeter
    from trainables.energy._nvml import visible_devices

    gpu = make_gpu(UUID_A, energy_mj=0)
    fake_nvml(gpu)
    cpu_s = [0.0]
    host = CpuTimeEstimateMeter(watts_per_core=10.0, cpu_clock=lambda: cpu_s[0])
    meter = CompositeMeter([NvmlMeter(visible_devices(), crosscheck=False), host])
    meter.start()
    gpu.energy_mj, cpu_s[0] = 500_000, 3.0
    r = meter.stop()
    assert r.components == {"gpu": pytest.approx(500.0), "cpu": pytest.approx(30.0)}
    assert (r.energy_j, r.source, r.estimated) == (pytest.approx(500.0), "nvml-counter", False)
    assert r.component_sources["cpu"] == "estimated-cpu"


def test_nvml_without_counter_or_power_falls_back(fake_nvml: Any, make_gpu: Any, fake_rapl: Any) -> None:
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    fake_nvml(make_gpu(UUID_A, counter_supported=False, power_supported=False))
    with pytest.warns(RuntimeWarning, match="neither the energy counter nor power"):
        meter = make_meter("cuda", rapl_root=fake_rapl.root)
    assert meter.source == "rapl" and meter.fallback_reasons[0].startswith("nvml:")


def test_idle_power_per_gpu_and_cpu_package(fake_nvml: Any, make_gpu: Any, fake_rapl: Any, clock: Any) -> None:
    counted = make_gpu(UUID_A)
    counted.counter = lambda: 1_000_000 + int(clock.t * 60_000)  # 60 W, counter
    fake_nvml(counted, make_gpu(UUID_B, counter_supported=False, power_mw=30_000))  # 30 W, power only
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    fake_rapl.add("intel-rapl:0:0", "dram", 0)

    def sleep(dt: float) -> None:
        clock.sleep(dt)
        fake_rapl.set("intel-rapl:0", int(clock.t * 20e6))  # 20 W
        fake_rapl.set("intel-rapl:0:0", int(clock.t * 4e6))  # 4 W

    watts = measure_idle_power(2.0, rapl_root=fake_rapl.root, clock=clock, sleep=sleep)
    assert watts == {
        UUID_A: pytest.approx(60.0),
        UUID_B: pytest.approx(30.0),
        "cpu-package": pytest.approx(20.0),
        "cpu-dram": pytest.approx(4.0),
    }


def test_idle_power_is_empty_when_nothing_is_measurable(fake_nvml: Any, tmp_path: Path) -> None:
    fake_nvml().init_error = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    assert measure_idle_power(0.01, rapl_root=tmp_path) == {}
    with pytest.raises(ValueError, match="seconds must be"):
        measure_idle_power(0.0)


def test_idle_baseline_feeds_dynamic_energy(fake_nvml: Any, make_gpu: Any, clock: Any) -> None:
    gpu = make_gpu(UUID_A, energy_mj=0)
    fake_nvml(gpu)
    meter = make_meter("cuda", backend="nvml", idle_power_w=50.0, crosscheck=False)
    meter._clock = clock  # the reading's time_s from a hand-moved clock
    meter.start()
    clock.t, gpu.energy_mj = 2.0, 300_000
    r = meter.stop()
    assert (r.energy_j, r.dynamic_energy_j) == (pytest.approx(300.0), pytest.approx(200.0))
    assert make_meter("cuda", backend="nvml", crosscheck=False).idle_power_w is None


def test_co2e_from_a_kilowatt_hour() -> None:
    assert co2e_g(3.6e6) == pytest.approx(DEFAULT_GRID_G_PER_KWH) == pytest.approx(480.0)
    assert co2e_g(3.6e6, grid_g_per_kwh=100.0, pue=1.5) == pytest.approx(150.0)
    assert co2e_g(0.0) == 0.0
    for bad in ({"energy_j": -1.0}, {"energy_j": 1.0, "pue": 0.9}, {"energy_j": 1.0, "grid_g_per_kwh": -5.0}):
        with pytest.raises(ValueError, match="must be"):
            co2e_g(**bad)


@given(st.floats(0, 1e12), st.floats(0, 1e12))
def test_co2e_is_additive(a: float, b: float) -> None:
    assert co2e_g(a + b) == pytest.approx(co2e_g(a) + co2e_g(b), rel=1e-9, abs=1e-9)


def test_doctor_explains_an_estimate(fake_nvml: Any, tmp_path: Path) -> None:
    fake_nvml().init_error = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    lines = doctor_lines(rapl_root=tmp_path)
    text = "\n".join(lines)
    assert "energy nvml     unavailable: NVML nvmlInit: NVML Shared Library Not Found" in text
    assert f"energy rapl     unavailable: no RAPL zones under {tmp_path}" in text
    assert "energy for device=cuda: estimated-cpu -- energy is ESTIMATED, not measured" in text
    assert "because nvml and rapl are unavailable" in text
    assert lines[-1].startswith("energy for device=cpu: estimated-cpu")


def test_doctor_reports_working_backends(fake_nvml: Any, make_gpu: Any, fake_rapl: Any) -> None:
    fake_nvml(make_gpu(UUID_A), make_gpu(UUID_B, mig=True))
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    lines = doctor_lines(rapl_root=fake_rapl.root)
    assert f"NVIDIA H100 80GB HBM3 {UUID_A}: energy counter ok, power ok" in lines[0]
    assert f"{UUID_B}: MIG enabled" in lines[0]
    assert "driver 580.65.06" in lines[0]
    assert lines[1] == "energy rapl     ok: readable zones: intel-rapl:0 (package-0)"
    assert lines[-2:] == [
        "energy for device=cuda: GPU measured by nvml; its host by rapl (added)",
        "energy for device=cpu: measured by rapl",
    ]


def test_doctor_permission_line_names_the_fix(fake_nvml: Any, fake_rapl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvml().init_error = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    real = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:  # as a non-root user would see it
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    rapl_line = doctor_lines(rapl_root=fake_rapl.root)[1]
    assert rapl_line.startswith("energy rapl     unavailable: cannot read")
    assert rapl_line.endswith(f"fix: sudo chmod a+r {fake_rapl.root}/intel-rapl:*/energy_uj")


def test_reading_to_dict_is_json(tmp_path: Path) -> None:
    meter = make_meter("cpu", rapl_root=tmp_path)
    meter.start()
    d = json.loads(json.dumps(meter.stop().to_dict()))
    assert set(d) >= {"energy_j", "dynamic_energy_j", "time_s", "source", "estimated", "attribution"}
    assert d["crosscheck_ratio"] is None


def test_a_trial_on_another_node_measures_that_nodes_idle_once(fake_nvml: Any, make_gpu: Any) -> None:
    import time

    import torch

    from trainables.contract import TrialPlan, _open_meter
    from trainables.energy._node_idle import node_idle_power

    gpu = make_gpu(UUID_A)
    gpu.counter = lambda: int(time.perf_counter() * 60_000)  # 60 W, whatever the clock
    fake_nvml(gpu)
    driver_idle = {"cpu-package": 5.0}  # what the driver measured on its own node (no GPU there)
    plan = TrialPlan(
        trainable="x:y",
        idle_power_w=driver_idle,
        idle_host="the-head",
        idle_baseline_s=0.2,
        sweep_key="s1",
        gpus_per_trial=1.0,
    )
    with _open_meter(torch.device("cpu"), plan) as meter:
        gpu_part = meter.parts[0]
        assert gpu_part.idle_power_w == pytest.approx(60.0, rel=0.05)  # this node's GPU, measured here
    calls: list[float] = []
    watts, measured = node_idle_power("s1", 0.2, lambda s: calls.append(s) or {})
    assert (measured, calls) == (False, []) and watts[UUID_A] == pytest.approx(60.0, rel=0.05)  # once per sweep
    import socket

    here = TrialPlan(trainable="x:y", idle_power_w={UUID_A: 42.0}, idle_host=socket.gethostname(), gpus_per_trial=1.0)
    with _open_meter(torch.device("cpu"), here) as meter:
        assert meter.parts[0].idle_power_w == 42.0  # the driver's node: the driver's figure


def test_a_gpu_lost_mid_trial_hands_over_to_the_next_source_and_the_trial_goes_on(
    fake_nvml: Any, make_gpu: Any
) -> None:
    from trainables.contract import TrialPlan, run_contract

    gpu = make_gpu(UUID_A, energy_mj=0)
    fake_nvml(gpu)
    records: list[dict[str, Any]] = []

    def train(config: dict[str, Any], ctx: Any) -> None:
        for epoch in range(1, ctx.epochs + 1):
            gpu.energy_mj += 100_000  # 100 J of GPU work per epoch while the GPU answers
            sum(range(200_000))
            if epoch == 2:
                gpu.lost = True  # NVML now raises NVMLError_GpuIsLost on every query
            ctx.report({"accuracy": 0.5})

    plan = TrialPlan(trainable=train, gpus_per_trial=1.0, checkpoint=False)
    run_contract(train, {"epochs": 4}, plan, lambda metrics, _state: records.append(metrics))
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]  # the trial did not fail
    assert records[0]["energy_source"] == "nvml-counter" and records[0]["energy_gpu_j"] == pytest.approx(100.0)
    assert records[-1]["energy_source"] == "estimated-cpu" and records[-1]["energy_estimated"] is True
    assert records[-1]["energy_gpu_j"] == pytest.approx(100.0)  # what was measured before the loss is kept
    energies = [r["energy_j"] for r in records]
    assert energies == sorted(energies) and energies[-1] > 100.0  # the estimate counts on top of it
    reasons = records[-1]["energy_provenance"]["fallback_reasons"]
    assert any("nvml-counter" in r and "estimated-cpu" in r and "lost" in r.lower() for r in reasons), reasons


def test_a_gpu_lost_while_measuring_idle_costs_its_baseline_not_the_sweep(
    fake_nvml: Any, make_gpu: Any, fake_rapl: Any, clock: Any
) -> None:
    lost = make_gpu(UUID_A)
    lost.counter = lambda: 1_000_000 + int(clock.t * 60_000)
    fake_nvml(lost, make_gpu(UUID_B, counter_supported=False, power_mw=30_000))
    fake_rapl.add("intel-rapl:0", "package-0", 0)

    def sleep(dt: float) -> None:
        clock.sleep(dt)
        fake_rapl.set("intel-rapl:0", int(clock.t * 20e6))
        if clock.t > 0.5:
            lost.lost = True  # GPU A falls off the bus mid-measurement: every query of it raises GpuIsLost

    with pytest.warns(RuntimeWarning, match="not measured"):
        watts = measure_idle_power(1.0, rapl_root=fake_rapl.root, clock=clock, sleep=sleep)
    assert UUID_A not in watts and watts["cpu-package"] == pytest.approx(20.0, rel=0.05)
