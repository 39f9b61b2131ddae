"""CPU energy through RAPL (Linux powercap sysfs): Intel, and AMD Zen through the same interface.

Zones are ``<root>/intel-rapl:N`` (packages, psys) and ``<root>/intel-rapl:N:M``
(core, uncore, dram); each has ``name``, ``energy_uj`` (µJ, wraps) and
``max_energy_range_uj``. We sum the ``package-*`` and ``dram`` zones: core and
uncore are inside the package, psys overlaps everything. This module is the
boundary for sysfs: OS errors become RaplUnavailableError / RaplPermissionError.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._cpu_share import CpuTimeShare
from ._errors import EnergyError, RaplPermissionError, RaplUnavailableError
from ._meter import BaseMeter, Measurement, watts_from_energy

DEFAULT_RAPL_ROOT = Path("/sys/class/powercap")

_FIX_NO_RAPL = (
    "RAPL needs Linux on bare-metal Intel or AMD Zen with the intel_rapl_common module "
    "(sudo modprobe intel_rapl_common); VMs and containers often hide it. Else use backend='estimate'."
)


def permission_fix(root: str | Path) -> str:
    """The command that makes RAPL readable (root-only since Linux 5.10, CVE-2020-8694)."""
    return f"sudo chmod a+r {Path(root)}/intel-rapl:*/energy_uj"


def _read_int(path: Path, root: Path) -> int:
    """An integer sysfs file; OS errors become ours."""
    try:
        return int(path.read_text().strip())
    except PermissionError as exc:
        raise RaplPermissionError(f"cannot read {path} (root-only).", fix=permission_fix(root)) from exc
    except (OSError, ValueError) as exc:
        raise RaplUnavailableError(f"cannot read {path}: {exc}.", fix=_FIX_NO_RAPL) from exc


@dataclass(frozen=True)
class RaplZone:
    """One RAPL zone: its sysfs directory, its ``name`` and counter range (µJ)."""

    path: Path
    name: str
    max_energy_range_uj: int

    def to_dict(self) -> dict[str, Any]:
        return {"zone": self.path.name, "name": self.name, "max_energy_range_uj": self.max_energy_range_uj}


def find_zones(root: str | Path = DEFAULT_RAPL_ROOT) -> list[RaplZone]:
    """The readable package and DRAM zones under ``root``.

    Raises RaplUnavailableError when there are none, RaplPermissionError when
    they exist but ``energy_uj`` is not readable by this user.
    """
    root = Path(root)
    dirs = sorted(root.glob("intel-rapl:*"))
    if not dirs:
        raise RaplUnavailableError(f"no RAPL zones under {root}.", fix=_FIX_NO_RAPL)
    zones: list[RaplZone] = []
    names: list[str] = []
    for d in dirs:
        try:
            name = (d / "name").read_text().strip()
        except OSError:
            continue  # why: a zone without a name file is not one we can classify
        names.append(name)
        if name.startswith("package") or name == "dram":
            zones.append(RaplZone(d, name, _read_int(d / "max_energy_range_uj", root)))
    if not zones:
        raise RaplUnavailableError(f"RAPL under {root} has no package or dram zone (found {names}).", fix=_FIX_NO_RAPL)
    for z in zones:
        _read_int(z.path / "energy_uj", root)  # why: fail here, at selection, not mid-trial
    return zones


class _ZoneCounter:
    """A zone's energy since start, unwrapping ``energy_uj`` at ``max_energy_range_uj``.

    A wrap is seen as a reading below the previous one; the counter must be read
    at least once per wrap (minutes at full load), hence the meter's poll thread.
    """

    def __init__(self, zone: RaplZone, root: Path) -> None:
        self.zone = zone
        self._root = root
        self._last = self._raw()
        self.total_uj = 0

    def _raw(self) -> int:
        return _read_int(self.zone.path / "energy_uj", self._root)

    def update(self) -> int:
        raw = self._raw()
        if raw >= self._last:
            self.total_uj += raw - self._last
        else:
            self.total_uj += self.zone.max_energy_range_uj - self._last + raw
        self._last = raw
        return self.total_uj


class RaplMeter(BaseMeter):
    """Energy of the CPU package(s) (+ DRAM where exposed) from RAPL, all processes on them.

    A daemon thread reads the counters every ``poll_interval_s`` seconds so no wrap
    is missed and the trace has points between reads.
    """

    source = "rapl"
    estimated = False
    attribution = "package"

    def __init__(
        self,
        zones: Sequence[RaplZone],
        *,
        root: str | Path = DEFAULT_RAPL_ROOT,
        idle_power_w: float | None = None,
        poll_interval_s: float = 1.0,
        clock: Callable[[], float] = time.perf_counter,
        background: bool = True,
        share: CpuTimeShare | None = None,
    ) -> None:
        super().__init__(idle_power_w=idle_power_w, clock=clock)
        # share: bill this process's share of the package's energy (concurrent trials on one machine), not all of it
        self.share = share
        if share is not None:
            self.attribution = "shared"
        if not zones:
            raise RaplUnavailableError("no RAPL zones to measure.", fix=_FIX_NO_RAPL)
        if not (poll_interval_s > 0 and math.isfinite(poll_interval_s)):
            raise ValueError(f"poll_interval_s must be > 0 seconds, but got {poll_interval_s=}.")
        self.zones = list(zones)
        self._has_dram = any(z.name == "dram" for z in self.zones)
        self.root = Path(root)
        self.poll_interval_s = poll_interval_s
        self._background = background
        self._counters: list[_ZoneCounter] = []
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._polls: list[tuple[float, float]] = []  # (clock time, energy_j)
        self._error: EnergyError | None = None

    def _total_j(self) -> float:
        with self._lock:
            total = math.fsum(c.update() for c in self._counters) / 1e6
            self._polls.append((self._clock(), total))
            return total

    def _run(self) -> None:
        while not self._stop_event.wait(self.poll_interval_s):
            try:
                self._total_j()
            except EnergyError as exc:
                self._error = exc
                return

    def _begin(self) -> float | None:
        self._counters = [_ZoneCounter(z, self.root) for z in self.zones]
        t0 = self._clock()
        self._polls = [(t0, 0.0)]
        if self.share is not None:
            self.share.begin()
        if self._background:
            self._thread = threading.Thread(target=self._run, name="wattsweep-rapl-poller", daemon=True)
            self._thread.start()
        return t0

    def _measure(self) -> Measurement:
        if self._error is not None:
            raise self._error.copy()
        total = self._total_j()
        share = self.share.share() if self.share is not None else 1.0
        with self._lock:
            dram = math.fsum(c.total_uj for c in self._counters if c.zone.name == "dram") / 1e6
        components = {"cpu": (total - dram) * share, **({"dram": dram * share} if dram or self._has_dram else {})}
        rule = self.share.method if self.share is not None else None
        return Measurement(energy_j=total * share, share=share, components=components, share_rule=rule)

    def _end(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_interval_s + 1.0)

    def _power_trace(self) -> tuple[list[float], list[float]] | None:
        if self._t0 is None:
            return None
        with self._lock:
            points = [(t - self._t0, e) for t, e in self._polls]
        t_s, watts = watts_from_energy(points)
        share = self.share.share() if self.share is not None else 1.0
        return t_s, [w * share for w in watts]

    def _provenance(self) -> dict[str, Any]:
        return {
            "backend": "rapl",
            "root": str(self.root),
            "zones": [z.to_dict() for z in self.zones],
            "poll_interval_s": self.poll_interval_s,
            **({"share": self.share.share(), "share_method": self.share.method} if self.share is not None else {}),
            "note": "package zones cover every process on the socket; core/uncore (inside package) "
            "and psys (overlapping) are excluded.",
        }
