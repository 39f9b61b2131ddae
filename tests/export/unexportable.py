"""A model with an operator ONNX cannot export: a custom op (``torch.library``) with no ONNX translation."""

from __future__ import annotations

import torch
from torch import nn


@torch.library.custom_op("wattsweep_test::twist", mutates_args=())
def twist(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


@twist.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class Twisted(nn.Module):
    """Flatten, twist (the custom op), classify."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(twist(x.flatten(1)))
