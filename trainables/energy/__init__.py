"""Energy measurement for one trial.

Backends (one module each, behind ``BaseMeter``):

- ``nvml-counter`` / ``nvml-power`` (``_nvml_meter``): the GPU's total-energy counter,
  or integrated power where the counter is unsupported; GPUs from ``CUDA_VISIBLE_DEVICES``
  matched by UUID; a fractional GPU split by SM utilisation (``_share``). All NVML calls
  go through ``_nvml``, the one place pynvml's errors become ours (``_errors``).
- ``rapl`` (``_rapl``): CPU package + DRAM energy from Linux powercap sysfs.
- ``estimated-cpu`` (``_estimate``): process CPU time x watts per core, when nothing
  can be measured; ``estimated=True``.
- ``CompositeMeter`` (``_composite``): a GPU trial's GPUs and its host CPU in one window; ``energy_j``
  is the sum of the measured parts, every component (gpu, cpu, dram) kept with its source.
- A shared GPU is split between its trials through a per-node ledger (``_ledger``), each joule once;
  a shared CPU package by CPU time (``_cpu_share``).

Usage (the trainable)::

    meter = make_meter(device="cpu" | "cuda", watts_per_core=None)
    meter.start()
    reading = meter.read()      # cumulative since start(), once per epoch
    reading.energy_j, reading.dynamic_energy_j, reading.time_s, reading.source, reading.estimated
    final = meter.stop()
    meter.provenance(), meter.trace()

Nothing here imports pynvml or torch at import time (Ray re-imports modules in
every worker); NVML is initialised on first use, once per process.
"""

from __future__ import annotations

from ._carbon import DEFAULT_GRID_G_PER_KWH, DEFAULT_PUE, co2e_g
from ._composite import CompositeMeter
from ._doctor import BackendCheck, check_backends, doctor_lines
from ._errors import (
    BackendUnavailableError,
    EnergyError,
    MigNotMeasurableError,
    NvmlError,
    NvmlNotSupportedError,
    NvmlPermissionError,
    NvmlUnavailableError,
    RaplPermissionError,
    RaplUnavailableError,
)
from ._estimate import DEFAULT_WATTS_PER_CORE, CpuTimeEstimateMeter
from ._factory import BACKENDS, DEFAULT_SAMPLE_INTERVAL_S, make_meter, measure_idle_power
from ._meter import MAX_TRACE_POINTS, BaseMeter, EnergyReading
from ._nvml_meter import NvmlMeter
from ._rapl import DEFAULT_RAPL_ROOT, RaplMeter
from ._sampler import trapezoid_j

__all__ = [
    "BACKENDS",
    "DEFAULT_GRID_G_PER_KWH",
    "DEFAULT_PUE",
    "DEFAULT_RAPL_ROOT",
    "DEFAULT_SAMPLE_INTERVAL_S",
    "DEFAULT_WATTS_PER_CORE",
    "MAX_TRACE_POINTS",
    "BackendCheck",
    "BackendUnavailableError",
    "BaseMeter",
    "CompositeMeter",
    "CpuTimeEstimateMeter",
    "EnergyError",
    "EnergyReading",
    "MigNotMeasurableError",
    "NvmlError",
    "NvmlMeter",
    "NvmlNotSupportedError",
    "NvmlPermissionError",
    "NvmlUnavailableError",
    "RaplMeter",
    "RaplPermissionError",
    "RaplUnavailableError",
    "check_backends",
    "co2e_g",
    "doctor_lines",
    "make_meter",
    "measure_idle_power",
    "trapezoid_j",
]
