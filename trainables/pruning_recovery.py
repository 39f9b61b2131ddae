"""What a structured pruning step must repair so training goes on where it was.

- ``recalibrate_batchnorm``: after a step the layers feeding each batch norm compute
  something else, so its running statistics (what evaluation uses) are stale until
  training has averaged them out. Re-estimating them on training data is the standard
  repair (batch-norm adaptation; Li et al. 2016, "AdaBN"). On digits it lifts validation
  accuracy right after the benchmark's first two steps from 19 / 39 % to 50 / 86 %
  (10-seed means); the rest of the drop is the pruning itself. Training-mode batch norm
  uses batch statistics, so this changes what evaluation sees, not what training does.
- ``OptimizerCarry``: a structured step replaces every pruned parameter by a smaller
  one. Building a fresh optimizer then forgets the moment estimates of all surviving
  weights, and Adam's first steps after a reset move every weight by about the full
  learning rate (bias-corrected m / sqrt(v) is +-1), a jolt on top of the pruning.
  The carry slices each surviving weight's optimizer state along the channels that
  torch-pruning removes and hands it to the new parameters, the way unstructured
  pruning (which keeps its Parameter objects) keeps its optimizer.
"""

from __future__ import annotations

from typing import Any

import torch
import torch_pruning as tp
from torch import nn

__all__ = ["RECALIBRATION_SAMPLES", "OptimizerCarry", "recalibrate_batchnorm"]

# why: on digits, validation accuracy right after a step was the same (+-0.01) recalibrating on 256, 512 or
# all 1,257 training samples (benchmarks/RESULTS.md, Pruning); 512 x 8x8 positions is ~33k values per channel
RECALIBRATION_SAMPLES = 512

_OUT_FNS = (tp.prune_conv_out_channels, tp.prune_linear_out_channels)
_IN_FNS = (tp.prune_conv_in_channels, tp.prune_linear_in_channels)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, *, batch_size: int) -> int:
    """Re-estimate every batch norm's running mean and variance on ``x`` (training samples).

    Resets the running statistics and runs train-mode forward passes, without
    gradients, over the first ``RECALIBRATION_SAMPLES`` samples of ``x`` in batches
    of ``batch_size``, with ``momentum=None`` so the statistics are the plain
    average over those batches (as training computes them, one batch at a time).
    Weights, gradients and optimizer state are untouched; each batch norm's
    momentum and the model's train/eval mode are restored. Returns the number of
    samples used (0 when no batch norm tracks running statistics).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    momenta, was_training = [m.momentum for m in norms], model.training
    n = min(len(x), RECALIBRATION_SAMPLES)
    used = 0
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # why: cumulative average over the batches, not an exponential one
        model.train()
        for i in range(0, n, batch_size):
            batch = x[i : min(n, i + batch_size)]
            if len(batch) < 2:
                break  # why: batch norm cannot take the variance of one sample
            model(batch)
            used += len(batch)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return used


def _pruned_dims(module: nn.Module, handler: Any) -> dict[str, int]:
    """Which of ``module``'s parameters a torch-pruning handler shrinks, and along which dim."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return {"weight": 0, "bias": 0}  # why: a norm's in- and out-channels are the same channels
    transposed = getattr(module, "transposed", False) or getattr(module, "groups", 1) != 1
    if not isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) or transposed:
        return {}  # why: layouts we do not map start with fresh state (see OptimizerCarry.apply)
    if handler in _OUT_FNS:
        return {"weight": 0, "bias": 0}
    if handler in _IN_FNS:
        return {"weight": 1}
    return {}


class OptimizerCarry:
    """Optimizer state of the surviving weights across one structured step.

    ``take(model, optimizer)`` before the step copies each parameter's state,
    keyed by (module, name) since torch-pruning replaces the Parameter objects
    but keeps the modules; ``slice(group)`` before each group is pruned removes the
    group's channels from those copies; ``apply(optimizer)`` after the step
    points the optimizer's parameter groups at the new parameters (same order)
    and gives each its sliced state. Hyperparameters (lr, betas, ...) are kept.
    """

    def __init__(self) -> None:
        self._names: list[list[tuple[nn.Module, str]]] = []  # per param group, the (module, name) of each param
        self._state: dict[tuple[int, str], dict[str, Any]] = {}

    def take(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        where = {id(p): (m, n) for m in model.modules() for n, p in m.named_parameters(recurse=False)}
        self._names = [[where[id(p)] for p in group["params"]] for group in optimizer.param_groups]
        self._state = {
            (id(m), n): dict(optimizer.state[p])
            for group in optimizer.param_groups
            for p in group["params"]
            for m, n in [where[id(p)]]
            if optimizer.state.get(p)
        }

    def slice(self, group: Any) -> None:
        for dep, idxs in group:
            module = dep.target.module
            for name, dim in _pruned_dims(module, dep.handler).items():
                state = self._state.get((id(module), name))
                if state is None:
                    continue
                size = getattr(module, name).shape[dim]
                keep = torch.ones(size, dtype=torch.bool)
                keep[list(idxs)] = False
                kept = keep.nonzero().squeeze(1)
                for key, value in state.items():
                    if torch.is_tensor(value) and value.dim() > dim and value.shape[dim] == size:
                        state[key] = value.index_select(dim, kept.to(value.device))

    def apply(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.state.clear()
        for group, names in zip(optimizer.param_groups, self._names, strict=True):
            group["params"] = [getattr(m, n) for m, n in names]
            for (m, n), p in zip(names, group["params"], strict=True):
                state = self._state.get((id(m), n))
                # why: a layout _pruned_dims does not map leaves a shape that does not fit: that weight starts fresh
                if state and all(not torch.is_tensor(v) or v.dim() == 0 or v.shape == p.shape for v in state.values()):
                    optimizer.state[p] = state
        self._names, self._state = [], {}
