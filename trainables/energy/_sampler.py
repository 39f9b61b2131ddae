"""A background thread that samples power and integrates it by the trapezoid rule."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from ._errors import EnergyError

# why: past this many stored samples, adjacent pairs are merged; the integral is kept
# exactly (it is accumulated as samples arrive), only the trace's resolution halves.
_MAX_STORED_SAMPLES = 20_000


def trapezoid_j(t_s: Sequence[float], watts: Sequence[float]) -> float:
    """Integral of power over time by the trapezoid rule. Units: s, W -> J."""
    if len(t_s) != len(watts):
        raise ValueError(f"t_s and watts differ in length: {len(t_s)=} {len(watts)=}.")
    return math.fsum((t1 - t0) * (w0 + w1) / 2 for t0, t1, w0, w1 in zip(t_s, t_s[1:], watts, watts[1:], strict=False))


class PowerSampler:
    """Samples ``read_watts()`` (one value per channel, W) every ``interval_s`` on a daemon thread.

    The energy of each channel is integrated incrementally by the trapezoid rule
    between consecutive samples. ``sample()`` takes one extra sample from the
    caller's thread (so a read closes the integral at the moment of reading).
    An ``EnergyError`` in the thread stops sampling and is kept in ``error``.
    """

    def __init__(
        self,
        read_watts: Callable[[], Sequence[float]],
        *,
        interval_s: float,
        clock: Callable[[], float] = time.perf_counter,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        if not (interval_s > 0 and math.isfinite(interval_s)):
            raise ValueError(f"interval_s must be > 0 seconds, but got {interval_s=}.")
        self.interval_s = interval_s
        self.error: EnergyError | None = None
        self._read_watts = read_watts
        self._clock = clock
        self._on_tick = on_tick
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._energy_j: list[float] = []
        self._last: tuple[float, list[float]] | None = None
        self._t: list[float] = []
        self._total_w: list[float] = []
        self.n_samples = 0

    def start(self, *, background: bool = True) -> float:
        """Take the first sample (its clock time is returned); with ``background`` also start the thread."""
        t = self.sample()
        if background:
            self._thread = threading.Thread(target=self._run, name="wattsweep-power-sampler", daemon=True)
            self._thread.start()
        return t

    def sample(self) -> float:
        """Take one sample now, extend the integrals to it, return its clock time."""
        watts = [float(w) for w in self._read_watts()]
        with self._lock:
            t = self._clock()
            if self._last is None:
                self._energy_j = [0.0] * len(watts)
            else:
                t0, w0 = self._last
                for i, (a, b) in enumerate(zip(w0, watts, strict=True)):
                    self._energy_j[i] += (t - t0) * (a + b) / 2
            self._last = (t, watts)
            self._t.append(t)
            self._total_w.append(math.fsum(watts))
            self.n_samples += 1
            if len(self._t) > _MAX_STORED_SAMPLES:
                self._t = [(a + b) / 2 for a, b in zip(self._t[::2], self._t[1::2], strict=False)]
                self._total_w = [(a + b) / 2 for a, b in zip(self._total_w[::2], self._total_w[1::2], strict=False)]
        return t

    def stop(self) -> None:
        """Stop the thread (if any) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * self.interval_s + 1.0)
            self._thread = None

    def energy_j(self) -> list[float]:
        """Integrated energy per channel up to the latest sample. Units: J."""
        with self._lock:
            return list(self._energy_j)

    def series(self) -> tuple[list[float], list[float]]:
        """Stored ``(clock times, total watts over channels)``."""
        with self._lock:
            return list(self._t), list(self._total_w)

    def _run(self) -> None:
        # why: Event.wait, not sleep, so stop() returns within one interval.
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
                if self._on_tick is not None:
                    self._on_tick()
            except EnergyError as exc:
                self.error = exc
                return
