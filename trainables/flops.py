"""FLOPs of one forward pass, dense and after pruning.

Counted with ``torch.utils.flop_counter.FlopCounterMode``, which counts the
matmul / convolution ops (2 FLOPs per multiply-accumulate) and ignores cheap
element-wise ops (batch norm, ReLU, additions, pooling). Units: FLOPs per
forward pass of ONE sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "NonzeroCounts",
    "count_flops",
    "count_nonzero",
    "effective_flops",
    "effective_weight",
    "nonzero_counts",
]

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def count_flops(model: nn.Module, example: torch.Tensor) -> tuple[int, dict[str, int]]:
    """FLOPs of one forward pass of one sample: the total, and per leaf module (``named_modules`` names).

    ``example`` must have batch dimension 1. The model runs in eval mode without
    gradients (its mode is restored). The total equals the sum of the per-module
    figures whenever every counted op runs inside a leaf module, which holds for
    conv / linear models such as ours; an op called directly in a parent's
    ``forward`` would be in the total only.
    """
    if example.dim() < 1 or example.shape[0] != 1:
        raise ValueError(f"example must have batch dimension 1, but got {tuple(example.shape)=}.")
    was_training = model.training
    model.eval()  # why: batch norm in train mode would update running stats during the count
    try:
        # why: display=False keeps the counter from printing a table per call
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example.to(_device_of(model)))
    finally:
        model.train(was_training)
    per_module = counter.get_flop_counts()
    leaves = {name for name, m in model.named_modules() if next(m.children(), None) is None}
    per_leaf: dict[str, int] = {}
    for key, by_op in per_module.items():
        # why: the counter names modules "<RootClass>.<path>"; strip the root to get named_modules() names
        _, _, name = key.partition(".")
        if name in leaves:
            per_leaf[name] = int(sum(by_op.values()))
    return int(counter.get_total_flops()), per_leaf


def effective_weight(module: nn.Module) -> torch.Tensor:
    """A layer's weight as its forward pass sees it (``weight_orig * weight_mask`` while a pruning mask is attached)."""
    if hasattr(module, "weight_mask"):
        return (module.get_parameter("weight_orig") * module.get_buffer("weight_mask")).detach()
    return module.get_parameter("weight").detach()


def count_nonzero(tensors: list[torch.Tensor]) -> list[int]:
    """Non-zero entries of each tensor, read back with ONE device synchronisation.

    why: ``.item()`` per tensor waits for the GPU once per tensor (hundreds of times per epoch for a ResNet-50);
    the counts are stacked on the device and copied back together.
    """
    if not tensors:
        return []
    return [int(n) for n in torch.stack([torch.count_nonzero(t) for t in tensors]).tolist()]


@dataclass(frozen=True)
class NonzeroCounts:
    """A model's non-zero entries, pruning masks applied, from one pass with one device synchronisation: what
    ``nonzero_params``, ``sparsity`` and ``effective_flops`` need (``ctx.watch`` counts once per epoch for all three).
    """

    params: int  # non-zero entries over all parameters (biases and norms included)
    weights: dict[int, tuple[int, int]]  # id(conv / linear module) -> (non-zero, total) entries of its weight

    def weight(self, module: nn.Module) -> tuple[int, int]:
        """(non-zero, total) entries of a conv / linear layer's effective weight."""
        found = self.weights.get(id(module))
        if found is None:  # why: a weight registered some other way (a parametrization) is counted on its own
            w = effective_weight(module)
            return count_nonzero([w])[0], w.numel()
        return found


def nonzero_counts(model: nn.Module) -> NonzeroCounts:
    """Count ``model``'s non-zero parameter entries once (see ``NonzeroCounts``)."""
    values: list[torch.Tensor] = []
    owners: list[int | None] = []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            mask = getattr(module, name.removesuffix("_orig") + "_mask", None) if name.endswith("_orig") else None
            values.append(param.detach() * mask if mask is not None else param.detach())
            is_weight = isinstance(module, _LAYERS) and name in ("weight", "weight_orig")
            owners.append(id(module) if is_weight else None)
    counts = count_nonzero(values)
    weights = {o: (n, v.numel()) for o, n, v in zip(owners, counts, values, strict=True) if o is not None}
    return NonzeroCounts(sum(counts), weights)


def effective_flops(
    model: nn.Module,
    example: torch.Tensor,
    *,
    counted: tuple[int, dict[str, int]] | None = None,
    counts: NonzeroCounts | None = None,
) -> int:
    """FLOPs one forward pass of one sample needs after pruning.

    Each conv / linear layer's FLOPs are scaled by the density of its weight, as
    a sparse kernel skips the multiply-accumulates of zero weights. A structurally
    pruned model has dense, smaller layers and is counted as it is. FLOPs outside
    conv / linear layers are kept unscaled. ``counted``: this model's
    ``count_flops`` result, when the caller has it (the count depends only on the
    layers' shapes, so it stays valid until a structural pruning step). ``counts``: this model's
    ``nonzero_counts`` now, when the caller has it.
    """
    total, per_leaf = counted if counted is not None else count_flops(model, example)
    counts = counts if counts is not None else nonzero_counts(model)
    modules = dict(model.named_modules())
    saved = 0.0
    for name, flops in per_leaf.items():
        if isinstance(modules[name], _LAYERS):
            nonzero, size = counts.weight(modules[name])
            saved += flops * (1.0 - nonzero / max(size, 1))
    return round(total - saved)
