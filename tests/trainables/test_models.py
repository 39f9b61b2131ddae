"""Models: every family and init builds and takes a training step; xavier really is Glorot uniform."""

from __future__ import annotations

import math
from functools import cache

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from trainables.config import DatasetConfig, TrialConfig
from trainables.data import Splits, load_splits
from trainables.models import build_model


@cache
def splits(name: str) -> Splits:
    return load_splits(DatasetConfig(name=name))


def one_step(cfg: TrialConfig, data: Splits) -> None:
    torch.manual_seed(0)
    model = build_model(cfg, data.input_shape, data.num_classes)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data.x_train[:64], data.y_train[:64]
    loss = F.cross_entropy(model(x), y)
    assert torch.isfinite(loss) and loss.item() > 0
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert model(x).shape == (64, data.num_classes)
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert all(changed), "every parameter should receive a gradient and move"


@pytest.mark.parametrize("init", ["xavier", "kaiming", "default"])
@pytest.mark.parametrize("shortcut", [True, False])
def test_resnet_builds_and_trains_on_digits(init: str, shortcut: bool) -> None:
    one_step(TrialConfig(model="resnet", depth=14, width=8, shortcut=shortcut, init=init), splits("digits"))


@pytest.mark.parametrize("init", ["xavier", "kaiming", "default"])
@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_ffnn_builds_and_trains(init: str, name: str) -> None:
    one_step(TrialConfig(model="ffnn", depth=2, width=32, init=init), splits(name))


def _glorot_bound(weight: torch.Tensor) -> float:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return math.sqrt(6.0 / (fan_in + fan_out))


@pytest.mark.parametrize("model", ["resnet", "ffnn"])
def test_xavier_gives_glorot_uniform_bounds(model: str) -> None:
    torch.manual_seed(0)
    net = build_model(TrialConfig(model=model, depth=8, width=16, init="xavier"), (1, 8, 8), 10)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w, bound = m.weight.detach(), _glorot_bound(m.weight)
            assert w.abs().max().item() <= bound
            if w.numel() >= 500:  # why: a uniform sample this large reaches near its bounds, std = bound / sqrt(3)
                assert w.abs().max().item() > 0.95 * bound
                assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
            if m.bias is not None:
                assert torch.count_nonzero(m.bias) == 0


def test_default_init_is_not_glorot() -> None:
    torch.manual_seed(0)
    net = build_model(TrialConfig(model="ffnn", depth=1, width=256, init="default"), (1, 8, 8), 10)
    first = net.net[1].weight.detach()
    # why: torch's default Linear init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) = U(-0.125, 0.125) here, narrower
    assert first.abs().max().item() <= 1 / math.sqrt(64) < _glorot_bound(first)
