"""Splitting a CPU package's energy between processes by their share of the machine's busy CPU time.

RAPL counts every process on the socket: two trials on one machine would each bill the whole package. A trial's
share over its window = its process's CPU time / the whole machine's busy CPU time (``/proc/stat``), so the shares
of the processes running on the machine add up to 1 and each joule is billed once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (guest time is inside user)


def machine_busy_cpu_s(stat: str | Path = "/proc/stat") -> float:
    """Busy CPU time of the whole machine since boot, all cores, s (``/proc/stat``'s first line, in USER_HZ)."""
    fields = Path(stat).read_text().split("\n", 1)[0].split()[1:]
    ticks = sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields))
    return ticks / os.sysconf("SC_CLK_TCK")


class CpuTimeShare:
    """This process's share of the machine's busy CPU time since ``begin()``, in [0, 1].

    ``process_s`` / ``machine_s``: clocks of this process's and the machine's CPU time, s (tests pass fakes).
    """

    method = "cpu-time"

    def __init__(
        self,
        *,
        process_s: Callable[[], float] = time.process_time,
        machine_s: Callable[[], float] = machine_busy_cpu_s,
    ) -> None:
        self._process_s, self._machine_s = process_s, machine_s
        self._p0 = self._m0 = 0.0

    def begin(self) -> None:
        self._p0, self._m0 = self._process_s(), self._machine_s()

    def share(self) -> float:
        """Own CPU time over the machine's, since ``begin()``; 1 before the machine has counted any."""
        machine = self._machine_s() - self._m0
        if machine <= 0:
            return 1.0
        return min(1.0, max(0.0, (self._process_s() - self._p0) / machine))
