"""The one boundary between wattsweep and NVML (``pynvml`` from nvidia-ml-py).

Every NVML call goes through :func:`call`, which initialises NVML once per
process and turns pynvml's exceptions into ours (``_errors``). ``pynvml`` is
imported lazily: Ray re-imports modules in every worker, and a CPU-only worker
should never touch it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ._errors import (
    EnergyError,
    MigNotMeasurableError,
    NvmlError,
    NvmlNotFoundError,
    NvmlNotSupportedError,
    NvmlPermissionError,
    NvmlUnavailableError,
)

_FIX_DRIVER = "run on a machine with an NVIDIA GPU and driver (libnvidia-ml.so.1), or use backend='rapl'/'estimate'."
_FIX_MIG = "give the trial a whole GPU (MIG off), or use backend='estimate'."
_NVML_TEMPERATURE_GPU = 0  # pynvml.NVML_TEMPERATURE_GPU; a literal so nothing imports pynvml early
_NVML_DEVICE_MIG_ENABLE = 1  # pynvml.NVML_DEVICE_MIG_ENABLE

_lock = threading.Lock()
_module: ModuleType | None = None
_init_error: EnergyError | None = None


def _translate(mod: ModuleType, exc: BaseException, what: str) -> EnergyError:
    """pynvml's exception -> ours. The only place that knows pynvml's error classes."""

    def isa(name: str) -> bool:
        cls = getattr(mod, name, None)
        return isinstance(cls, type) and isinstance(exc, cls)

    msg = f"NVML {what}: {exc}."
    if isa("NVMLError_LibraryNotFound"):
        why = "no NVIDIA driver here, or libnvidia-ml.so.1 not mounted into this container"
        return NvmlUnavailableError(f"NVML {what}: {exc} ({why}).", fix=_FIX_DRIVER)
    if isa("NVMLError_DriverNotLoaded"):
        why = "the NVIDIA kernel module is not loaded: no GPU, or the driver failed"
        return NvmlUnavailableError(f"NVML {what}: {exc} ({why}).", fix=_FIX_DRIVER)
    if isa("NVMLError_NotSupported") or isa("NVMLError_FunctionNotFound") or isa("NVMLLibraryMismatchError"):
        return NvmlNotSupportedError(msg, fix="use a Volta-or-newer GPU and a recent driver.")
    if isa("NVMLError_NoPermission"):
        return NvmlPermissionError(msg, fix="run as a user allowed to query the GPU (see nvidia-smi -q).")
    if isa("NVMLError_NotFound"):
        return NvmlNotFoundError(msg)
    return NvmlError(msg)


def _initialised() -> ModuleType:
    """pynvml, initialised once per process; a failed init is remembered and re-raised."""
    global _module, _init_error
    with _lock:
        if _module is not None:
            return _module
        if _init_error is not None:
            raise _init_error.copy()
        try:
            import pynvml  # why here: lazy on purpose, Ray re-imports this module in every worker
        except ImportError as exc:
            _init_error = NvmlUnavailableError("pynvml is not installed.", fix="pip install nvidia-ml-py")
            raise _init_error.copy() from exc
        try:
            pynvml.nvmlInit()
        except (pynvml.NVMLError, pynvml.NVMLLibraryMismatchError) as exc:
            _init_error = _translate(pynvml, exc, "nvmlInit")
            raise _init_error.copy() from exc
        mod: ModuleType = pynvml
        _module = mod
        return mod


def call(fn_name: str, *args: Any) -> Any:
    """Call ``pynvml.<fn_name>(*args)`` with NVML initialised; NVML errors come out as ours."""
    mod = _initialised()
    fn = getattr(mod, fn_name, None)
    if fn is None:  # why: an older nvidia-ml-py lacks newer functions
        raise NvmlNotSupportedError(f"NVML {fn_name}: not in this pynvml.", fix="pip install -U nvidia-ml-py")
    try:
        return fn(*args)
    except (mod.NVMLError, mod.NVMLLibraryMismatchError) as exc:
        raise _translate(mod, exc, fn_name) from exc


def _reset() -> None:
    """Forget NVML's state (tests only: they swap pynvml's functions for mocks)."""
    global _module, _init_error
    with _lock:
        _module = None
        _init_error = None


def _norm_uuid(uuid: str) -> str:
    """Compare UUIDs without NVML's ``GPU-`` prefix or case (torch reports them bare)."""
    u = uuid.strip().lower()
    return u[4:] if u.startswith("gpu-") else u


@dataclass(frozen=True)
class NvmlDevice:
    """One physical GPU: its NVML handle, NVML index and UUID (``GPU-...``)."""

    handle: Any
    index: int
    uuid: str

    def energy_mj(self) -> int:
        """Total energy since driver load. Units: mJ."""
        return int(call("nvmlDeviceGetTotalEnergyConsumption", self.handle))

    def power_mw(self) -> int:
        """Power draw (a 1 s average on Ampere-and-newer except A100, instantaneous before). Units: mW."""
        return int(call("nvmlDeviceGetPowerUsage", self.handle))

    def name(self) -> str:
        return str(call("nvmlDeviceGetName", self.handle))

    def power_limit_w(self) -> float:
        """Enforced power limit. Units: W."""
        return int(call("nvmlDeviceGetEnforcedPowerLimit", self.handle)) / 1000.0

    def temperature_c(self) -> int:
        """GPU die temperature. Units: degrees C."""
        try:
            return int(call("nvmlDeviceGetTemperatureV", self.handle, _NVML_TEMPERATURE_GPU))
        except NvmlNotSupportedError:  # why: drivers before 12.5 have only the deprecated call
            return int(call("nvmlDeviceGetTemperature", self.handle, _NVML_TEMPERATURE_GPU))

    def mig_enabled(self) -> bool:
        """True when MIG mode is on (then NVML's power and energy are the whole GPU's)."""
        try:
            current, _pending = call("nvmlDeviceGetMigMode", self.handle)
        except NvmlNotSupportedError:  # why: GPUs without MIG say NotSupported
            return False
        return int(current) == _NVML_DEVICE_MIG_ENABLE

    def sm_samples(self, since_us: int) -> list[tuple[int, int, int]]:
        """Per-process SM utilisation samples newer than ``since_us`` (µs since epoch): (pid, t_us, sm %)."""
        try:
            raw = call("nvmlDeviceGetProcessUtilization", self.handle, since_us)
        except NvmlNotFoundError:  # why: NVML says NotFound when no sample is newer than since_us
            return []
        return [(int(s.pid), int(s.timeStamp), int(s.smUtil)) for s in raw]

    def compute_pids(self) -> list[int]:
        """PIDs with a CUDA context on this GPU (host PIDs: in a container they differ from os.getpid())."""
        return [int(p.pid) for p in call("nvmlDeviceGetComputeRunningProcesses", self.handle)]


def driver_versions() -> dict[str, str]:
    """``{"driver_version": ..., "nvml_version": ...}``."""
    return {
        "driver_version": str(call("nvmlSystemGetDriverVersion")),
        "nvml_version": str(call("nvmlSystemGetNVMLVersion")),
    }


def all_devices() -> list[NvmlDevice]:
    """Every GPU NVML sees, in NVML (PCI bus) order."""
    devices = []
    for i in range(int(call("nvmlDeviceGetCount"))):
        handle = call("nvmlDeviceGetHandleByIndex", i)
        devices.append(NvmlDevice(handle=handle, index=i, uuid=str(call("nvmlDeviceGetUUID", handle))))
    return devices


def _match_uuid(devices: Sequence[NvmlDevice], uuid: str) -> NvmlDevice | None:
    """The device whose UUID equals, or uniquely starts with, ``uuid`` (CUDA accepts unique prefixes)."""
    want = _norm_uuid(uuid)
    hits = [d for d in devices if _norm_uuid(d.uuid).startswith(want)]
    return hits[0] if len(hits) == 1 else None


def visible_devices(
    cuda_visible_devices: str | None = None, *, cuda_uuids: Sequence[str] | None = None
) -> list[NvmlDevice]:
    """The GPUs this process sees, in CUDA's order, matched to NVML handles by UUID.

    ``cuda_uuids`` (from torch, when CUDA is already initialised) is exact and wins.
    Otherwise ``cuda_visible_devices`` (default: the environment variable) is parsed
    like CUDA does: indices or ``GPU-`` UUIDs (prefixes allowed), comma-separated,
    stopping at the first invalid entry; unset means all GPUs. Indices are NVML's
    (PCI bus) order, which is CUDA's under ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` or
    when all GPUs are the same model. A ``MIG-`` entry raises MigNotMeasurableError.
    """
    devices = all_devices()
    if cuda_uuids is not None:
        found = [_match_uuid(devices, u) for u in cuda_uuids]
        missing = [u for u, d in zip(cuda_uuids, found, strict=True) if d is None]
        if missing:
            raise NvmlError(f"CUDA devices {missing} have no NVML handle with that UUID.")
        return [d for d in found if d is not None]
    raw = os.environ.get("CUDA_VISIBLE_DEVICES") if cuda_visible_devices is None else cuda_visible_devices
    if raw is None:
        return devices
    chosen: list[NvmlDevice] = []
    for entry in (e.strip() for e in raw.split(",")):
        if entry.upper().startswith("MIG-"):
            raise MigNotMeasurableError(
                f"CUDA_VISIBLE_DEVICES names MIG slice {entry}: NVML reports the whole GPU's energy.", fix=_FIX_MIG
            )
        dev = _match_uuid(devices, entry) if entry.upper().startswith("GPU-") else None
        if entry.isdigit() and int(entry) < len(devices):
            dev = devices[int(entry)]
        if dev is None or dev in chosen:
            break  # why: CUDA ignores the rest of the list after an invalid or repeated entry
        chosen.append(dev)
    if not chosen:
        raise NvmlUnavailableError(f"CUDA_VISIBLE_DEVICES={raw!r} leaves this process no GPU.", fix=_FIX_DRIVER)
    return chosen


def torch_cuda_uuids() -> list[str] | None:
    """UUIDs of the GPUs torch sees, in CUDA order; None unless torch has already initialised CUDA.

    Why only then: initialising CUDA here would grab GPU memory in a process that
    may never use the GPU.
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return None
    try:
        return [str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())]
    except (AttributeError, RuntimeError):  # why: old torch has no .uuid; a broken context has none to give
        return None


def cuda_synchronize() -> None:
    """Wait for queued CUDA work so the energy counter covers it; a no-op unless torch initialised CUDA."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        for i in range(torch.cuda.device_count()):  # why: a trial may hold several GPUs
            torch.cuda.synchronize(i)
