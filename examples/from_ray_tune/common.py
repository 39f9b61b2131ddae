"""What both versions of the example share: the data (scikit-learn's digits) and the model (an MLP)."""

from __future__ import annotations

import itertools

import torch
from sklearn.datasets import load_digits
from torch import nn


def load() -> tuple[torch.Tensor, ...]:
    """Digits as 64 features in [0, 1]: 70% train, 30% validation (a fixed split)."""
    x, y = load_digits(return_X_y=True)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = torch.tensor(x / 16.0, dtype=torch.float32)[order], torch.tensor(y)[order]
    cut = int(0.7 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def mlp(hidden: int, layers: int) -> nn.Sequential:
    """``layers`` hidden layers of ``hidden`` units with ReLU, then 10 logits."""
    widths = [64] + [hidden] * layers
    blocks: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        blocks += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(widths[-1], 10))
