"""GPU energy through NVML: the total-energy counter, power integration, shared-GPU attribution."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import EnergyError, MigNotMeasurableError, NvmlError, NvmlNotSupportedError, NvmlUnavailableError
from ._ledger import DeviceLedger
from ._meter import BaseMeter, Measurement
from ._nvml import NvmlDevice, cuda_synchronize, driver_versions
from ._sampler import PowerSampler

# why: the counter's period is a property of the driver and GPU, not of the trial;
# measure it once per device per process (it costs up to ~0.5 s of polling).
_period_cache: dict[str, float | None] = {}
_period_lock = threading.Lock()


def measure_counter_period_s(
    device: NvmlDevice,
    *,
    n_periods: int = 3,
    timeout_s: float = 1.0,
    poll_s: float = 0.001,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> float | None:
    """How often the energy counter changes: poll it until it has changed ``n_periods + 1`` times.

    Units: seconds. None when it changed fewer than twice within ``timeout_s``.
    """
    last = device.energy_mj()
    edges: list[float] = []
    deadline = clock() + timeout_s
    while len(edges) <= n_periods and clock() < deadline:
        sleep(poll_s)
        value = device.energy_mj()
        if value != last:
            edges.append(clock())
            last = value
    if len(edges) < 2:
        return None
    return (edges[-1] - edges[0]) / (len(edges) - 1)


def _cached_period_s(device: NvmlDevice) -> float | None:
    with _period_lock:
        if device.uuid not in _period_cache:
            try:
                _period_cache[device.uuid] = measure_counter_period_s(device)
            except NvmlError:
                _period_cache[device.uuid] = None
        return _period_cache[device.uuid]


def _supported(query: Callable[[], object]) -> bool:
    try:
        query()
    except NvmlNotSupportedError:
        return False
    return True


def _name_or_unknown(device: NvmlDevice) -> str:
    try:
        return str(device.name())
    except NvmlError:
        return "unknown GPU"


class NvmlMeter(BaseMeter):
    """Energy of the trial's GPUs from NVML (sum over devices).

    The figure is the total-energy counter (mJ since driver load, Volta and newer),
    read after a CUDA synchronise at start, at each read and at stop. Where the
    counter is unsupported, a daemon thread samples power every
    ``sample_interval_s`` and integrates it (trapezoid); where both work the
    integral is kept as ``crosscheck_energy_j``. With ``gpu_fraction < 1`` each
    device's energy is split between the trials on it through its ledger (``_ledger``: by SM
    utilisation where NVML reports it per process, else by time), each joule billed once.
    """

    component = "gpu"

    estimated = False

    def __init__(
        self,
        devices: Sequence[NvmlDevice],
        *,
        gpu_fraction: float = 1.0,
        idle_power_w: float | None = None,
        sample_interval_s: float = 0.1,
        crosscheck: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        sync: Callable[[], None] = cuda_synchronize,
        background: bool = True,
    ) -> None:
        super().__init__(idle_power_w=idle_power_w, clock=clock)
        if not (0 < gpu_fraction <= 1):
            raise ValueError(f"gpu_fraction must be in (0, 1], but got {gpu_fraction=}.")
        if not devices:
            raise NvmlUnavailableError("no GPU to measure.")
        for d in devices:
            if d.mig_enabled():
                raise MigNotMeasurableError(
                    f"GPU {d.uuid} has MIG enabled: NVML reports the whole GPU's energy, not this slice's.",
                    fix="give the trial a whole GPU (MIG off), or use backend='estimate'.",
                )
        self.devices = list(devices)
        self.gpu_fraction = gpu_fraction
        self.counter_ok = all(_supported(d.energy_mj) for d in self.devices)
        self.power_ok = all(_supported(d.power_mw) for d in self.devices)
        if not (self.counter_ok or self.power_ok):
            raise NvmlNotSupportedError(
                "these GPUs support neither the energy counter nor power readings.",
                fix="use a GPU with power monitoring (nvidia-smi -q -d POWER), or backend='estimate'.",
            )
        self.source = "nvml-counter" if self.counter_ok else "nvml-power"
        self.gpu_model = "+".join(dict.fromkeys(_name_or_unknown(d) for d in self.devices))
        self.attribution = "shared" if gpu_fraction < 1 else "exclusive"
        self._sync = sync
        self._background = background
        self._ledgers: list[DeviceLedger] = []
        self._counter0: list[int] = []
        self._temps: dict[str, list[int | None]] = {}
        self._last: Measurement | None = None
        # why: the sampler thread also serves shared attribution, so "sampler exists" != "power sampled"
        self._sampling = self.power_ok and (not self.counter_ok or crosscheck)
        self._sampler: PowerSampler | None = None
        if self._sampling or self.attribution == "shared":
            ticks = max(1, round(0.5 / sample_interval_s))  # why: utilisation every ~0.5 s is plenty
            self._tick = 0

            def on_tick() -> None:
                self._tick += 1
                if self._tick % ticks == 0:
                    for ledger in self._ledgers:
                        ledger.settle()

            self._sampler = PowerSampler(
                self._watts if self._sampling else list,
                interval_s=sample_interval_s,
                clock=clock,
                on_tick=on_tick if self.attribution == "shared" else None,
            )

    def _watts(self) -> list[float]:
        return [d.power_mw() / 1000.0 for d in self.devices]

    def _temperatures(self) -> list[int | None]:
        temps: list[int | None] = []
        for d in self.devices:
            try:
                temps.append(d.temperature_c())
            except NvmlError:
                temps.append(None)
        return temps

    def _begin(self) -> float | None:
        self._sync()
        self._temps["start"] = self._temperatures()
        if self.attribution == "shared":
            self._ledgers = [DeviceLedger(d, pid=os.getpid()) for d in self.devices]
            for ledger in self._ledgers:
                ledger.join()
        at = None
        if self.counter_ok:
            self._counter0 = [d.energy_mj() for d in self.devices]
            at = self._clock()
        if self._sampler is not None:
            t_first = self._sampler.start(background=self._background)
            at = t_first if at is None else at
        return at

    def _measure(self) -> Measurement:
        self._sync()
        # why every read: provenance is taken at the last epoch's report, before the meter stops
        self._temps["stop"] = self._temperatures()
        at = None
        counter_j: list[float] = []
        if self.counter_ok:
            counter_j = [(d.energy_mj() - c0) / 1000.0 for d, c0 in zip(self.devices, self._counter0, strict=True)]
            at = self._clock()
        integral_j: list[float] = []
        if self._sampler is not None and self._sampling:
            if self._sampler.error is None:
                t_sample = self._sampler.sample()
                integral_j = self._sampler.energy_j()
                at = t_sample if at is None else at
            elif not self.counter_ok:
                raise self._sampler.error.copy()
        if self._ledgers:  # why: the ledgers split each device's energy between its trials, each joule once
            own = [ledger.settle() for ledger in self._ledgers]
            energy_j = math.fsum(own)
            total = math.fsum(ledger.device_j for ledger in self._ledgers)
            share = energy_j / total if total > 0 else 1.0
        else:
            energy_j = math.fsum(counter_j if self.counter_ok else integral_j)
            share = 1.0
        cross = math.fsum(integral_j) * share if self.counter_ok and integral_j else None
        self._last = Measurement(
            energy_j=energy_j,
            crosscheck_energy_j=cross,
            share=share,
            at=at,
            components={"gpu": energy_j},
            share_rule="+".join(dict.fromkeys(r for ledger in self._ledgers for r in ledger.rule.split("+"))) or None,
        )
        return self._last

    def _end(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        for ledger in self._ledgers:
            ledger.leave()
        self._temps["stop"] = self._temperatures()

    def _power_trace(self) -> tuple[list[float], list[float]] | None:
        if self._sampler is None or not self._sampling or self._t0 is None:
            return None
        t, w = self._sampler.series()
        share = self._last.share if self._last is not None else 1.0
        return [x - self._t0 for x in t], [x * share for x in w]

    def _device_provenance(self, i: int, d: NvmlDevice) -> dict[str, Any]:
        info: dict[str, Any] = {"nvml_index": d.index, "uuid": d.uuid}
        for key, query in (("name", d.name), ("power_limit_w", d.power_limit_w)):
            try:
                info[key] = query()
            except NvmlError as exc:
                info[key] = None
                info[f"{key}_error"] = str(exc)
        info["temperature_start_c"] = self._temps.get("start", [None] * len(self.devices))[i]
        info["temperature_stop_c"] = self._temps.get("stop", [None] * len(self.devices))[i]
        info["counter_supported"] = self.counter_ok
        info["counter_update_period_s"] = _cached_period_s(d) if self.counter_ok else None
        if self._ledgers:
            info["share"], info["share_method"] = self._ledgers[i].share, self._ledgers[i].rule
        return info

    def _provenance(self) -> dict[str, Any]:
        try:
            versions: dict[str, Any] = driver_versions()
        except EnergyError as exc:
            versions = {"driver_version": None, "nvml_version": None, "versions_error": str(exc)}
        sampler = self._sampler
        last = self._last
        return {
            "backend": "nvml",
            **versions,
            "gpu_fraction": self.gpu_fraction,
            "devices": [self._device_provenance(i, d) for i, d in enumerate(self.devices)],
            "power_sampled": self._sampling,
            "sample_interval_s": sampler.interval_s if sampler is not None else None,
            "n_power_samples": sampler.n_samples if sampler is not None else 0,
            "sampler_error": str(sampler.error) if sampler is not None and sampler.error else None,
            "crosscheck_energy_j": last.crosscheck_energy_j if last else None,
            "crosscheck_ratio": (
                last.crosscheck_energy_j / last.energy_j
                if last and last.crosscheck_energy_j is not None and last.energy_j > 0
                else None
            ),
            "note": "nvmlDeviceGetPowerUsage is a 1 s average on Ampere and newer (except A100); "
            "A100/H100 sample power for part of the time only, so the counter is the figure.",
        }
