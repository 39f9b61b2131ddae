"""Estimate: this process's CPU time x an assumed draw per busy core. Labelled ``estimated-cpu``."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from typing import Any

from ._meter import BaseMeter, Measurement

# Assumed draw of one fully busy CPU core, watts. An estimate, not a measurement.
# why 10 W: TDP / physical cores of common parts (vendor spec sheets) gives
#   Xeon Gold 6248 150/20 = 7.5, Xeon Platinum 8380 270/40 = 6.8, Xeon E5-2680 v4 120/14 = 8.6,
#   EPYC 7763 280/64 = 4.4, EPYC 7302 155/16 = 9.7, Core i9-9900K 95/8 = 11.9,
#   Core i5-10400 65/6 = 10.8, Ryzen 5 5600X 65/6 = 10.8, Ryzen 7 5800X 105/8 = 13.1;
#   median 9.7 W, rounded to 10. Servers sit lower (4-9 W), desktops higher (11-13 W):
#   pass watts_per_core for a better guess on known hardware.
DEFAULT_WATTS_PER_CORE = 10.0


class CpuTimeEstimateMeter(BaseMeter):
    """Energy = process CPU seconds (all threads, ``time.process_time``) x ``watts_per_core``.

    Units: watts_per_core in W per busy core; energy in J. It counts only this
    process (not DataLoader worker subprocesses) and nothing of idle, uncore or
    DRAM power; it scales with work done, so trials compare, but it is not a
    measurement and says so (``estimated=True``). Default 10 W/core: the median
    TDP/cores of nine common Intel and AMD parts (see ``DEFAULT_WATTS_PER_CORE``).
    """

    source = "estimated-cpu"
    estimated = True
    attribution = "process"

    def __init__(
        self,
        *,
        watts_per_core: float | None = None,
        idle_power_w: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        super().__init__(idle_power_w=idle_power_w, clock=clock)
        if watts_per_core is not None and not (watts_per_core > 0 and math.isfinite(watts_per_core)):
            raise ValueError(f"watts_per_core must be a finite number > 0 watts, but got {watts_per_core=}.")
        self.watts_per_core_user = watts_per_core is not None
        self.watts_per_core = DEFAULT_WATTS_PER_CORE if watts_per_core is None else watts_per_core
        self._cpu_clock = cpu_clock
        self._cpu0 = 0.0

    def _begin(self) -> float | None:
        self._cpu0 = self._cpu_clock()
        return None

    def _measure(self) -> Measurement:
        cpu_s = self._cpu_clock() - self._cpu0
        return Measurement(energy_j=cpu_s * self.watts_per_core)

    def _provenance(self) -> dict[str, Any]:
        return {
            "backend": "estimate",
            "method": "process CPU time (time.process_time, all threads) x watts_per_core",
            "watts_per_core": self.watts_per_core,
            "watts_per_core_from": "user" if self.watts_per_core_user else "default (median TDP/cores, 9 parts)",
            "cpu": platform.processor() or platform.machine(),
            "n_logical_cpus": os.cpu_count(),
        }
