"""Which energy backends work on this machine, and why the others do not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._errors import EnergyError
from ._estimate import DEFAULT_WATTS_PER_CORE
from ._factory import GPU_ORDER, HOST_ORDER, trial_gpus
from ._nvml import NvmlDevice, driver_versions
from ._nvml_meter import _supported
from ._rapl import DEFAULT_RAPL_ROOT, find_zones


@dataclass(frozen=True)
class BackendCheck:
    """One backend's verdict: usable or not, what was found, and the fix when not."""

    backend: str  # "nvml", "rapl" or "estimate"
    available: bool
    detail: str
    fix: str | None = None


def _gpu_line(d: NvmlDevice) -> tuple[bool, str]:
    try:
        name = d.name()
        if d.mig_enabled():
            return False, f"{name} {d.uuid}: MIG enabled, whole-GPU energy only, not measurable per slice"
        counter, power = _supported(d.energy_mj), _supported(d.power_mw)
    except EnergyError as exc:
        return False, f"{d.uuid}: {exc}"
    if counter:
        return True, f"{name} {d.uuid}: energy counter ok" + (", power ok" if power else "")
    if power:
        return True, f"{name} {d.uuid}: no energy counter (pre-Volta?), power integration"
    return False, f"{name} {d.uuid}: neither energy counter nor power readings supported"


def check_nvml() -> BackendCheck:
    """NVML: library, driver, visible GPUs and what each supports."""
    try:
        devices = trial_gpus()
        versions = driver_versions()
    except EnergyError as exc:
        return BackendCheck("nvml", False, exc.reason, exc.fix)
    lines = [_gpu_line(d) for d in devices]
    detail = f"driver {versions['driver_version']}, NVML {versions['nvml_version']}; " + "; ".join(s for _, s in lines)
    ok = any(good for good, _ in lines)
    return BackendCheck("nvml", ok, detail, None if ok else "use a Volta-or-newer GPU without MIG.")


def check_rapl(root: str | Path = DEFAULT_RAPL_ROOT) -> BackendCheck:
    """RAPL: package/DRAM zones under ``root`` and whether ``energy_uj`` is readable."""
    try:
        zones = find_zones(root)
    except EnergyError as exc:
        return BackendCheck("rapl", False, exc.reason, exc.fix)
    return BackendCheck("rapl", True, "readable zones: " + ", ".join(f"{z.path.name} ({z.name})" for z in zones))


def check_estimate(watts_per_core: float = DEFAULT_WATTS_PER_CORE) -> BackendCheck:
    """The CPU-time estimate always works; it is not a measurement."""
    return BackendCheck("estimate", True, f"process CPU time x {watts_per_core:g} W per busy core (an estimate)")


def check_backends(*, rapl_root: str | Path = DEFAULT_RAPL_ROOT) -> list[BackendCheck]:
    """NVML, RAPL and estimate checks, in ``make_meter``'s order of preference (``GPU_ORDER``, ``HOST_ORDER``)."""
    return [check_nvml(), check_rapl(rapl_root), check_estimate()]


def doctor_lines(*, rapl_root: str | Path = DEFAULT_RAPL_ROOT) -> list[str]:
    """Human-readable report for ``python -m orchestrator doctor``: one line per backend, then the choice."""
    checks = check_backends(rapl_root=rapl_root)
    lines = []
    for c in checks:
        state = "ok" if c.available else "unavailable"
        lines.append(f"energy {c.backend:<8} {state}: {c.detail}" + (f" -- fix: {c.fix}" if c.fix else ""))
    by_name = {c.backend: c for c in checks}
    host = next(name for name in HOST_ORDER if by_name[name].available)
    host_says = "measured by rapl" if host == "rapl" else "estimated-cpu"
    gpu = next((name for name in GPU_ORDER if by_name[name].available), None)
    if gpu is not None:
        beside = "its host by rapl (added)" if host == "rapl" else "its host's CPU estimated beside it (not added)"
        lines.append(f"energy for device=cuda: GPU measured by {gpu}; {beside}")
    for device, skipped in (
        ("cuda", [*GPU_ORDER, *HOST_ORDER[: HOST_ORDER.index(host)]]),
        ("cpu", list(HOST_ORDER[: HOST_ORDER.index(host)])),
    ):
        if device == "cuda" and gpu is not None:
            continue
        if host == "estimate":
            why = " and ".join(skipped)
            lines.append(
                f"energy for device={device}: estimated-cpu -- energy is ESTIMATED, not measured, "
                f"because {why} {'is' if len(skipped) == 1 else 'are'} unavailable (see above)"
            )
        else:
            lines.append(f"energy for device={device}: {host_says}")
    return lines
