"""FLOPs: per-sample counts from FlopCounterMode, per leaf module, and after pruning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainables.config import TrialConfig
from trainables.flops import count_flops, effective_flops
from trainables.models import build_model
from trainables.pruning import Pruner

EXAMPLE = torch.randn(1, 1, 8, 8)


def resnet(**kw: object) -> nn.Module:
    torch.manual_seed(0)
    return build_model(TrialConfig(**kw), (1, 8, 8), 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw", [{}, {"shortcut": False}, {"model": "ffnn", "depth": 3, "width": 64}])
def test_total_is_the_sum_of_the_leaf_layers(kw: dict[str, object]) -> None:
    model = resnet(**kw)
    total, per_layer = count_flops(model, EXAMPLE)
    assert total > 0 and total == sum(per_layer.values())
    modules = dict(model.named_modules())
    # why: only conv / linear run counted ops; batch norm, ReLU, pooling and additions are not counted
    assert all(isinstance(modules[name], (nn.Conv2d, nn.Linear)) for name in per_layer)


def test_counts_match_the_textbook_formulas() -> None:
    model = resnet()
    _, per_layer = count_flops(model, EXAMPLE)
    # 2 FLOPs per multiply-accumulate: conv = 2 * C_in * k * k * C_out * H_out * W_out, linear = 2 * in * out
    assert per_layer["stem.0"] == 2 * 1 * 9 * 16 * 8 * 8
    assert per_layer["blocks.1.conv1"] == 2 * 16 * 9 * 32 * 4 * 4
    assert per_layer["blocks.1.proj.0"] == 2 * 16 * 1 * 32 * 4 * 4
    assert per_layer["head"] == 2 * 64 * 10


def test_count_is_per_sample_in_eval_mode_and_restores_the_mode() -> None:
    model = resnet()
    model.train()
    running = model.stem[1].running_mean.clone()
    count_flops(model, EXAMPLE)
    assert model.training and torch.equal(model.stem[1].running_mean, running)
    with pytest.raises(ValueError, match="batch dimension 1"):
        count_flops(model, torch.randn(4, 1, 8, 8))


def test_dense_effective_flops_equal_the_count() -> None:
    model = resnet()
    assert effective_flops(model, EXAMPLE) == count_flops(model, EXAMPLE)[0]


def test_unstructured_masks_scale_each_layer_by_its_density() -> None:
    model = resnet(model="ffnn", depth=2, width=64, prune_ratio=0.5)
    cfg = TrialConfig(model="ffnn", depth=2, width=64, prune_ratio=0.5, epochs=3, prune_every=1)
    pruner = Pruner(model, cfg, EXAMPLE)
    for epoch in (1, 2):
        pruner.step(model, epoch)
    total, per_layer = count_flops(model, EXAMPLE)
    expected = per_layer["net.5"]  # the classifier stays dense
    for name in ("net.1", "net.3"):
        layer = dict(model.named_modules())[name]
        expected += per_layer[name] * layer.weight_mask.mean().item()
    assert effective_flops(model, EXAMPLE) == pytest.approx(expected, abs=2)
    assert effective_flops(model, EXAMPLE) < 0.6 * total


def test_half_the_channels_structured_cuts_resnet_flops_to_about_a_quarter() -> None:
    model = resnet()
    dense = count_flops(model, EXAMPLE)[0]
    cfg = TrialConfig(prune_ratio=0.5, prune_method="structured", epochs=2, prune_every=1)
    model, changed = Pruner(model, cfg, EXAMPLE).step(model, 1)
    assert changed
    # why: a conv between two pruned layers keeps (1 - 0.5)^2 of its FLOPs; the stem keeps half
    assert effective_flops(model, EXAMPLE) < 0.35 * dense
