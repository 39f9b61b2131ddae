"""A trial's compute, predicted from its config before it runs: no torch, so the sweep's driver can use it.

``forward_flops`` does, in closed form, the arithmetic ``trainables.flops.count_flops`` measures on a built
model (2 FLOPs per multiply-accumulate of each conv / linear layer; batch norm, ReLU, additions and pooling
not counted), for the architectures of ``trainables.models``. A test checks the two agree on every model
family, so a change to the models that is not made here too fails it.

Used to rank candidate configurations by cost (``orchestrator.search``'s cheap start), not to report a
trial's FLOPs: those are counted on the real model during the trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["forward_flops", "training_cost"]


def _conv(c_in: int, c_out: int, k: int, h: int, w: int) -> int:
    return 2 * h * w * c_out * c_in * k * k


def _resnet_flops(depth: int, width: int, shortcut: bool, shape: Sequence[int], num_classes: int) -> int:
    c, h, w = shape
    if (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(f"ResNet depth must be 6n+2 (8, 14, 20, ...), but got {depth=}.")
    n = (depth - 2) // 6
    total = _conv(c, width, 3, h, w)  # stem (stride 1, padding 1)
    c_in = width
    for stage in range(3):
        c_out = width * 2**stage
        for i in range(n):
            stride = 2 if (stage > 0 and i == 0) else 1
            h, w = math.ceil(h / stride), math.ceil(w / stride)  # 3x3 conv, padding 1
            total += _conv(c_in, c_out, 3, h, w) + _conv(c_out, c_out, 3, h, w)
            if shortcut and (stride != 1 or c_in != c_out):
                total += _conv(c_in, c_out, 1, h, w)  # 1x1 projection
            c_in = c_out
    return total + 2 * c_in * num_classes


def _ffnn_flops(depth: int, width: int, shape: Sequence[int], num_classes: int) -> int:
    d, total = math.prod(shape), 0
    for _ in range(depth):
        total += 2 * d * width
        d = width
    return total + 2 * d * num_classes


def forward_flops(config: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> int:
    """FLOPs of one forward pass of one sample of the dense (unpruned) model ``config`` describes.

    ``config``: trial keys ``model`` (resnet | ffnn), ``depth``, ``width`` and, for a ResNet, ``shortcut``
    (missing keys take ``TrialConfig``'s defaults). ValueError for a model these shapes cannot build.
    """
    from trainables.config import TrialConfig

    defaults = TrialConfig()
    model = config.get("model", defaults.model)
    depth, width = int(config.get("depth", defaults.depth)), int(config.get("width", defaults.width))
    if model == "resnet":
        if len(input_shape) != 3:
            raise ValueError(f"resnet needs image input (C, H, W), but got {tuple(input_shape)=}.")
        return _resnet_flops(depth, width, bool(config.get("shortcut", defaults.shortcut)), input_shape, num_classes)
    return _ffnn_flops(depth, width, input_shape, num_classes)


def training_cost(config: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> float:
    """A trial's predicted training compute, in forward-pass FLOPs per sample x epochs (for ranking only).

    Pruning is left out: an unstructured mask keeps the dense layers' compute on the hardware we run on,
    and a structured step only lowers the later epochs. ``inf`` for a config that cannot be built.
    """
    from trainables.config import TrialConfig

    try:
        flops = forward_flops(config, input_shape, num_classes)
    except ValueError:
        return math.inf
    return float(flops) * int(config.get("epochs", TrialConfig().epochs))
