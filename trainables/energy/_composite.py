"""One window over several devices: a GPU trial's GPUs and its host CPU, each measured by its own backend."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._errors import EnergyError
from ._meter import MAX_TRACE_POINTS, BaseMeter, Measurement


class CompositeMeter(BaseMeter):
    """The sum of what was measured for a trial, with every component kept.

    ``energy_j`` adds the parts that measure (NVML, RAPL); a part that only estimates (the CPU-time estimate
    on a host without RAPL) is recorded as its component but not added beside a measurement, so a measured
    figure is never mixed with a guess. When no part measures, the estimates are the figure (``estimated``).
    Each part keeps its own idle baseline and sharing; ``dynamic_energy_j`` is the sum of the added parts'.
    """

    def __init__(self, parts: Sequence[BaseMeter], *, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(clock=clock)
        if not parts:
            raise ValueError("a composite meter needs at least one part.")
        self.parts = list(parts)
        measured = [p for p in self.parts if not p.estimated]
        self.billed = measured or self.parts
        self.source = "+".join(p.source for p in self.billed)
        self.estimated = not measured
        self.attribution = "shared" if any(p.attribution == "shared" for p in self.billed) else "exclusive"
        self.gpu_model = next((p.gpu_model for p in self.parts if p.gpu_model), None)
        self._sources: dict[str, str] = {}

    def _begin(self) -> float | None:
        started: list[BaseMeter] = []
        try:
            for p in self.parts:
                p.start()
                started.append(p)
        except BaseException:
            for p in started:
                p.stop()  # why: a part that started must not keep its thread when a later part fails
            raise
        return None

    def _measure(self) -> Measurement:
        readings = [(p, p.read()) for p in self.parts]
        billed = [r for p, r in readings if p in self.billed]
        components: dict[str, float] = {}
        self._sources = {}
        for _, r in readings:
            components.update(r.components)
            self._sources.update(r.component_sources)
        rules = [r.share_rule for r in billed if r.share_rule]
        return Measurement(
            energy_j=math.fsum(r.energy_j for r in billed),
            dynamic_energy_j=math.fsum(r.dynamic_energy_j for r in billed),
            components=components,
            share_rule="+".join(dict.fromkeys(rules)) or None,
        )

    def _component_sources(self, components: Mapping[str, float]) -> dict[str, str]:
        return {c: self._sources.get(c, self.source) for c in components}

    def _end(self) -> None:
        for p in self.parts:
            # why suppress: a part that cannot give its last reading has still ended its threads (BaseMeter.stop)
            with contextlib.suppress(EnergyError):
                p.stop()

    def trace(self, *, max_points: int = MAX_TRACE_POINTS) -> dict[str, Any]:
        """The GPU's sampled power where it is sampled (10 Hz; the host's share is not in it), else the trial's
        power from the energy between reads."""
        for p in self.billed:
            if p._power_trace() is not None and p.component == "gpu":
                out = p.trace(max_points=max_points)
                out["source"] = f"{p.source} (GPU only)"
                return out
        return super().trace(max_points=max_points)

    def _provenance(self) -> dict[str, Any]:
        return {
            "backend": "composite",
            "billed": [p.source for p in self.billed],
            "parts": [p.provenance() for p in self.parts],
            "note": "energy_j sums the parts that measure; an estimated part beside a measured one is "
            "recorded as its component, not added.",
        }
