"""The CPU-time estimate, and what every meter shares (idle baseline, trace, state)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainables.energy import DEFAULT_WATTS_PER_CORE, CpuTimeEstimateMeter, make_meter
from trainables.energy._meter import downsample


def _burn(cpu_s: float) -> None:
    """Spend ``cpu_s`` of this process's CPU time."""
    end = time.process_time() + cpu_s
    x = 0
    while time.process_time() < end:
        x += sum(i * i for i in range(1000))


def test_estimate_is_cpu_time_times_watts_per_core(tmp_path: Path) -> None:
    meter = make_meter("cpu", rapl_root=tmp_path)  # empty powercap root: nothing measurable
    assert (meter.source, meter.estimated, meter.attribution) == ("estimated-cpu", True, "process")
    before = time.process_time()
    meter.start()
    _burn(0.05)
    r1 = meter.read()
    _burn(0.10)
    r2 = meter.stop()
    after = time.process_time()
    assert r1.energy_j >= 0.05 * DEFAULT_WATTS_PER_CORE
    assert r2.energy_j >= r1.energy_j + 0.10 * DEFAULT_WATTS_PER_CORE  # grows with CPU time
    assert r2.energy_j <= (after - before) * DEFAULT_WATTS_PER_CORE
    assert (r2.source, r2.estimated) == ("estimated-cpu", True)


def test_estimate_is_not_a_constant(tmp_path: Path) -> None:
    idle = make_meter("cpu", rapl_root=tmp_path)
    idle.start()
    time.sleep(0.1)
    idle_j = idle.stop().energy_j
    busy = make_meter("cpu", rapl_root=tmp_path)
    busy.start()
    _burn(0.1)
    busy_j = busy.stop().energy_j
    assert busy_j > 0 and busy_j > 3 * idle_j  # a sleeping window costs (almost) no CPU time


def test_watts_per_core_scales_and_is_recorded(clock: Any) -> None:
    cpu = {"s": 0.0}
    meter = CpuTimeEstimateMeter(watts_per_core=4.0, clock=clock, cpu_clock=lambda: cpu["s"])
    meter.start()
    cpu["s"], clock.t = 2.5, 10.0
    assert meter.stop().energy_j == pytest.approx(10.0)
    prov = json.loads(json.dumps(meter.provenance()))
    assert (prov["watts_per_core"], prov["watts_per_core_from"], prov["backend"]) == (4.0, "user", "estimate")
    with pytest.raises(ValueError, match="watts_per_core must be"):
        CpuTimeEstimateMeter(watts_per_core=0.0)


def test_default_watts_per_core_is_documented() -> None:
    meter = CpuTimeEstimateMeter()
    assert meter.watts_per_core == DEFAULT_WATTS_PER_CORE == 10.0
    assert meter.provenance()["watts_per_core_from"].startswith("default")


def test_idle_baseline_gives_dynamic_energy(clock: Any) -> None:
    cpu = {"s": 0.0}
    meter = CpuTimeEstimateMeter(watts_per_core=10.0, idle_power_w=2.0, clock=clock, cpu_clock=lambda: cpu["s"])
    meter.start()
    cpu["s"], clock.t = 3.0, 5.0
    r = meter.read()
    assert (r.energy_j, r.dynamic_energy_j, r.time_s) == (pytest.approx(30.0), pytest.approx(20.0), 5.0)
    clock.t = 100.0  # 200 J of idle > 30 J measured: floored, never negative
    assert meter.stop().dynamic_energy_j == 0.0
    with pytest.raises(ValueError, match="idle_power_w"):
        make_meter("cpu", backend="estimate", idle_power_w=-1.0)


def test_trace_from_cpu_time_deltas_between_reads(clock: Any) -> None:
    cpu = {"s": 0.0}
    meter = CpuTimeEstimateMeter(watts_per_core=10.0, clock=clock, cpu_clock=lambda: cpu["s"])
    meter.start()
    for t, c in [(1.0, 0.5), (2.0, 1.5), (4.0, 1.5)]:
        clock.t, cpu["s"] = t, c
        meter.read()
    trace = meter.trace()
    assert trace == {"t_s": [0.5, 1.5, 3.0], "watts": [5.0, 10.0, 0.0], "source": "estimated-cpu"}


def test_trace_is_at_most_500_points(clock: Any) -> None:
    cpu = {"s": 0.0}
    meter = CpuTimeEstimateMeter(clock=clock, cpu_clock=lambda: cpu["s"])
    meter.start()
    for i in range(1, 2001):
        clock.t, cpu["s"] = float(i), i * 0.5
        meter.read()
    trace = meter.trace()
    assert len(trace["t_s"]) == len(trace["watts"]) == 500
    assert trace["watts"] == pytest.approx([5.0] * 500)
    assert trace["t_s"] == sorted(trace["t_s"])


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000), st.integers(1, 600))
def test_downsample_keeps_bounds_and_mean(values: list[float], max_points: int) -> None:
    t = [float(i) for i in range(len(values))]
    t2, v2 = downsample(t, values, max_points)
    assert len(t2) == len(v2) == min(len(values), max_points)
    assert min(values) - 1e-6 <= min(v2) and max(v2) <= max(values) + 1e-6
    if len(values) % len(v2) == 0:  # equal buckets: the mean is kept
        assert sum(v2) / len(v2) == pytest.approx(sum(values) / len(values), abs=1e-3)


def test_meter_states(clock: Any) -> None:
    meter = CpuTimeEstimateMeter(clock=clock)
    with pytest.raises(RuntimeError, match="start"):
        meter.read()
    meter.start()
    with pytest.raises(RuntimeError, match="already started"):
        meter.start()
    final = meter.stop()
    assert meter.stop() is final and meter.read() is final
    with CpuTimeEstimateMeter() as m:
        _burn(0.01)
    assert m.read().energy_j > 0
