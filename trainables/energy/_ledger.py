"""Splitting one GPU's energy between the trials that share it, each joule billed once.

Trials with a fractional GPU (``resources: {gpu: 0.5}``) run in different processes on one device, whose
counter counts them all. Each such meter joins a ledger kept in a small file per device on its node; whoever
reads settles the energy the device used since the last settlement, splitting it between the trials in the
ledger at that moment: by their processes' SM utilisation over the interval where NVML reports it per process
(rule ``sm-utilisation``), else equally (rule ``time``: every trial present is billed the same share of the
interval). Settling happens under a file lock at every read and about twice a second, so the intervals are
short. By construction the trials' totals add up to the device's energy over the time any of them was there
(less what other processes' SM use took, under the utilisation rule).

A participant whose process died is dropped at the next settlement (it had settled until its last read).
The ledger directory is per node (``$WATTSWEEP_LEDGER_DIR``, default ``<tmp>/wattsweep-gpu-ledger``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._errors import NvmlError, NvmlNotSupportedError
from ._nvml import NvmlDevice

LEDGER_DIR_ENV = "WATTSWEEP_LEDGER_DIR"
RULE_UTILISATION = "sm-utilisation"
RULE_TIME = "time"


def ledger_dir() -> Path:
    """Where this node keeps its GPU ledgers."""
    return Path(os.environ.get(LEDGER_DIR_ENV) or Path(tempfile.gettempdir()) / "wattsweep-gpu-ledger")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # why: it exists, it is only someone else's
    return True


class DeviceLedger:
    """One trial's membership of one GPU's ledger: ``join()``, ``settle()`` (this trial's joules so far), ``leave()``.

    ``pid``: the trial's process, for liveness and for matching NVML's per-process utilisation samples.
    ``clock``: wall clock, s (NVML stamps utilisation samples in µs since the epoch).
    """

    def __init__(
        self,
        device: NvmlDevice,
        *,
        pid: int | None = None,
        directory: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device = device
        self.pid = os.getpid() if pid is None else pid
        self.key = f"{self.pid}-{uuid.uuid4().hex[:12]}"
        self._clock = clock
        base = ledger_dir() if directory is None else Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", device.uuid)
        self.path = base / f"{name}.json"
        self._lock_path = base / f"{name}.lock"
        self.counter_ok = True
        try:
            device.energy_mj()
        except NvmlNotSupportedError:
            self.counter_ok = False  # why: then the interval's energy is its power x its length
        self.joined = False
        self.device_j = 0.0  # the device's energy over this trial's window (for the share it got)
        self.rules: dict[str, int] = {}
        self.own_j = 0.0

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    state = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    state = {}
                state.setdefault("participants", {})
                self._settle(state)
                yield state
                tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(state))
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _reading_j(self, state: dict[str, Any], now: float) -> float:
        """The device's energy counter in J (or, without a counter, the running integral of power x time)."""
        if self.counter_ok:
            return self.device.energy_mj() / 1000.0
        last_t, last_j = state.get("t"), state.get("j")
        if last_t is None or last_j is None:
            return 0.0
        return float(last_j) + self.device.power_mw() / 1000.0 * max(0.0, now - float(last_t))

    def _weights(self, parts: dict[str, Any], since_us: int | None) -> tuple[dict[str, float], str]:
        """Each participant's fraction of the interval's energy, and the rule that decided it.

        ``sm-utilisation``: its process's SM samples over all processes' (a process outside the sweep keeps its
        part unbilled); used when at least one participant's process appears in the samples. ``time``: equal
        parts (no per-process samples: an idle interval, a GPU without them, or a container whose PIDs NVML
        cannot see, as NVML reports host PIDs).
        """
        if since_us is not None:
            try:
                samples = self.device.sm_samples(since_us)
            except NvmlError:
                samples = []
            by_pid: dict[int, float] = {}
            for pid, t_us, sm in samples:
                if t_us > since_us:
                    by_pid[pid] = by_pid.get(pid, 0.0) + sm
            total = sum(by_pid.values())
            w = {k: by_pid.get(int(p["pid"]), 0.0) for k, p in parts.items()}
            if total > 0 and any(w.values()):
                return {k: v / total for k, v in w.items()}, RULE_UTILISATION
        return {k: 1.0 / len(parts) for k in parts}, RULE_TIME

    def _settle(self, state: dict[str, Any]) -> None:
        now = self._clock()
        parts: dict[str, Any] = state["participants"]
        for k in [k for k, p in parts.items() if k != self.key and not _alive(int(p["pid"]))]:
            del parts[k]
        reading = self._reading_j(state, now)
        last = state.get("j")
        if parts and last is not None:
            delta = max(0.0, reading - float(last))
            weights, rule = self._weights(parts, state.get("us"))
            for k, p in parts.items():
                p["own_j"] = float(p.get("own_j", 0.0)) + delta * weights[k]
                p["device_j"] = float(p.get("device_j", 0.0)) + delta
                rules = p.setdefault("rules", {})
                rules[rule] = int(rules.get(rule, 0)) + 1
        state["j"], state["t"], state["us"] = reading, now, int(now * 1e6)

    def _take(self, state: dict[str, Any]) -> None:
        me = state["participants"].get(self.key, {})
        self.own_j = float(me.get("own_j", 0.0))
        self.device_j = float(me.get("device_j", 0.0))
        self.rules = dict(me.get("rules", {}))

    def join(self) -> None:
        with self._locked() as state:
            state["participants"][self.key] = {"pid": self.pid, "own_j": 0.0, "device_j": 0.0, "rules": {}}
        self.joined = True

    def settle(self) -> float:
        """Settle the device's energy so far; this trial's joules since ``join()``."""
        if not self.joined:
            return self.own_j
        with self._locked() as state:
            self._take(state)
        return self.own_j

    def leave(self) -> float:
        """Settle a last time and leave the ledger; this trial's joules."""
        if not self.joined:
            return self.own_j
        with self._locked() as state:
            self._take(state)
            state["participants"].pop(self.key, None)
        self.joined = False
        return self.own_j

    @property
    def share(self) -> float:
        """This trial's joules over the device's in its window (the fraction it was billed)."""
        return self.own_j / self.device_j if self.device_j > 0 else 0.0

    @property
    def rule(self) -> str:
        """``sm-utilisation``, ``time``, or both joined by ``+`` (the intervals were split either way)."""
        return "+".join(r for r in (RULE_UTILISATION, RULE_TIME) if self.rules.get(r)) or RULE_TIME
