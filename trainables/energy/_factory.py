"""Choosing a backend (``make_meter``) and measuring the idle baseline (``measure_idle_power``)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ._composite import CompositeMeter
from ._cpu_share import CpuTimeShare
from ._errors import EnergyError, NvmlNotSupportedError, NvmlUnavailableError, RaplPermissionError, warn_once
from ._estimate import CpuTimeEstimateMeter
from ._meter import BaseMeter
from ._nvml import NvmlDevice, torch_cuda_uuids, visible_devices
from ._nvml_meter import NvmlMeter
from ._rapl import DEFAULT_RAPL_ROOT, RaplMeter, _ZoneCounter, find_zones
from ._sampler import PowerSampler

BACKENDS = ("auto", "nvml", "rapl", "estimate")
# The one order of preference: make_meter's auto choice, the doctor and the idle measurement follow it. A GPU
# trial's GPU is measured by the first, its host by the first that measures a CPU.
GPU_ORDER = ("nvml",)
HOST_ORDER = ("rapl", "estimate")
# why 0.1 s: 10 Hz resolves the 1 s power average of recent GPUs and costs ~nothing.
DEFAULT_SAMPLE_INTERVAL_S = 0.1


def _parse_device(device: str) -> tuple[str, int | None]:
    """``"cpu"`` / ``"cuda"`` / ``"cuda:N"`` -> (kind, visible index or None)."""
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return "cpu", None
    if kind == "cuda" and (not index or index.isdigit()):
        return "cuda", int(index) if index else None
    raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', but got {device=}.")


def trial_gpus(cuda_index: int | None = None) -> list[NvmlDevice]:
    """The GPUs of this trial: all CUDA-visible ones, or the ``cuda_index``-th of them."""
    devices = visible_devices(cuda_uuids=torch_cuda_uuids())
    if cuda_index is None:
        return devices
    if cuda_index >= len(devices):
        raise NvmlUnavailableError(f"cuda:{cuda_index} requested but only {len(devices)} GPU(s) are visible.")
    return [devices[cuda_index]]


def make_meter(
    device: str = "cpu",
    *,
    watts_per_core: float | None = None,
    backend: str = "auto",
    idle_power_w: float | None = None,
    gpu_fraction: float = 1.0,
    share_cpu: bool = False,
    rapl_root: str | Path = DEFAULT_RAPL_ROOT,
    sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
    crosscheck: bool = True,
) -> BaseMeter:
    """A meter for one trial; call ``start()``, ``read()`` per epoch, ``stop()``.

    Args:
        device: ``"cpu"``, ``"cuda"`` (all CUDA-visible GPUs) or ``"cuda:N"``.
        watts_per_core: W per busy core for the estimate (default ``DEFAULT_WATTS_PER_CORE``).
        backend: ``"auto"`` = NVML for a cuda device when it works, with the host CPU beside it (RAPL when
            readable, else the CPU-time estimate) in a ``CompositeMeter``; for a CPU device (or when NVML does
            not work) RAPL when readable, else the CPU-time estimate (reasons kept in ``meter.fallback_reasons``);
            ``"nvml"`` / ``"rapl"`` / ``"estimate"`` force one, and an unavailable one
            raises a BackendUnavailableError whose message names the fix.
        idle_power_w: idle baseline, W; then ``dynamic_energy_j = energy_j - idle_power_w * time_s``.
        gpu_fraction: this trial's share of the GPU (Ray's fractional GPU), in (0, 1];
            below 1 the device's energy is split by SM utilisation (``attribution="shared"``).
        share_cpu: RAPL: bill this process's share of the machine's busy CPU time of the package and DRAM
            energy (``attribution="shared"``), so that concurrent trials on one machine each bill theirs once.
        rapl_root: the powercap sysfs directory (tests point it at a temp dir).
        sample_interval_s: NVML power sampling period, s (default 0.1 = 10 Hz).
        crosscheck: NVML: also integrate power where the counter works, as ``crosscheck_energy_j``.
    """
    kind, cuda_index = _parse_device(device)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, but got {backend=}.")
    if not (0 < gpu_fraction <= 1):
        raise ValueError(f"gpu_fraction must be in (0, 1], but got {gpu_fraction=}.")
    if not (sample_interval_s > 0 and math.isfinite(sample_interval_s)):
        raise ValueError(f"sample_interval_s must be > 0 seconds, but got {sample_interval_s=}.")
    if backend == "nvml" and kind != "cuda":
        raise ValueError(f"backend='nvml' measures GPUs: pass device='cuda', but got {device=}.")

    def nvml() -> BaseMeter:
        return NvmlMeter(
            trial_gpus(cuda_index),
            gpu_fraction=gpu_fraction,
            idle_power_w=idle_power_w,
            sample_interval_s=sample_interval_s,
            crosscheck=crosscheck,
        )

    def rapl() -> BaseMeter:
        share = CpuTimeShare() if share_cpu else None
        return RaplMeter(find_zones(rapl_root), root=rapl_root, idle_power_w=idle_power_w, share=share)

    def estimate() -> BaseMeter:
        return CpuTimeEstimateMeter(watts_per_core=watts_per_core, idle_power_w=idle_power_w)

    if backend != "auto":
        return {"nvml": nvml, "rapl": rapl, "estimate": estimate}[backend]()
    reasons: list[str] = []
    gpu: BaseMeter | None = None
    if kind == "cuda":
        try:
            gpu = nvml()
        except EnergyError as exc:
            reasons.append(f"nvml: {exc}")
            warn_once(f"nvml:{type(exc).__name__}", f"GPU energy not measured, falling back to the CPU: {exc}")
    host: BaseMeter | None = None
    try:
        host = rapl()
    except RaplPermissionError as exc:
        reasons.append(f"rapl: {exc}")
        warn_once("rapl:permission", f"RAPL is root-only here, so CPU energy is estimated; fix: {exc.fix}")
    except EnergyError as exc:
        reasons.append(f"rapl: {exc}")
    if host is None:
        host = estimate()
    meter: BaseMeter = host if gpu is None else CompositeMeter([gpu, host])
    meter.fallback_reasons = reasons
    return meter


def next_meter(failed: BaseMeter, *, watts_per_core: float | None = None, share_cpu: bool = False) -> BaseMeter:
    """The meter that takes over when ``failed`` fails mid-trial: the host CPU (RAPL where readable, else the
    estimate) after a GPU meter, the estimate after RAPL."""
    if failed.source == "rapl":
        return CpuTimeEstimateMeter(watts_per_core=watts_per_core)
    return make_meter("cpu", watts_per_core=watts_per_core, share_cpu=share_cpu)


def measure_idle_power(
    seconds: float = 5.0,
    *,
    gpus: bool = True,
    cpu: bool = True,
    rapl_root: str | Path = DEFAULT_RAPL_ROOT,
    sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, float]:
    """Mean power while this process sleeps for ``seconds``. Units: W.

    Keys: each visible GPU's UUID (energy counter, or sampled power where the counter
    is unsupported; MIG devices skipped), ``"cpu-package"`` (sum of RAPL package
    zones) and ``"cpu-dram"`` where RAPL is readable. ``{}`` when nothing is
    measurable. Run it before the sweep, on a quiet machine; use >= 1 s (the GPU
    counter refreshes every 20-100 ms). ``clock``/``sleep`` are for tests.
    """
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"seconds must be > 0, but got {seconds=}.")
    counted: dict[str, tuple[NvmlDevice, int]] = {}
    sampled: list[NvmlDevice] = []
    if gpus:
        try:
            devices = [d for d in visible_devices(cuda_uuids=torch_cuda_uuids()) if not d.mig_enabled()]
        except EnergyError:
            devices = []
        for d in devices:
            try:
                counted[d.uuid] = (d, d.energy_mj())
            except NvmlNotSupportedError:
                sampled.append(d)
            except EnergyError:
                continue
    zones: list[_ZoneCounter] = []
    if cpu:
        try:
            zones = [_ZoneCounter(z, Path(rapl_root)) for z in find_zones(rapl_root)]
        except EnergyError:
            zones = []
    if not (counted or sampled or zones):
        return {}

    sampler = PowerSampler(lambda: [d.power_mw() / 1000.0 for d in sampled], interval_s=sample_interval_s, clock=clock)
    t_start = clock()
    if sampled:
        sampler.start(background=False)
    while (left := seconds - (clock() - t_start)) > 0:
        sleep(min(sample_interval_s, left))
        if sampled and sampler.error is None:
            try:
                sampler.sample()
            except EnergyError as exc:
                sampler.error = exc  # why: the sampled GPUs lose their baseline below; the rest keep theirs
    elapsed = clock() - t_start

    # why each device on its own: a GPU lost or a RAPL file gone during the measurement costs that device's
    # baseline (its trials then report dynamic energy = energy), never the sweep
    watts: dict[str, float] = {}
    for uuid, (d, mj0) in counted.items():
        with _skipped_on_error(f"idle power of GPU {uuid}"):
            watts[uuid] = (d.energy_mj() - mj0) / 1000.0 / elapsed
    if sampled and sampler.error is None:  # a sampler that failed has no baseline to give
        t, _ = sampler.series()
        span = t[-1] - t[0]
        for d, e in zip(sampled, sampler.energy_j(), strict=True):
            with _skipped_on_error(f"idle power of GPU {d.uuid}"):
                watts[d.uuid] = e / span if span > 0 else d.power_mw() / 1000.0
    for name in ("package", "dram"):
        mine = [z for z in zones if z.zone.name.startswith(name)]
        if mine:
            with _skipped_on_error(f"idle power of the CPU {name}"):
                watts[f"cpu-{name}"] = math.fsum(z.update() for z in mine) / 1e6 / elapsed
    return watts


@contextlib.contextmanager
def _skipped_on_error(what: str) -> Iterator[None]:
    try:
        yield
    except EnergyError as exc:
        warn_once(f"idle:{what}", f"{what} not measured ({exc}); dynamic energy there is all energy")
