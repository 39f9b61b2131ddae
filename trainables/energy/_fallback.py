"""A meter that outlives its backend: when a reading fails mid-trial, the rest of the trial is measured by the
next source, and the reason is recorded, instead of the trial failing.

A GPU that falls off the bus, an NVML that stops answering, a RAPL file that disappears: the trial's training
is fine, only its meter is not. The energy measured until the last good reading is kept; from there the next
backend in the usual order (RAPL where readable, else the CPU-time estimate) counts on top of it. The trial's
figures say so: ``fallback_reasons`` names what failed and when, the source becomes the new one's, and the
trial is marked estimated if any part of it was.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import EnergyError
from ._meter import MAX_TRACE_POINTS, BaseMeter, EnergyReading, Measurement


class FallbackMeter(BaseMeter):
    """``primary`` until one of its readings raises an ``EnergyError``, then ``make_next(failed)`` for the rest
    (and so on down the order: the CPU-time estimate, last, cannot fail)."""

    def __init__(
        self,
        primary: BaseMeter,
        make_next: Callable[[BaseMeter], BaseMeter],
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(clock=clock)
        self.current = primary
        self._make_next = make_next
        self.replaced: list[BaseMeter] = []
        self._base: EnergyReading | None = None  # the cumulative figures when the current meter took over
        self._last: EnergyReading | None = None
        self._sources: dict[str, str] = {}
        self._sync_labels()
        self.gpu_model = primary.gpu_model
        self.fallback_reasons = list(primary.fallback_reasons)

    @property
    def parts(self) -> list[BaseMeter]:
        """The parts of the current meter (a GPU and its host), for their idle baselines."""
        return list(getattr(self.current, "parts", [self.current]))

    def _sync_labels(self) -> None:
        self.source = self.current.source
        self.estimated = self.current.estimated or any(m.estimated for m in self.replaced)
        self.attribution = self.current.attribution

    def _begin(self) -> float | None:
        self.current.start()
        return None

    def _switch(self, exc: EnergyError) -> None:
        failed = self.current
        with contextlib.suppress(EnergyError):
            failed._end()  # why not stop(): its final reading would raise again; its threads must still end
        nxt = self._make_next(failed)
        nxt.start()
        self.replaced.append(failed)
        self.current = nxt
        self._base = self._last
        at = self._last.time_s if self._last is not None else 0.0
        self.fallback_reasons.append(
            f"{failed.source} failed after {at:.1f} s ({exc}); the rest of the trial measured by {nxt.source}"
        )
        self._sync_labels()

    def _measure(self) -> Measurement:
        try:
            r = self.current.read()
        except EnergyError as exc:
            self._switch(exc)
            return self._measure()
        base = self._base
        components = dict(r.components)
        sources = dict(r.component_sources)
        if base is not None:
            for c, j in base.components.items():
                components[c] = components.get(c, 0.0) + j
                sources.setdefault(c, base.component_sources.get(c, ""))
        self._sources = sources
        energy = r.energy_j + (base.energy_j if base else 0.0)
        dynamic = r.dynamic_energy_j + (base.dynamic_energy_j if base else 0.0)
        m = Measurement(
            energy_j=energy, dynamic_energy_j=dynamic, components=components, share=r.share, share_rule=r.share_rule
        )
        self._last = EnergyReading(
            energy_j=energy,
            dynamic_energy_j=dynamic,
            time_s=(base.time_s if base else 0.0) + r.time_s,
            source=r.source,
            estimated=self.estimated,
            components=components,
            component_sources=sources,
        )
        return m

    def _component_sources(self, components: Mapping[str, float]) -> dict[str, str]:
        return {c: self._sources.get(c, self.source) for c in components}

    def _end(self) -> None:
        self.current.stop()

    def trace(self, *, max_points: int = MAX_TRACE_POINTS) -> dict[str, Any]:
        """The meter's own trace (the GPU's sampled power) while nothing failed; after a hand-over, the trial's
        power from the energy between reads, across both meters."""
        if not self.replaced:
            return self.current.trace(max_points=max_points)
        return super().trace(max_points=max_points)

    def _provenance(self) -> dict[str, Any]:
        out = self.current.provenance()
        for key in ("fallback_reasons", "window_start_unix", "window_end_unix"):  # why: the trial's are outside
            out.pop(key, None)
        if self.replaced:
            out["replaced"] = [m.provenance() for m in self.replaced]
        return out

    def provenance(self) -> dict[str, Any]:
        d = super().provenance()
        d["fallback_reasons"] = list(self.fallback_reasons)
        return d
