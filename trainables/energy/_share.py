"""Splitting a shared GPU's energy between processes by their SM utilisation."""

from __future__ import annotations

import threading

from ._errors import NvmlError
from ._nvml import NvmlDevice


class UtilisationShare:
    """This process's share of one GPU, from per-process SM utilisation samples over the window.

    Share = sum of this PID's SM % / sum of all PIDs' SM % over the samples seen.
    Falls back to ``gpu_fraction`` (method ``gpu-fraction``) while this PID has no
    SM use on record: no samples yet, an idle window, or a container whose PIDs
    NVML cannot see (NVML reports host PIDs).
    """

    def __init__(self, device: NvmlDevice, *, gpu_fraction: float, pid: int, since_us: int) -> None:
        self.device = device
        self.gpu_fraction = gpu_fraction
        self.pid = pid
        self._last_us = since_us
        self._own = 0
        self._total = 0
        self._lock = threading.Lock()
        self.error: str | None = None  # why: set when the GPU cannot report per-process use; then gpu_fraction

    def poll(self) -> None:
        """Fetch samples newer than the last one seen and add them up."""
        with self._lock:
            since = self._last_us
            if self.error is not None:
                return
        try:
            samples = self.device.sm_samples(since)
        except NvmlError as exc:  # why: losing the split must not lose the energy
            with self._lock:
                self.error = str(exc)
            return
        with self._lock:
            cut = self._last_us  # why: a concurrent poll may already have counted these samples
            for pid, t_us, sm in samples:
                if t_us <= cut:
                    continue
                self._total += sm
                self._own += sm if pid == self.pid else 0
                self._last_us = max(self._last_us, t_us)

    def share(self) -> tuple[float, str]:
        """``(fraction of the device's energy that is ours, method)``."""
        with self._lock:
            if self._own > 0 and self._total > 0:
                return self._own / self._total, "sm-utilisation"
        return self.gpu_fraction, "gpu-fraction"
