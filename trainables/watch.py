"""What wattsweep measures on a model a trainable hands over (``ctx.watch``): size, FLOPs, inference energy.

Torch is imported by the functions that need it, so that ``trainables.contract`` stays light to import.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from trainables import metrics as M

if TYPE_CHECKING:
    import torch
    from torch import nn

    from trainables.energy import BaseMeter


def idle_power_for(meter: Any, idle: dict[str, float]) -> float | None:
    """The idle baseline of what this meter measures (its GPUs, or the RAPL package + DRAM), W."""
    if not idle:
        return None
    if hasattr(meter, "devices"):  # NVML: the trial's GPUs, by UUID
        keys = [d.uuid for d in meter.devices]
    elif meter.source == "rapl":
        keys = ["cpu-package", "cpu-dram"]
    else:
        return None  # why: an estimate from CPU time has no idle part to subtract
    found = [idle[k] for k in keys if k in idle]
    return sum(found) if found else None


def inference_window_s(source: str) -> float:
    """The shortest window over which ``measure_inference`` can trust a meter of this source, s.

    An NVML counter refreshes every 20-100 ms, so GPU windows must be long; RAPL counters update about every
    millisecond but count the whole package, so a tenth of a second evens out the rest of the machine. The
    ``estimated-cpu`` meter reads this process's CPU time (a nanosecond clock): its 50 samples need no floor
    (measured on digits ResNets: the same energy per 1,000 to 1-2 % with a 0, 0.05 or 0.1 s floor, while the
    floor cost 0.08 s of every trial).
    """
    if source.startswith("nvml"):
        return 0.5
    return 0.1 if source == "rapl" else 0.0


def measure_inference(model: nn.Module, x: torch.Tensor, meter: BaseMeter, *, min_s: float = 0.5) -> dict[str, float]:
    """Energy per 1,000 (J) and latency (ms) of single-sample inference (the edge-device case), measured
    over at least ``min_s`` seconds (an NVML counter refreshes every 20-100 ms) and 50 samples."""
    import torch

    from trainables.autocast import autocast

    model.eval()
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        model(x[:1])  # warm-up
        sync()
        before, t0, n = meter.read(), time.perf_counter(), 0
        while n < 50 or time.perf_counter() - t0 < min_s:
            with autocast(x.device):
                model(x[n % len(x) : n % len(x) + 1])
            n += 1
            if n >= 20_000:
                break
        sync()
    elapsed, after = time.perf_counter() - t0, meter.read()
    return {
        M.INFER_ENERGY_J_PER_1K: (after.energy_j - before.energy_j) / n * 1000.0,
        M.INFER_LATENCY_MS: elapsed / n * 1000.0,
    }


class ModelWatch:
    """Counts a handed-over model every epoch; recounts FLOPs when its shapes change (structured pruning)."""

    def __init__(self) -> None:
        self.model: Any = None
        self.example: Any = None
        self._counted: tuple[int, dict[str, int]] | None = None
        self._dense_flops = 0
        self._dense_weights = 0
        self._shapes: tuple[tuple[int, ...], ...] = ()

    def set(self, model: nn.Module, example: torch.Tensor) -> None:
        """Watch ``model``; ``example`` is one input with batch dimension 1, on the model's device."""
        from trainables.flops import count_flops
        from trainables.pruning import prunable_weights

        if example.dim() < 1 or example.shape[0] != 1:
            raise ValueError(f"ctx.watch: example_input must have batch dimension 1, but got {tuple(example.shape)}")
        first = self.model is None
        self.model, self.example = model, example
        self._counted = count_flops(model, example)
        self._shapes = _shapes(model)
        if first:  # why: the dense figures are the model as first handed over, before any pruning
            self._dense_flops = self._counted[0]
            self._dense_weights = _safe(prunable_weights, model)

    def epoch_metrics(self) -> dict[str, Any]:
        """params, flops (dense), effective_flops and sparsity of the model as it is now; {} if nothing watched."""
        if self.model is None:
            return {}
        from trainables.flops import count_flops, effective_flops, nonzero_counts
        from trainables.pruning import sparsity

        if _shapes(self.model) != self._shapes:
            self._counted, self._shapes = count_flops(self.model, self.example), _shapes(self.model)
        counts = nonzero_counts(self.model)  # why once: params, effective FLOPs and sparsity all read it
        out: dict[str, Any] = {
            M.PARAMS: counts.params,
            M.FLOPS: self._dense_flops,
            M.EFFECTIVE_FLOPS: effective_flops(self.model, self.example, counted=self._counted, counts=counts),
        }
        if self._dense_weights:
            out[M.SPARSITY] = sparsity(self.model, self._dense_weights, counts=counts)
        return out

    def final_metrics(self, meter: BaseMeter) -> dict[str, Any]:
        """Layer FLOPs and inference energy / latency, at the trial's last epoch; {} if nothing watched."""
        if self.model is None or self._counted is None:
            return {}
        infer = measure_inference(self.model, self.example, meter, min_s=inference_window_s(meter.source))
        return {M.LAYER_FLOPS: self._counted[1], **infer}


def _shapes(model: nn.Module) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(p.shape) for p in model.parameters())


def _safe(fn: Any, model: Any) -> int:
    try:
        return int(fn(model))
    except ValueError:  # why: a model without conv / linear layers has no prunable weights to count
        return 0
