"""Fixtures for the energy tests: a fake NVML made of autospec'd mocks of the real pynvml functions,
and a fake powercap sysfs tree. No GPU and no RAPL needed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pynvml
import pytest

from trainables.energy import _errors, _nvml, _nvml_meter


class FakeClock:
    """A clock the test moves by hand. Units: seconds."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


@dataclass
class FakeGpu:
    """One fake GPU; the object itself is the NVML handle."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    energy_mj: int = 1_000_000
    counter: Callable[[], int] | None = None  # when set, replaces energy_mj
    counter_supported: bool = True
    power_mw: int = 100_000
    power: Callable[[], int] | None = None  # when set, replaces power_mw
    power_supported: bool = True
    mig: bool = False
    temperature_c: int = 41
    power_limit_mw: int = 700_000
    util: list[tuple[int, int, int]] = field(default_factory=list)  # (pid, timeStamp µs, smUtil %)
    lost: bool = False  # every query raises NVMLError_GpuIsLost


def _nvml_error(code: int) -> Exception:
    # why: NVMLError(code) returns the real NVMLError_* subclass for that code; pynvml is untyped
    return pynvml.NVMLError(code)  # type: ignore[no-any-return,unused-ignore]


class FakeNvml:
    """Installs autospec'd mocks of the real pynvml functions, backed by FakeGpu objects."""

    FUNCTIONS = (
        "nvmlInit",
        "nvmlSystemGetDriverVersion",
        "nvmlSystemGetNVMLVersion",
        "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetName",
        "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetPowerUsage",
        "nvmlDeviceGetEnforcedPowerLimit",
        "nvmlDeviceGetTemperatureV",
        "nvmlDeviceGetMigMode",
        "nvmlDeviceGetProcessUtilization",
        "nvmlDeviceGetComputeRunningProcesses",
    )

    def __init__(self, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus
        self.init_error: int | None = None  # an NVML_ERROR_* code nvmlInit raises
        self.mocks: dict[str, Any] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in self.FUNCTIONS:
            fake = mock.create_autospec(getattr(pynvml, name), side_effect=getattr(self, "_" + name))
            monkeypatch.setattr(pynvml, name, fake)
            self.mocks[name] = fake

    @staticmethod
    def _gpu(handle: object) -> FakeGpu:
        assert isinstance(handle, FakeGpu), f"not a handle from nvmlDeviceGetHandleByIndex: {handle!r}"
        if handle.lost:
            raise _nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)
        return handle

    def _nvmlInit(self) -> None:
        if self.init_error is not None:
            raise _nvml_error(self.init_error)

    def _nvmlSystemGetDriverVersion(self) -> str:
        return "580.65.06"

    def _nvmlSystemGetNVMLVersion(self) -> str:
        return "13.580.65.06"

    def _nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def _nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def _nvmlDeviceGetUUID(self, handle: object) -> str:
        return self._gpu(handle).uuid

    def _nvmlDeviceGetName(self, handle: object) -> str:
        return self._gpu(handle).name

    def _nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        g = self._gpu(handle)
        if not g.counter_supported:
            raise _nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return g.counter() if g.counter is not None else g.energy_mj

    def _nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        g = self._gpu(handle)
        if not g.power_supported:
            raise _nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return g.power() if g.power is not None else g.power_mw

    def _nvmlDeviceGetEnforcedPowerLimit(self, handle: object) -> int:
        return self._gpu(handle).power_limit_mw

    def _nvmlDeviceGetTemperatureV(self, handle: object, sensor: int, version: int = 0) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._gpu(handle).temperature_c

    def _nvmlDeviceGetMigMode(self, device: object) -> list[int]:
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if self._gpu(device).mig else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def _nvmlDeviceGetProcessUtilization(self, handle: object, timeStamp: int) -> list[SimpleNamespace]:
        newer = [s for s in self._gpu(handle).util if s[1] > timeStamp]
        if not newer:
            raise _nvml_error(pynvml.NVML_ERROR_NOT_FOUND)
        return [SimpleNamespace(pid=p, timeStamp=t, smUtil=sm, memUtil=0, encUtil=0, decUtil=0) for p, t, sm in newer]

    def _nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=p, usedGpuMemory=1 << 30) for p in sorted({s[0] for s in self._gpu(handle).util})]


@pytest.fixture(autouse=True)
def fresh_energy_state(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """NVML init state, warn-once flags and the counter-period cache are per process: reset them per test.
    Each test gets its own shared-GPU ledger directory (the real one is per node, under the temp dir)."""
    monkeypatch.setenv("WATTSWEEP_LEDGER_DIR", str(tmp_path_factory.mktemp("ledger")))
    _nvml._reset()
    _errors._reset_warnings()
    _nvml_meter._period_cache.clear()
    yield
    _nvml._reset()
    _errors._reset_warnings()
    _nvml_meter._period_cache.clear()


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeNvml]:
    """``fake_nvml(FakeGpu(...), ...)`` installs a fake NVML with those GPUs (CUDA_VISIBLE_DEVICES unset)."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def make(*gpus: FakeGpu) -> FakeNvml:
        fake = FakeNvml(list(gpus))
        fake.install(monkeypatch)
        return fake

    return make


MAX_UJ = 262_143_328_850  # a real package zone's max_energy_range_uj


def write_atomic(path: Path, text: str) -> None:
    """Replace a file in one step (why: the meter's poll thread may read it concurrently)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class FakeRapl:
    """A powercap tree under a temp dir: ``add(zone, name, energy_uj)``, ``set(zone, energy_uj)``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, zone: str, name: str, energy_uj: int, max_uj: int = MAX_UJ) -> None:
        d = self.root / zone
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
        write_atomic(d / "energy_uj", f"{energy_uj}\n")

    def set(self, zone: str, energy_uj: int) -> None:
        write_atomic(self.root / zone / "energy_uj", f"{energy_uj}\n")


@pytest.fixture
def fake_rapl(tmp_path: Path) -> FakeRapl:
    root = tmp_path / "powercap"
    root.mkdir()
    return FakeRapl(root)


@pytest.fixture
def make_gpu() -> Callable[..., FakeGpu]:
    """``make_gpu("GPU-aaa", power_mw=...)``: a FakeGpu (a fixture, so test modules need not import conftest)."""
    return FakeGpu


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
