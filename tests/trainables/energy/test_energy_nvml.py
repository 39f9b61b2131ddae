"""NVML backend against a fake pynvml (autospec'd real functions, real NVMLError classes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pynvml
import pytest

from trainables.energy import (
    EnergyError,
    MigNotMeasurableError,
    NvmlError,
    NvmlMeter,
    NvmlUnavailableError,
    make_meter,
)
from trainables.energy._factory import trial_gpus
from trainables.energy._nvml import visible_devices
from trainables.energy._nvml_meter import measure_counter_period_s
from trainables.energy._sampler import PowerSampler, trapezoid_j

ROOT = Path(__file__).resolve().parents[3]
UUIDS = ["GPU-aaaa1111-0000-0000-0000-000000000000", "GPU-bbbb2222-0000-0000-0000-000000000000",
         "GPU-cccc3333-0000-0000-0000-000000000000"]  # fmt: skip


def test_counter_deltas_give_exact_joules(fake_nvml: Any, make_gpu: Any, tmp_path: Path) -> None:
    gpu = make_gpu(UUIDS[0], energy_mj=5_000_000)
    fake_nvml(gpu)
    meter = make_meter("cuda", rapl_root=tmp_path)
    assert meter.source == "nvml-counter" and meter.estimated is False
    meter.start()
    gpu.energy_mj = 5_012_345
    r1 = meter.read()
    gpu.energy_mj = 5_100_000
    r2 = meter.stop()
    assert r1.energy_j == pytest.approx(12.345, abs=1e-9)
    assert r2.energy_j == pytest.approx(100.0, abs=1e-9)
    assert (r2.source, r2.estimated, r2.attribution, r2.share) == ("nvml-counter", False, "exclusive", 1.0)
    assert r2.dynamic_energy_j == r2.energy_j  # no baseline
    assert meter.read() == r2  # after stop, read is the final reading


def test_counter_is_read_after_cuda_synchronize(fake_nvml: Any, make_gpu: Any) -> None:
    log: list[str] = []
    gpu = make_gpu(UUIDS[0])

    def counter() -> int:
        log.append("counter")
        return 7

    gpu.counter = counter
    fake_nvml(gpu)
    meter = NvmlMeter(visible_devices(), crosscheck=False, sync=lambda: log.append("sync"))
    log.clear()
    meter.start()
    meter.read()
    meter.stop()
    assert log == ["sync", "counter"] * 3


def test_unsupported_counter_falls_back_to_trapezoid_power(fake_nvml: Any, make_gpu: Any, clock: Any) -> None:
    watts_at = {0.0: 100, 1.0: 200, 2.0: 300, 4.0: 100}  # W at clock time (s)
    gpu = make_gpu(UUIDS[0], counter_supported=False)
    gpu.power = lambda: watts_at.get(clock.t, 100) * 1000
    fake_nvml(gpu)
    meter = NvmlMeter(visible_devices(), clock=clock, sync=lambda: None, background=False)
    assert meter.source == "nvml-power"
    meter.start()
    clock.t = 1.0
    assert meter.read().energy_j == pytest.approx(150.0)  # (100+200)/2 * 1 s
    clock.t = 2.0
    assert meter.read().energy_j == pytest.approx(400.0)  # + (200+300)/2 * 1 s
    clock.t = 4.0
    final = meter.stop()
    assert final.energy_j == pytest.approx(800.0)  # + (300+100)/2 * 2 s; a left-rectangle sum would say 900
    assert final.crosscheck_energy_j is None
    trace = meter.trace()
    assert (trace["t_s"], trace["watts"], trace["source"]) == ([0.0, 1.0, 2.0, 4.0], [100, 200, 300, 100], "nvml-power")


def test_power_sampler_thread_samples_at_least_10_hz(fake_nvml: Any, make_gpu: Any, tmp_path: Path) -> None:
    fake_nvml(make_gpu(UUIDS[0], counter_supported=False, power_mw=120_000))
    meter = make_meter("cuda", backend="nvml", rapl_root=tmp_path)  # default 0.1 s
    meter.start()
    time.sleep(0.35)
    r = meter.stop()
    assert r.source == "nvml-power"
    assert r.energy_j == pytest.approx(120.0 * r.time_s, rel=1e-9)  # constant power; windows aligned
    assert meter.provenance()["n_power_samples"] >= 4  # start + >= 3 ticks in 0.35 s + stop


def test_trapezoid_on_known_sequence() -> None:
    assert trapezoid_j([0.0, 1.0, 3.0], [10.0, 30.0, 30.0]) == pytest.approx(20.0 + 60.0)
    assert trapezoid_j([0.0], [50.0]) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        trapezoid_j([0.0, 1.0], [1.0])


def test_power_sampler_integrates_each_channel(clock: Any) -> None:
    values = iter([[100.0, 10.0], [300.0, 10.0], [300.0, 30.0]])
    sampler = PowerSampler(lambda: next(values), interval_s=0.1, clock=clock)
    sampler.start(background=False)
    clock.t = 2.0
    sampler.sample()
    clock.t = 3.0
    sampler.sample()
    assert sampler.energy_j() == pytest.approx([400.0 + 300.0, 20.0 + 20.0])


def test_counter_and_power_both_recorded_as_crosscheck(fake_nvml: Any, make_gpu: Any, clock: Any) -> None:
    gpu = make_gpu(UUIDS[0], energy_mj=0, power_mw=200_000)
    fake_nvml(gpu)
    meter = NvmlMeter(visible_devices(), clock=clock, sync=lambda: None, background=False)
    meter.start()
    clock.t = 10.0
    gpu.energy_mj = 2_200_000  # counter says 2200 J, integral says 2000 J
    r = meter.stop()
    assert r.source == "nvml-counter"
    assert r.energy_j == pytest.approx(2200.0)
    assert r.crosscheck_energy_j == pytest.approx(2000.0)
    assert r.crosscheck_ratio == pytest.approx(2000 / 2200)
    assert meter.provenance()["crosscheck_ratio"] == pytest.approx(2000 / 2200)


def test_missing_library_falls_to_next_backend(fake_nvml: Any, tmp_path: Path) -> None:
    fake = fake_nvml()
    fake.init_error = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    with pytest.warns(RuntimeWarning, match="GPU energy not measured") as warned:
        meter = make_meter("cuda", rapl_root=tmp_path)
        make_meter("cuda", rapl_root=tmp_path)
    assert len(warned) == 1  # once per process, not once per trial
    assert (meter.source, meter.estimated) == ("estimated-cpu", True)
    assert "Library Not Found" in meter.fallback_reasons[0]
    assert fake.mocks["nvmlInit"].call_count == 1  # the failure is remembered, not retried per trial
    with pytest.raises(NvmlUnavailableError, match=r"Fix: run on a machine with an NVIDIA GPU") as info:
        make_meter("cuda", backend="nvml")
    assert not isinstance(info.value, pynvml.NVMLError)


def test_driver_not_loaded_is_our_error(fake_nvml: Any) -> None:
    fake_nvml().init_error = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    with pytest.raises(NvmlUnavailableError, match="kernel module is not loaded"):
        make_meter("cuda", backend="nvml")


def test_nvml_initialised_once_per_process(fake_nvml: Any, make_gpu: Any) -> None:
    fake = fake_nvml(make_gpu(UUIDS[0]))
    for _ in range(3):
        make_meter("cuda", backend="nvml", crosscheck=False)
    assert fake.mocks["nvmlInit"].call_count == 1


def test_errors_mid_run_come_out_as_ours(fake_nvml: Any, make_gpu: Any) -> None:
    gpu = make_gpu(UUIDS[0])
    fake_nvml(gpu)
    meter = make_meter("cuda", backend="nvml", crosscheck=False)
    meter.start()
    gpu.lost = True
    with pytest.raises(NvmlError, match="GPU is lost") as info:
        meter.read()
    assert isinstance(info.value, EnergyError) and isinstance(info.value.__cause__, pynvml.NVMLError_GpuIsLost)


@pytest.mark.parametrize(
    ("cvd", "expected"),
    [
        (None, [0, 1, 2]),
        ("2,0", [2, 0]),
        ("1", [1]),
        (f"{UUIDS[2]},{UUIDS[1]}", [2, 1]),
        ("GPU-bbbb", [1]),  # CUDA accepts a unique UUID prefix
        ("0,7,2", [0]),  # CUDA stops at the first invalid entry
    ],
)
def test_cuda_visible_devices_picks_handles(
    fake_nvml: Any, make_gpu: Any, monkeypatch: pytest.MonkeyPatch, cvd: str | None, expected: list[int]
) -> None:
    gpus = [make_gpu(u) for u in UUIDS]
    fake_nvml(*gpus)
    if cvd is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cvd)
    devices = trial_gpus()
    assert [d.handle for d in devices] == [gpus[i] for i in expected]
    assert [d.uuid for d in devices] == [UUIDS[i] for i in expected]


def test_cuda_index_selects_one_visible_gpu(fake_nvml: Any, make_gpu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [make_gpu(u, energy_mj=0) for u in UUIDS]
    fake_nvml(*gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    meter = make_meter("cuda:1", backend="nvml", crosscheck=False)
    meter.start()
    gpus[0].energy_mj, gpus[2].energy_mj = 3000, 9000
    assert meter.stop().energy_j == pytest.approx(3.0)  # cuda:1 is physical GPU 0
    assert [d["uuid"] for d in meter.provenance()["devices"]] == [UUIDS[0]]


def test_all_visible_gpus_are_summed(fake_nvml: Any, make_gpu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [make_gpu(u, energy_mj=0) for u in UUIDS]
    fake_nvml(*gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    meter = make_meter("cuda", backend="nvml", crosscheck=False)
    meter.start()
    gpus[0].energy_mj, gpus[1].energy_mj, gpus[2].energy_mj = 1000, 50_000, 4000
    assert meter.stop().energy_j == pytest.approx(5.0)  # GPU 1 is not the trial's


def test_torch_uuids_win_over_the_environment(fake_nvml: Any, make_gpu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [make_gpu(u) for u in UUIDS]
    fake_nvml(*gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    bare = UUIDS[2].removeprefix("GPU-")  # torch reports UUIDs without NVML's prefix
    assert [d.handle for d in visible_devices(cuda_uuids=[bare])] == [gpus[2]]
    with pytest.raises(NvmlError, match="no NVML handle"):
        visible_devices(cuda_uuids=["ffffffff-0000"])


def test_empty_cuda_visible_devices_means_no_gpu(
    fake_nvml: Any, make_gpu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml(make_gpu(UUIDS[0]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(NvmlUnavailableError, match="no GPU"):
        trial_gpus()


def test_mig_is_not_measurable(fake_nvml: Any, make_gpu: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_nvml(make_gpu(UUIDS[0], mig=True))
    with pytest.raises(MigNotMeasurableError, match="MIG enabled"):
        make_meter("cuda", backend="nvml")
    with pytest.warns(RuntimeWarning, match="MIG"):
        assert make_meter("cuda", rapl_root=tmp_path).source == "estimated-cpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-5f2b0c1e-0000-0000-0000-000000000000")
    with pytest.raises(MigNotMeasurableError, match="MIG slice"):
        make_meter("cuda", backend="nvml")


def test_shared_gpu_split_by_sm_utilisation(fake_nvml: Any, make_gpu: Any) -> None:
    t_us = int(time.time() * 1e6) + 60_000_000  # samples after the meter starts
    me, other = os.getpid(), os.getpid() + 1
    gpu = make_gpu(UUIDS[0], energy_mj=1_000_000)
    gpu.util = [(me, t_us, 30), (other, t_us, 90), (me, t_us + 1, 30), (other, t_us + 1, 90)]
    fake_nvml(gpu)
    meter = make_meter("cuda", backend="nvml", gpu_fraction=0.5, crosscheck=False)
    assert meter.attribution == "shared"
    meter.start()
    gpu.energy_mj = 9_000_000  # the device spent 8000 J
    r = meter.stop()
    assert (r.attribution, r.share) == ("shared", pytest.approx(0.25))
    assert r.energy_j == pytest.approx(2000.0)  # 60 / 240 of the device's SM use was ours
    assert meter.trace()["watts"] == [pytest.approx(2000.0 / r.time_s)]  # from counter deltas: nothing sampled
    dev = meter.provenance()["devices"][0]
    assert (dev["share"], dev["share_method"]) == (pytest.approx(0.25), "sm-utilisation")


def test_a_lone_trial_on_a_shared_gpu_is_billed_the_device_by_time(fake_nvml: Any, make_gpu: Any) -> None:
    t_us = int(time.time() * 1e6) + 60_000_000
    gpu = make_gpu(UUIDS[0], energy_mj=0)
    gpu.util = [(os.getpid() + 1, t_us, 90)]  # e.g. a container: NVML sees host PIDs only, none of ours
    fake_nvml(gpu)
    meter = make_meter("cuda", backend="nvml", gpu_fraction=0.5, crosscheck=False)
    meter.start()
    gpu.energy_mj = 8_000_000
    r = meter.stop()
    # no other trial was on the device: every joule it used is this trial's (a half share is a reservation)
    assert (r.energy_j, r.share, r.attribution_label) == (pytest.approx(8000.0), 1.0, "shared:time")
    assert meter.provenance()["devices"][0]["share_method"] == "time"


def test_trials_sharing_a_gpu_add_up_to_the_devices_energy(fake_nvml: Any, make_gpu: Any) -> None:
    # A starts alone, B joins, A leaves, B finishes: each interval split between the trials present at the time
    gpu = make_gpu(UUIDS[0], energy_mj=0)
    fake = fake_nvml(gpu)
    fake.mocks["nvmlDeviceGetProcessUtilization"].side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    a = make_meter("cuda", backend="nvml", gpu_fraction=0.5, crosscheck=False)
    b = make_meter("cuda", backend="nvml", gpu_fraction=0.5, crosscheck=False)
    a.start()
    gpu.energy_mj = 1_000_000  # A alone: 1000 J
    b.start()
    gpu.energy_mj = 3_000_000  # both: 2000 J
    assert a.read().energy_j == pytest.approx(2000.0)
    gpu.energy_mj = 3_600_000  # both: 600 J
    ra = a.stop()
    gpu.energy_mj = 4_000_000  # B alone: 400 J
    rb = b.stop()
    assert (ra.energy_j, rb.energy_j) == (pytest.approx(2300.0), pytest.approx(1700.0))
    assert ra.energy_j + rb.energy_j == pytest.approx(4000.0)  # the device's energy while any of them was on it
    assert ra.share == pytest.approx(2300.0 / 3600.0) and rb.share == pytest.approx(1700.0 / 3000.0)
    assert ra.attribution_label == rb.attribution_label == "shared:time"


def test_counter_update_period_is_measured(fake_nvml: Any, make_gpu: Any, clock: Any) -> None:
    gpu = make_gpu(UUIDS[0])
    gpu.counter = lambda: int(clock.t / 0.02) * 1500  # refreshes every 20 ms
    fake_nvml(gpu)
    [device] = visible_devices()
    period = measure_counter_period_s(device, clock=clock, sleep=clock.sleep, poll_s=0.001)
    assert period == pytest.approx(0.02, abs=0.0011)
    gpu.counter = lambda: 42  # never changes
    assert measure_counter_period_s(device, clock=clock, sleep=clock.sleep) is None


def test_provenance_describes_the_gpu(fake_nvml: Any, make_gpu: Any) -> None:
    gpu = make_gpu(UUIDS[0], temperature_c=38)
    gpu.counter = lambda: int(time.perf_counter() / 0.01) * 1000  # refreshes every 10 ms
    fake_nvml(gpu)
    meter = make_meter("cuda", backend="nvml", sample_interval_s=0.05)
    meter.start()
    gpu.temperature_c = 71
    meter.stop()
    prov = json.loads(json.dumps(meter.provenance()))
    dev = prov["devices"][0]
    assert (prov["driver_version"], prov["nvml_version"]) == ("580.65.06", "13.580.65.06")
    assert (dev["name"], dev["uuid"], dev["power_limit_w"]) == ("NVIDIA H100 80GB HBM3", UUIDS[0], 700.0)
    assert (dev["temperature_start_c"], dev["temperature_stop_c"]) == (38, 71)
    assert dev["counter_supported"] is True
    assert 0.005 < dev["counter_update_period_s"] < 0.05  # measured by polling, not assumed
    assert prov["source"] == "nvml-counter" and prov["sample_interval_s"] == 0.05


def test_importing_the_package_touches_neither_pynvml_nor_torch() -> None:
    code = "import sys, trainables.energy; print('pynvml' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(("gpus_per_trial", "attribution"), [(0.5, "shared"), (1.0, "exclusive")])
def test_a_sweeps_gpu_share_reaches_each_trials_meter(
    fake_nvml: Any, make_gpu: Any, tmp_path: Path, gpus_per_trial: float, attribution: str
) -> None:
    # the path a sweep takes: trial_resources' share -> the trial plan -> the meter the contract opens
    import torch

    from orchestrator.sweep import trial_plan
    from search_spaces import parse_spec
    from trainables.contract import _open_meter

    spec = parse_spec({"name": "g", "resources": {"cpu": 1, "gpu": gpus_per_trial}})
    plan = trial_plan(spec, resources={"cpu": 1.0, "gpu": gpus_per_trial})
    assert plan.gpu_fraction == gpus_per_trial
    gpu = make_gpu(UUIDS[0], energy_mj=0)
    fake_nvml(gpu)
    # why a CPU device: the trial holds a GPU (its plan says so), so the GPU is billed wherever its code runs
    with _open_meter(torch.device("cpu"), plan) as meter, _open_meter(torch.device("cpu"), plan) as other:
        assert meter.attribution == attribution and meter.gpu_model == "NVIDIA H100 80GB HBM3"
        gpu.energy_mj = 8_000_000  # the device spent 8000 J while both trials were on it
    reading, other_reading = meter.read(), other.read()
    gpu_j = reading.components["gpu"]
    if attribution == "shared":  # two trials on one device: each billed half, once
        assert gpu_j == pytest.approx(4000.0) and gpu_j + other_reading.components["gpu"] == pytest.approx(8000.0)
    else:  # a whole GPU each (here the same fake one twice): each bills its device
        assert gpu_j == pytest.approx(8000.0)
    # the host beside the GPU: estimated here (no RAPL), so recorded as its component but not added to energy_j
    assert reading.component_sources == {"gpu": "nvml-counter", "cpu": "estimated-cpu"}
    assert reading.energy_j == pytest.approx(gpu_j) and reading.estimated is False


def test_trials_that_raise_stop_their_meters_threads(fake_nvml: Any, make_gpu: Any) -> None:
    # a reused Ray actor runs trial after trial in one process: a trainable that raises must not leave its
    # meter's power-sampling thread behind
    import threading

    from trainables.contract import Context, TrialPlan, run_contract

    fake_nvml(make_gpu(UUIDS[0]))
    started: list[int] = []

    def broken(config: dict[str, Any], ctx: Context) -> None:
        started.append(threading.active_count())  # the meter's sampler is running now
        raise RuntimeError("user bug")

    plan = TrialPlan(trainable=broken)
    before = threading.active_count()
    for _ in range(5):
        with pytest.raises(RuntimeError, match="user bug"):
            run_contract(broken, {"epochs": 1, "device": "cuda"}, plan, lambda m, s: None)
    assert started == [before + 1] * 5  # one sampler thread per trial while it ran...
    assert threading.active_count() == before  # ...and none left after five failed trials
