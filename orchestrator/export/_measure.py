"""Measuring an artifact as it will run: accuracy on a test split, and latency and energy of 1,000 single-sample
inferences, on the machine running the export.

The energy comes from wattsweep's own meter (``trainables.energy.make_meter``: RAPL where readable, else the
labelled CPU-time estimate; a GPU plays no part, ONNX Runtime runs on the CPU here), so every figure carries its
source as the sweep's do.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from trainables.energy import BaseMeter

N_INFERENCES = 1000  # single-sample inferences per measured round ("per 1,000")
N_WARMUP = 20
Predict = Callable[["np.ndarray"], "np.ndarray"]  # a batch of inputs -> logits


@dataclass(frozen=True)
class Timing:
    """Latency (ms, mean of one single-sample inference) and energy (J) per 1,000 such inferences: the median
    over ``rounds`` rounds of 1,000, with the meter's ``energy_source`` and whether it is an estimate."""

    latency_ms: float
    energy_j_per_1k: float
    energy_source: str
    energy_estimated: bool
    rounds: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def accuracy(predict: Predict, x: np.ndarray, y: np.ndarray, *, batch: int) -> float:
    """Share of ``x`` whose arg-max logit is its label ``y``, predicted ``batch`` samples at a time."""
    import numpy as np

    hits = 0
    for i in range(0, len(x), batch):
        hits += int((np.asarray(predict(x[i : i + batch])).argmax(axis=1) == y[i : i + batch]).sum())
    return hits / len(x)


@contextlib.contextmanager
def open_meter() -> Iterator[BaseMeter]:
    """The host's energy meter (RAPL where readable, else the CPU-time estimate), started and stopped; as in a
    trial, a measuring meter that fails hands over to the next one (``next_meter``), and the source says so."""
    from trainables.energy import make_meter
    from trainables.energy._factory import next_meter
    from trainables.energy._fallback import FallbackMeter

    meter = make_meter("cpu")
    if not meter.estimated:  # why: the estimate cannot fail; RAPL can (a counter that stops reading)
        meter = FallbackMeter(meter, next_meter)
    meter.start()
    try:
        yield meter
    finally:
        meter.stop()


def _one_round(predict: Predict, samples: np.ndarray, meter: BaseMeter) -> tuple[float, float]:
    """(seconds, joules) of N_INFERENCES single-sample inferences, cycling through ``samples``."""
    ones = [samples[i : i + 1] for i in range(len(samples))]
    for i in range(N_WARMUP):
        predict(ones[i % len(ones)])
    before, t0 = meter.read(), time.perf_counter()
    for i in range(N_INFERENCES):
        predict(ones[i % len(ones)])
    elapsed, after = time.perf_counter() - t0, meter.read()
    return elapsed, after.energy_j - before.energy_j


def side_by_side(
    predictors: Mapping[str, Predict], samples: np.ndarray, meter: BaseMeter, *, rounds: int = 3
) -> dict[str, Timing]:
    """Time every predictor in turn, ``rounds`` times over (fp32, int8, fp32, int8, ...), so that a machine
    getting busier or hotter during the export weighs on all of them alike; the median round of each."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in predictors}
    for _ in range(rounds):
        for name, predict in predictors.items():
            runs[name].append(_one_round(predict, samples, meter))
    last = meter.read()  # why the last reading's: after a hand-over mid-export, the figures mix sources
    source, estimated = last.source, last.estimated
    return {
        name: Timing(
            latency_ms=statistics.median(s for s, _ in r) / N_INFERENCES * 1000.0,
            energy_j_per_1k=statistics.median(j for _, j in r) * 1000.0 / N_INFERENCES,
            energy_source=source,
            energy_estimated=estimated,
            rounds=rounds,
        )
        for name, r in runs.items()
    }


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run PyTorch on ``n`` intra-op threads inside the block (as ONNX Runtime's sessions here), then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
