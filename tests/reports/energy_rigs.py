"""Energy records made by the real meters against fake hardware, for run directories written by RunWriter.

A ``Machine`` is one node a trial ran on: fake GPUs (tests/trainables/energy's ``FakeNvml``, autospec'd mocks of
the real pynvml functions) and a fake powercap tree (``FakeRapl``), or an empty one (then the CPU-time estimate).
A ``TrialMeter`` runs the real meters (``NvmlMeter``, ``RaplMeter``, ``CpuTimeEstimateMeter``, ``CompositeMeter``)
over a fake clock, as ``trainables.contract`` opens them: the GPU and its host in one composite, RAPL shared by
CPU time, the fallback reasons of the real ``make_meter``. Each epoch's energy metrics are what the contract makes
of the meter's reading; the last epoch adds the meter's own provenance and trace, taken (as the contract takes
them) at the last report, before the meter stops.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.trainables.energy.conftest import FakeClock, FakeGpu, FakeNvml, FakeRapl
from trainables import metrics as m
from trainables.energy import (
    BaseMeter,
    CompositeMeter,
    CpuTimeEstimateMeter,
    EnergyReading,
    NvmlMeter,
    RaplMeter,
    _errors,
    _nvml,
    _nvml_meter,
    make_meter,
)
from trainables.energy._cpu_share import CpuTimeShare
from trainables.energy._nvml import visible_devices
from trainables.energy._rapl import find_zones


def contract_energy(reading: EnergyReading, gpu_model: str | None) -> dict[str, Any]:
    """The energy metrics ``trainables.contract`` adds to an epoch for one reading (one attempt, nothing unbilled)."""
    out: dict[str, Any] = {
        m.ENERGY_J: reading.energy_j,
        m.DYNAMIC_ENERGY_J: reading.dynamic_energy_j,
        m.TIME_S: reading.time_s,
        m.ENERGY_SOURCE: reading.source,
        m.ENERGY_ESTIMATED: reading.estimated,
        m.ENERGY_ATTRIBUTION: reading.attribution_label,
        m.GPU_MODEL: gpu_model,
    }
    for component, joules, source in m.ENERGY_COMPONENTS:
        out[joules] = reading.components.get(component)
        out[source] = reading.component_sources.get(component)
    return out


def _ticking(gpu: FakeGpu, period_s: float) -> Any:
    # why: the meter measures the counter's update period by polling it (real time); a real counter moves every
    # 20-100 ms, by a few mJ at most while nothing runs
    t0 = time.perf_counter()
    return lambda: gpu.energy_mj + int((time.perf_counter() - t0) / period_s)


@dataclass
class Machine:
    """One node: its GPUs (all one model here) and whether its RAPL counters are readable."""

    name: str
    root: Path
    gpus: list[FakeGpu] = field(default_factory=list)
    rapl: FakeRapl | None = None
    counter_period_s: float = 0.02  # how often its GPUs' energy counters update
    gpu_idle_w: float | None = None  # the idle baseline the sweep measured for its GPUs

    @property
    def rapl_root(self) -> Path:
        return self.root / "powercap"


class Lab:
    """Fake machines, and the process state the real meters keep (NVML's init, the counter-period cache)."""

    def __init__(self, root: Path, mp: pytest.MonkeyPatch) -> None:
        self.root = root
        self.nvml = FakeNvml([])  # the process sees the GPUs of the machine its trial runs on
        self.nvml.install(mp)
        self.machines: dict[str, Machine] = {}

    def machine(
        self,
        name: str,
        *,
        gpu: str | None = None,
        n_gpus: int = 1,
        rapl: bool = False,
        power_limit_w: float = 300.0,
        counter_period_s: float = 0.02,
        gpu_idle_w: float | None = None,
    ) -> Machine:
        """A node with ``n_gpus`` GPUs named ``gpu`` (none when ``gpu`` is None), RAPL counters when ``rapl``."""
        root = self.root / name
        (root / "powercap").mkdir(parents=True)
        gpus = [
            FakeGpu(f"GPU-{name}-{i:04d}-0000-0000-000000000000", name=gpu, power_limit_mw=int(power_limit_w * 1000))
            for i in range(n_gpus if gpu else 0)
        ]
        fake_rapl = None
        if rapl:
            fake_rapl = FakeRapl(root / "powercap")
            fake_rapl.add("intel-rapl:0", "package-0", 1_000_000)
            fake_rapl.add("intel-rapl:0:0", "dram", 2_000_000)
        self.machines[name] = Machine(name, root, gpus, fake_rapl, counter_period_s, gpu_idle_w)
        return self.machines[name]

    def trial(self, machine: Machine, **kwargs: Any) -> TrialMeter:
        """Open a trial's meter on ``machine`` (its NVML is the one the process sees from now on)."""
        self.nvml.gpus = machine.gpus
        return TrialMeter(machine, **kwargs)


@contextlib.contextmanager
def lab(root: Path) -> Iterator[Lab]:
    """Fake machines under ``root``; pynvml and the meters' per-process state are restored on exit."""

    def reset() -> None:
        _nvml._reset()
        _errors._reset_warnings()
        _nvml_meter._period_cache.clear()

    reset()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        try:
            yield Lab(root, mp)
        finally:
            reset()


class TrialMeter:
    """One trial's meter on one machine, over a fake clock: ``epoch(...)`` per report, ``final()`` at the last.

    ``gpu``: the index of the trial's GPU on the machine (None: a CPU trial). ``gpu_w``: the power the GPU
    reports (W); its counter advances ``gpu_w / crosscheck_ratio`` joules a second, so the integrated power over
    the counter is ``crosscheck_ratio``. ``cpu_share``: the trial's share of the machine's busy CPU time (RAPL).
    ``composite=False``: a GPU trial's meter is the NVML meter alone, as before the host was measured beside it.
    """

    def __init__(
        self,
        machine: Machine,
        *,
        gpu: int | None = None,
        gpu_w: float = 150.0,
        crosscheck_ratio: float = 1.0,
        temperature_c: tuple[int, int] = (40, 60),
        cpu_share: float = 0.5,
        watts_per_core: float | None = None,
        composite: bool = True,
    ) -> None:
        self.machine = machine
        self.clock = FakeClock()
        self.cpu_s = FakeClock()  # this process's CPU time, s
        self.machine_cpu_s = FakeClock()  # the machine's busy CPU time, s
        self.cpu_share = cpu_share
        self.gpu_w, self.ratio = gpu_w, crosscheck_ratio
        self.temps = temperature_c
        # the real factory's choice and its reasons for skipping better backends (RAPL unreadable, say)
        kind = "cuda" if gpu is not None else "cpu"
        reasons = make_meter(kind, rapl_root=machine.rapl_root, watts_per_core=watts_per_core).fallback_reasons
        host: BaseMeter
        if machine.rapl is not None:
            share = CpuTimeShare(process_s=self.cpu_s, machine_s=self.machine_cpu_s)
            zones = find_zones(machine.rapl_root)
            host = RaplMeter(zones, root=machine.rapl_root, clock=self.clock, background=False, share=share)
        else:
            host = CpuTimeEstimateMeter(watts_per_core=watts_per_core, clock=self.clock, cpu_clock=self.cpu_s)
        self.watts_per_core = getattr(host, "watts_per_core", None)
        self.gpu: FakeGpu | None = None
        meter: BaseMeter = host
        if gpu is not None:
            self.gpu = machine.gpus[gpu]
            self.gpu.power_mw = round(gpu_w * 1000)
            self.gpu.temperature_c = temperature_c[0]
            device = visible_devices(str(gpu))
            nvml = NvmlMeter(
                device, idle_power_w=machine.gpu_idle_w, clock=self.clock, sync=lambda: None, background=False
            )
            meter = CompositeMeter([nvml, host], clock=self.clock) if composite else nvml
        meter.fallback_reasons = reasons
        self.meter = meter
        self.meter.start()

    def epoch(self, seconds: float, *, cpu_j: float = 0.0, dram_j: float = 0.0) -> dict[str, Any]:
        """Advance the fake hardware by one epoch and return the contract's energy metrics for it.

        ``cpu_j`` / ``dram_j``: what the trial's CPU (package or estimate) and DRAM use over the epoch, J.
        """
        self.clock.t += seconds
        if self.gpu is not None:
            self.gpu.energy_mj += round(self.gpu_w * seconds / self.ratio * 1000)
        if self.machine.rapl is not None:
            busy = seconds  # why: the trial keeps one core busy, the machine 1 / cpu_share of that
            self.cpu_s.t += busy
            self.machine_cpu_s.t += busy / self.cpu_share
            package = self._uj("intel-rapl:0") + round(cpu_j / self.cpu_share * 1e6)
            self.machine.rapl.set("intel-rapl:0", package)
            self.machine.rapl.set("intel-rapl:0:0", self._uj("intel-rapl:0:0") + round(dram_j / self.cpu_share * 1e6))
        else:
            assert self.watts_per_core is not None
            self.cpu_s.t += cpu_j / self.watts_per_core
        return contract_energy(self.meter.read(), self.meter.gpu_model)

    def _uj(self, zone: str) -> int:
        assert self.machine.rapl is not None
        return int((self.machine.rapl.root / zone / "energy_uj").read_text())

    def final(self) -> dict[str, Any]:
        """The last epoch's additions: the meter's provenance and power trace (before stop, as the contract)."""
        if self.gpu is not None:
            self.gpu.counter = _ticking(self.gpu, self.machine.counter_period_s)
        try:
            out = {m.ENERGY_PROVENANCE: self.meter.provenance(), m.POWER_TRACE: self.meter.trace()}
        finally:
            if self.gpu is not None:
                self.gpu.counter = None
        return out

    def stop(self) -> None:
        """End the window (the contract's meter context closing)."""
        if self.gpu is not None:
            self.gpu.temperature_c = self.temps[1]
        self.meter.stop()
