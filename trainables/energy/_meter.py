"""The meter interface every backend implements, and the reading it returns."""

from __future__ import annotations

import abc
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

# why: a trace is for a figure and a JSON file per trial; 500 points is finer than any plot needs.
MAX_TRACE_POINTS = 500


@dataclass(frozen=True)
class EnergyReading:
    """Energy of this trial since ``meter.start()``.

    Units: joules (``*_j``), seconds (``time_s``).

    Attributes:
        energy_j: energy attributed to this trial (for a shared GPU: its share of the device's).
        dynamic_energy_j: ``energy_j - idle_power_w * time_s`` floored at 0; equals ``energy_j``
            when the meter has no idle baseline.
        time_s: wall time since start.
        source: ``nvml-counter``, ``nvml-power``, ``rapl`` or ``estimated-cpu``.
        estimated: True when ``energy_j`` is an estimate, not a measurement.
        attribution: ``exclusive`` (whole GPU), ``shared`` (a GPU split by utilisation),
            ``package`` (whole CPU package(s), all processes), ``process`` (this process's CPU time).
        crosscheck_energy_j: NVML only: the integrated power over the same window (same share),
            None when not recorded. The counter is the figure; this checks it.
        share: fraction of the device's energy attributed to this trial (1.0 unless shared).
        components: joules by component (``gpu``, ``cpu``, ``dram``), this trial's part of each.
        component_sources: the source of each component (``nvml-counter``, ``rapl``, ``estimated-cpu``...).
        share_rule: how a shared device was split (``sm-utilisation``, ``time``, ``cpu-time``); None if exclusive.
    """

    energy_j: float
    dynamic_energy_j: float
    time_s: float
    source: str
    estimated: bool
    attribution: str = "process"
    crosscheck_energy_j: float | None = None
    share: float = 1.0
    components: Mapping[str, float] = field(default_factory=dict)
    component_sources: Mapping[str, str] = field(default_factory=dict)
    share_rule: str | None = None

    @property
    def attribution_label(self) -> str:
        """``exclusive``, or ``shared:<rule>``: what the run directory records per epoch."""
        if self.attribution != "shared":
            return "exclusive"
        return f"shared:{self.share_rule or 'unknown'}"

    @property
    def crosscheck_ratio(self) -> float | None:
        """``crosscheck_energy_j / energy_j`` (dimensionless); None when either is missing or zero."""
        if self.crosscheck_energy_j is None or self.energy_j <= 0:
            return None
        return self.crosscheck_energy_j / self.energy_j

    def to_dict(self) -> dict[str, Any]:
        """All fields plus ``crosscheck_ratio``, JSON-serialisable."""
        d = asdict(self)
        d["components"], d["component_sources"] = dict(self.components), dict(self.component_sources)
        return {**d, "crosscheck_ratio": self.crosscheck_ratio}


@dataclass(frozen=True)
class Measurement:
    """What a backend measured since its start (before idle subtraction). Units: joules."""

    energy_j: float
    crosscheck_energy_j: float | None = None
    share: float = 1.0
    at: float | None = None  # clock time the energy refers to; None = "now"
    components: Mapping[str, float] | None = None  # joules by component; None = all of it is the meter's component
    dynamic_energy_j: float | None = None  # set by a meter that subtracts idle itself (the composite)
    share_rule: str | None = None


def downsample(t_s: Sequence[float], values: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """Bucket-average two parallel series down to at most ``max_points`` points (order kept)."""
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, but got {max_points=}.")
    n = len(t_s)
    if n <= max_points:
        return list(t_s), list(values)
    out_t: list[float] = []
    out_v: list[float] = []
    for k in range(max_points):
        lo, hi = k * n // max_points, (k + 1) * n // max_points
        out_t.append(math.fsum(t_s[lo:hi]) / (hi - lo))
        out_v.append(math.fsum(values[lo:hi]) / (hi - lo))
    return out_t, out_v


def watts_from_energy(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Cumulative ``(t_s, energy_j)`` points -> mean watts over each interval, stamped at its midpoint."""
    t_out: list[float] = []
    w_out: list[float] = []
    for (t0, e0), (t1, e1) in itertools.pairwise(points):
        if t1 > t0:
            t_out.append((t0 + t1) / 2)
            w_out.append((e1 - e0) / (t1 - t0))
    return t_out, w_out


class BaseMeter(abc.ABC):
    """Start/read/stop over one window; subclasses supply the measurement.

    ``read()`` is cumulative since ``start()`` and cheap (one counter read); after
    ``stop()`` it returns the final reading. Usable as a context manager.
    """

    source: str = ""
    estimated: bool = False
    attribution: str = "process"
    component: str = "cpu"  # what it measures: gpu, or cpu (RAPL splits cpu and dram itself)
    gpu_model: str | None = None  # NVML's name of the GPU(s) measured, joined by "+" when they differ

    def __init__(self, *, idle_power_w: float | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        if idle_power_w is not None and not (idle_power_w >= 0 and math.isfinite(idle_power_w)):
            raise ValueError(f"idle_power_w must be a finite number >= 0 watts, but got {idle_power_w=}.")
        self.idle_power_w = idle_power_w
        # why: auto selection records why better backends were skipped; provenance reports it.
        self.fallback_reasons: list[str] = []
        self._clock = clock
        self._t0: float | None = None
        self._final: EnergyReading | None = None
        self._points: list[tuple[float, float]] = []  # (t_s, energy_j) at start, each read, stop
        self._window_unix: list[float] = []  # wall-clock start, last read: lines a trial up with other trials, logs

    # --- the backend's part -------------------------------------------------
    @abc.abstractmethod
    def _begin(self) -> float | None:
        """Take the start readings; return the clock time they refer to (None = "now")."""

    @abc.abstractmethod
    def _measure(self) -> Measurement:
        """Energy since ``_begin``."""

    def _end(self) -> None:  # noqa: B027 - optional hook, most backends have nothing to release
        """Release threads/handles after the final measurement."""

    @abc.abstractmethod
    def _provenance(self) -> dict[str, Any]:
        """Backend-specific provenance, JSON-serialisable."""

    def _component_sources(self, components: Mapping[str, float]) -> dict[str, str]:
        return dict.fromkeys(components, self.source)

    def _power_trace(self) -> tuple[list[float], list[float]] | None:
        """Sampled ``(t_s since start, watts)`` if the backend samples power; None to derive from reads."""
        return None

    # --- the public surface -------------------------------------------------
    def start(self) -> None:
        """Begin the window. Calling it twice is an error."""
        if self._t0 is not None:
            raise RuntimeError("meter already started; make a new meter for a new window.")
        at = self._begin()
        now, now_unix = self._clock(), time.time()
        self._t0 = now if at is None else at
        # why from t0: the wall-clock window starts where the energy window starts, after the backend's set-up (a
        # thread spawn, a shared GPU's ledger join), which on a loaded machine takes a tenth of a second
        self._window_unix = [now_unix - max(0.0, now - self._t0)]
        self._points.append((0.0, 0.0))

    def read(self) -> EnergyReading:
        """Energy since ``start()`` (cumulative). After ``stop()``: the final reading."""
        if self._final is not None:
            return self._final
        if self._t0 is None:
            raise RuntimeError("call start() before read().")
        m = self._measure()
        time_s = (self._clock() if m.at is None else m.at) - self._t0
        # why times the share: a shared device's idle power is shared too (its trials must not each subtract all of it)
        idle_j = 0.0 if self.idle_power_w is None else self.idle_power_w * time_s * m.share
        dynamic = max(0.0, m.energy_j - idle_j) if m.dynamic_energy_j is None else m.dynamic_energy_j
        components = dict(m.components) if m.components is not None else {self.component: m.energy_j}
        reading = EnergyReading(
            energy_j=m.energy_j,
            dynamic_energy_j=dynamic,
            time_s=time_s,
            source=self.source,
            estimated=self.estimated,
            attribution=self.attribution,
            crosscheck_energy_j=m.crosscheck_energy_j,
            share=m.share,
            components=components,
            component_sources=self._component_sources(components),
            share_rule=m.share_rule,
        )
        self._points.append((time_s, m.energy_j))
        self._window_unix[1:] = [time.time()]
        return reading

    def stop(self) -> EnergyReading:
        """End the window and return the final reading. Idempotent."""
        if self._final is not None:
            return self._final
        try:
            reading = self.read()
        except BaseException:
            self._end()  # why: a backend that fails its last reading must still end its threads
            raise
        self._final = reading
        self._end()
        return reading

    def trace(self, *, max_points: int = MAX_TRACE_POINTS) -> dict[str, Any]:
        """Power over the window so far: ``{"t_s": [...], "watts": [...], "source": str}``.

        Units: seconds since start, watts. At most ``max_points`` points (bucket means).
        From the power sampler where the backend has one, else from energy deltas between reads.
        """
        sampled = self._power_trace()
        t_s, watts = sampled if sampled is not None else watts_from_energy(self._points)
        t_s, watts = downsample(t_s, watts, max_points)
        return {"t_s": t_s, "watts": watts, "source": self.source}

    def provenance(self) -> dict[str, Any]:
        """Where the numbers come from (backend, device, versions, settings), JSON-serialisable."""
        return {
            "source": self.source,
            "estimated": self.estimated,
            "attribution": self.attribution,
            "idle_power_w": self.idle_power_w,
            "fallback_reasons": list(self.fallback_reasons),
            "window_start_unix": self._window_unix[0] if self._window_unix else None,
            "window_end_unix": self._window_unix[1] if len(self._window_unix) > 1 else None,  # the last read's
            **self._provenance(),
        }

    def __enter__(self) -> BaseMeter:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
