"""Energy measurement for one trial (placeholder: CPU-time estimate only).

Public API (stable; the energy issue deepens the backends behind it)::

    meter = make_meter(device="cpu" | "cuda", watts_per_core=None)
    meter.start()
    reading = meter.read()      # cumulative since start()
    reading.energy_j, reading.source, reading.estimated, reading.time_s
    meter.stop() -> EnergyReading
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# Assumed draw of one fully busy CPU core, watts. An estimate, not a measurement.
DEFAULT_WATTS_PER_CORE = 10.0


@dataclass(frozen=True)
class EnergyReading:
    """Energy since the meter started. Units: joules, seconds."""

    energy_j: float
    dynamic_energy_j: float
    time_s: float
    source: str
    estimated: bool


class CpuTimeEstimateMeter:
    """Estimate: this process's CPU time x watts per core. Labelled estimated-cpu."""

    source = "estimated-cpu"
    estimated = True

    def __init__(self, *, watts_per_core: float = DEFAULT_WATTS_PER_CORE) -> None:
        self.watts_per_core = watts_per_core
        self._t0 = 0.0
        self._cpu0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._cpu0 = time.process_time()

    def read(self) -> EnergyReading:
        cpu_s = time.process_time() - self._cpu0
        e = cpu_s * self.watts_per_core
        return EnergyReading(e, e, time.perf_counter() - self._t0, self.source, True)

    def stop(self) -> EnergyReading:
        return self.read()


def make_meter(device: str = "cpu", *, watts_per_core: float | None = None) -> CpuTimeEstimateMeter:
    return CpuTimeEstimateMeter(watts_per_core=watts_per_core or DEFAULT_WATTS_PER_CORE)
