"""wattsweep's own energy exceptions, and a warn-once helper.

Foreign errors (pynvml's ``NVMLError_*``, ``PermissionError`` from sysfs) are
turned into these at the one adapter that talks to the hardware; the rest of
the package only ever sees these classes.
"""

from __future__ import annotations

import threading
import warnings


class EnergyError(RuntimeError):
    """Base class: something about energy measurement failed.

    ``reason`` says what, ``fix`` (when known) says what the user can do.
    """

    def __init__(self, reason: str, *, fix: str | None = None) -> None:
        self.reason = reason
        self.fix = fix
        super().__init__(f"{reason} Fix: {fix}" if fix else reason)

    def copy(self) -> EnergyError:
        """A fresh instance of the same class (why: re-raising one cached instance grows its traceback)."""
        return type(self)(self.reason, fix=self.fix)


class BackendUnavailableError(EnergyError):
    """A backend cannot measure on this machine (no library, no device, no files)."""


class NvmlError(EnergyError):
    """An NVML call failed for a reason not covered by a subclass."""


class NvmlUnavailableError(NvmlError, BackendUnavailableError):
    """No usable NVML: pynvml not installed, no driver, no library, or no visible GPU."""


class NvmlNotSupportedError(NvmlError, BackendUnavailableError):
    """This GPU or driver does not support the requested NVML query."""


class NvmlNotFoundError(NvmlError):
    """NVML found nothing to return (e.g. no utilisation samples newer than a timestamp)."""


class NvmlPermissionError(NvmlError, BackendUnavailableError):
    """NVML refused the query for lack of permission."""


class MigNotMeasurableError(NvmlError, BackendUnavailableError):
    """The trial runs on a MIG slice: NVML reports the whole GPU's power, not the slice's."""


class RaplUnavailableError(BackendUnavailableError):
    """No RAPL zones under the powercap root (not Linux, a VM, or an unsupported CPU)."""


class RaplPermissionError(RaplUnavailableError):
    """RAPL zones exist but ``energy_uj`` is not readable by this user."""


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str) -> bool:
    """Emit ``message`` as a one-line RuntimeWarning the first time ``key`` is seen in this process.

    Returns True when it warned. Why not rely on the ``warnings`` registry: Ray and
    pytest reset filters, and a sweep of 100 trials must not print 100 warnings.
    """
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return True


def _reset_warnings() -> None:
    """Forget which warnings were shown (tests only)."""
    with _warned_lock:
        _warned.clear()
