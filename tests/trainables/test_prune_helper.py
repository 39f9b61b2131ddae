"""GradualPruner on torchvision's own models: structured and unstructured steps, resuming, bad options."""

from __future__ import annotations

import copy
import dataclasses
import math
import re

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from trainables.config import TrialConfig
from trainables.flops import count_flops, effective_flops
from trainables.prune_helper import GradualPruner
from trainables.pruning import PruneSchedule, classifier_layer, pruning_epochs, sparsity, target_sparsity

ARCHS = ["resnet18", "mobilenet_v3_small"]


def build(arch: str) -> nn.Module:
    torch.manual_seed(0)
    return getattr(torchvision.models, arch)(weights=None, num_classes=10)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    # why: 32 px is the least mobilenet_v3_small takes (5 stride-2 stages); 4 samples give batch norm a variance
    return torch.randn(4, 3, 32, 32, generator=gen), torch.randint(0, 10, (4,), generator=gen)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    model.train()
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


# --- structured ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_structured_shrinks_a_torchvision_model_and_its_optimizer_keeps_training_it(arch: str) -> None:
    model, (x, y) = build(arch), batch()
    dense_flops, dense_params = count_flops(model, x[:1])[0], n_params(model)
    pruner = GradualPruner(model, x[:1], ratio=0.5, epochs=4, every=1, method="structured")
    assert pruner.steps == [1, 2, 3]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    changed_at = []
    for epoch in range(1, 5):
        train_step(model, opt, x, y)
        model, changed = pruner.step(model, epoch, opt)
        changed_at += [epoch] if changed else []
    assert changed_at == [1, 2, 3]
    # half the channels of every group: about a quarter of the FLOPs and weights stay (0.27 / 0.25 measured)
    assert effective_flops(model, x[:1]) < 0.35 * dense_flops
    assert n_params(model) < 0.35 * dense_params
    assert pruner.sparsity(model) > 0.6
    assert classifier_layer(model).out_features == 10
    # the optimizer passed in now holds the new, smaller parameters, and one more step moves every one of them
    assert [id(p) for g in opt.param_groups for p in g["params"]] == [id(p) for p in model.parameters()]
    before = [p.detach().clone() for p in model.parameters()]
    assert math.isfinite(train_step(model, opt, x, y))
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert model.eval()(x).shape == (4, 10)


def test_resuming_replays_the_structure_then_the_checkpoint_loads() -> None:
    x, y = batch()

    def start() -> tuple[nn.Module, torch.optim.Optimizer, GradualPruner]:
        model = build("resnet18")
        pruner = GradualPruner(model, x[:1], ratio=0.5, epochs=4, every=1, method="structured")
        return model, torch.optim.Adam(model.parameters(), lr=1e-3), pruner

    model, opt, pruner = start()
    dense_shapes = shapes(model)
    for epoch in (1, 2):
        train_step(model, opt, x, y)
        model, _ = pruner.step(model, epoch, opt)
    train_step(model, opt, x, y)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())

    resumed, ropt, rpruner = start()
    resumed, changed = rpruner.step(resumed, 2, ropt)  # both missed steps at once
    assert changed and shapes(resumed) == shapes(model) != dense_shapes
    resumed.load_state_dict(saved_model)
    ropt.load_state_dict(saved_opt)
    for m, o, p in ((model, opt, pruner), (resumed, ropt, rpruner)):
        train_step(m, o, x, y)
        p.step(m, 3, o)
    assert shapes(resumed) == shapes(model)
    assert torch.equal(model.eval()(x), resumed.eval()(x))


def test_ignored_layers_keep_a_whole_head_dense() -> None:
    x, _ = batch()
    model = build("mobilenet_v3_small")  # classifier: Linear(576, 1024), Hardswish, Dropout, Linear(1024, 10)
    pruner = GradualPruner(model, x[:1], ratio=0.5, epochs=2, every=1, method="structured")
    pruner.step(model, 1)
    assert model.classifier[0].out_features == 512  # by default only the last layer is kept

    model = build("mobilenet_v3_small")
    pruner = GradualPruner(
        model, x[:1], ratio=0.5, epochs=2, every=1, method="structured", ignored_layers=[model.classifier]
    )
    pruner.step(model, 1)
    assert model.classifier[0].out_features == 1024 and model.classifier[0].in_features == 288  # inputs shrink
    assert model.classifier[3].weight.shape == (10, 1024)


# --- unstructured ---------------------------------------------------------------------------


def test_unstructured_reaches_the_target_at_the_last_step_and_finalize_leaves_plain_weights() -> None:
    model, (x, y) = build("resnet18"), batch()
    dense_flops = count_flops(model, x[:1])[0]
    pruner = GradualPruner(model, x[:1], ratio=0.8, epochs=3, every=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch, target in ((1, 0.8 * (1 - 0.5**3)), (2, 0.8), (3, 0.8)):  # cubic over 2 steps, then fine-tuning
        train_step(model, opt, x, y)
        model, changed = pruner.step(model, epoch, opt)
        assert not changed and pruner.sparsity(model) == pytest.approx(target, abs=1e-4)
    assert not hasattr(model.fc, "weight_mask") and torch.count_nonzero(model.fc.weight) == model.fc.weight.numel()
    # why: global magnitude pruning spares the stem, where most FLOPs are at 32 px (0.38 measured)
    assert effective_flops(model, x[:1]) < 0.5 * dense_flops
    model.eval()
    before = model(x)
    model = pruner.finalize(model)
    assert not any(name.endswith(("_orig", "_mask")) for name in model.state_dict())
    assert all(type(p) is nn.Parameter for p in model.parameters())
    assert sparsity(model) == pytest.approx(0.8, abs=1e-4) and torch.equal(model(x), before)


def test_unstructured_ignored_layers_get_no_mask() -> None:
    x, _ = batch()
    model = build("mobilenet_v3_small")
    pruner = GradualPruner(model, x[:1], ratio=0.5, epochs=2, every=1, ignored_layers=[model.classifier])
    pruner.step(model, 1)
    assert not any(hasattr(m, "weight_mask") for m in model.classifier.modules())
    assert hasattr(model.features[0][0], "weight_mask") and pruner.sparsity(model) == pytest.approx(0.5, abs=1e-4)


def test_ratio_zero_never_prunes() -> None:
    model, (x, _) = build("mobilenet_v3_small"), batch()
    pruner = GradualPruner(model, x[:1], ratio=0, epochs=3, every=1, method="structured")
    dense = shapes(model)
    assert pruner.steps == [] and all(pruner.step(model, e) == (model, False) for e in (1, 2, 3))
    assert shapes(model) == dense and pruner.sparsity(model) == 0.0


# --- options ----------------------------------------------------------------------------------

VALID = {"prune_ratio": 0.5, "prune_method": "structured", "prune_every": 2, "prune_schedule": "cubic", "epochs": 10}


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("prune_ratio", 1.0, "[0, 1)"),
        ("prune_ratio", -0.1, "[0, 1)"),
        ("prune_ratio", float("nan"), "finite"),
        ("prune_method", "channels", "'unstructured', 'structured'"),
        ("prune_every", 0, ">= 1"),
        ("prune_schedule", "exponential", "'cubic', 'linear'"),
        ("epochs", 0, ">= 1"),
        ("batch_size", 0, ">= 1"),
        ("bn_recalibrate", "yes", "true or false"),
    ],
)
def test_prune_schedule_rejects_bad_values_naming_the_field(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: got .*; allowed: .*{re.escape(allowed)}") as info:
        PruneSchedule(**{**VALID, field: value})  # type: ignore[arg-type]
    assert repr(value) in str(info.value)


def test_gradual_pruner_names_its_own_keywords_and_checks_what_it_is_given() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(1, 4)
    with pytest.raises(ValueError, match=r"^ratio: got 1\.0; allowed: a number in \[0, 1\)"):
        GradualPruner(model, x, ratio=1.0, epochs=3)
    with pytest.raises(ValueError, match=r"^every: got 0"):
        GradualPruner(model, x, ratio=0.5, epochs=3, every=0)
    with pytest.raises(ValueError, match=r"ignored_layers must be modules of the model.*Linear"):
        GradualPruner(model, x, ratio=0.5, epochs=3, ignored_layers=[nn.Linear(8, 2)])
    with pytest.raises(ValueError, match=r"ignored_layers must leave a conv or linear layer"):
        GradualPruner(model, x, ratio=0.5, epochs=3, ignored_layers=[model])
    pruner = GradualPruner(model, x, ratio=0.5, epochs=3, every=1)
    with pytest.raises(ValueError, match=r"the model this pruner was built on"):
        pruner.step(copy.deepcopy(model), 1)


def test_prune_schedule_is_a_plan_like_the_trial_config() -> None:
    plan = PruneSchedule(prune_ratio=0, prune_method="unstructured", prune_every=5, prune_schedule="linear", epochs=8)
    assert plan.prune_ratio == 0.0 and isinstance(plan.prune_ratio, float)  # canonical type, as the trial config
    assert (plan.bn_recalibrate, plan.batch_size) == (True, 64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.epochs = 3  # type: ignore[misc]
    for kw in (VALID, {**VALID, "prune_schedule": "linear", "epochs": 3}, {**VALID, "prune_every": 1, "epochs": 1}):
        plan, cfg = PruneSchedule(**kw), TrialConfig(**kw)  # type: ignore[arg-type]
        assert pruning_epochs(plan) == pruning_epochs(cfg) != []
        assert [target_sparsity(e, plan) for e in range(11)] == [target_sparsity(e, cfg) for e in range(11)]
