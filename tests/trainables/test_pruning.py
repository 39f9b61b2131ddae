"""Pruning: the schedule, unstructured masks reaching their target, structured pruning shrinking real layers."""

from __future__ import annotations

import copy
from functools import cache

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from trainables.config import ConfigError, DatasetConfig, TrialConfig
from trainables.data import Splits, load_splits
from trainables.models import build_model
from trainables.pruning import (
    Pruner,
    classifier_layer,
    nonzero_params,
    prunable_weights,
    pruning_epochs,
    sparsity,
    target_sparsity,
)
from trainables.pruning_recovery import recalibrate_batchnorm

# --- schedule ------------------------------------------------------------------------


def test_cubic_schedule_steps_every_prune_every_and_leaves_fine_tuning() -> None:
    cfg = TrialConfig(epochs=20, prune_every=5, prune_ratio=0.8)
    assert pruning_epochs(cfg) == [5, 10, 15]
    got = [target_sparsity(e, cfg) for e in range(1, 21)]
    k = [0.8 * (1 - (1 - i / 3) ** 3) for i in (1, 2, 3)]
    assert got[:4] == [0.0] * 4
    assert got[4:9] == pytest.approx([k[0]] * 5) and got[9:14] == pytest.approx([k[1]] * 5)
    assert got[14:] == [0.8] * 6  # reached exactly at epoch 15, then 5 epochs of fine-tuning


def test_linear_schedule_and_last_step_before_the_last_epoch() -> None:
    cfg = TrialConfig(epochs=16, prune_every=5, prune_ratio=0.6, prune_schedule="linear")
    assert pruning_epochs(cfg) == [5, 10, 15]
    assert [target_sparsity(e, cfg) for e in (5, 10, 15, 16)] == pytest.approx([0.2, 0.4, 0.6, 0.6])
    assert pruning_epochs(TrialConfig(epochs=15, prune_every=5, prune_ratio=0.5)) == [5, 10]


@pytest.mark.parametrize(("epochs", "step_at"), [(5, 4), (3, 2), (2, 1), (1, 1)])
def test_short_trials_prune_once_to_the_full_ratio(epochs: int, step_at: int) -> None:
    cfg = TrialConfig(epochs=epochs, prune_every=5, prune_ratio=0.5)
    assert pruning_epochs(cfg) == [step_at]
    assert target_sparsity(step_at, cfg) == 0.5 and target_sparsity(step_at - 1, cfg) == 0.0


def test_no_pruning_when_the_ratio_is_zero() -> None:
    cfg = TrialConfig(epochs=20, prune_ratio=0.0)
    assert pruning_epochs(cfg) == [] and target_sparsity(20, cfg) == 0.0
    model = build_model(cfg, (1, 8, 8), 10)
    pruner = Pruner(model, cfg, torch.randn(1, 1, 8, 8))
    params = nonzero_params(model)
    for epoch in range(1, 21):
        assert pruner.step(model, epoch) == (model, False)
    assert nonzero_params(pruner.finalize(model)) == params and sparsity(model) == 0.0


# --- training with pruning ----------------------------------------------------------------


@cache
def digits() -> Splits:
    return load_splits(DatasetConfig())


def train_with_pruning(cfg: TrialConfig, *, channels_last: bool = False) -> tuple[nn.Module, Pruner, int]:
    """A few batches per epoch with the pruner stepping after each; returns model, pruner, dense param count."""
    data = digits()
    torch.manual_seed(0)
    model = build_model(cfg, data.input_shape, data.num_classes)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    dense = sum(p.numel() for p in model.parameters())
    pruner = Pruner(model, cfg, data.x_train[:1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for i in range(0, 256, 64):
            loss = F.cross_entropy(model(data.x_train[i : i + 64]), data.y_train[i : i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model, changed = pruner.step(model, epoch)
        if changed:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, pruner, dense


MODELS = [
    pytest.param({"model": "resnet", "shortcut": True}, id="resnet"),
    pytest.param({"model": "resnet", "shortcut": False}, id="resnet-noshortcut"),
    pytest.param({"model": "ffnn", "depth": 3, "width": 64}, id="ffnn"),
]


@pytest.mark.parametrize("kw", MODELS)
@pytest.mark.parametrize("ratio", [0.5, 0.9])
def test_unstructured_reaches_the_target_sparsity(kw: dict[str, object], ratio: float) -> None:
    cfg = TrialConfig(epochs=7, prune_every=2, prune_ratio=ratio, prune_method="unstructured", **kw)  # type: ignore[arg-type]
    model, pruner, _ = train_with_pruning(cfg)
    assert abs(sparsity(model) - ratio) <= 0.02
    assert abs(sparsity(model, pruner.dense_weights) - ratio) <= 0.02
    head = classifier_layer(model)
    assert not hasattr(head, "weight_mask") and torch.count_nonzero(head.weight) == head.weight.numel()
    x = digits().x_val[:8]
    model.eval()
    before = model(x)
    model = pruner.finalize(model)
    assert not any(name.endswith(("_orig", "_mask")) for name, _ in model.named_parameters())
    assert not any(name.endswith("_mask") for name, _ in model.named_buffers())
    assert abs(sparsity(model) - ratio) <= 0.02 and torch.allclose(model(x), before)


def test_unstructured_keeps_the_optimizer_valid_and_pruned_weights_at_zero() -> None:
    cfg = TrialConfig(model="ffnn", depth=2, width=64, epochs=3, prune_every=1, prune_ratio=0.5)
    data = digits()
    model = build_model(cfg, data.input_shape, data.num_classes)
    pruner = Pruner(model, cfg, data.x_train[:1])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model, changed = pruner.step(model, 2)
    assert not changed  # the Parameter objects survive as weight_orig: the old optimizer still drives them
    loss = F.cross_entropy(model(data.x_train[:64]), data.y_train[:64])
    loss.backward()
    opt.step()
    assert abs(sparsity(model) - 0.5) <= 0.02
    assert nonzero_params(model) < sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kw", MODELS)
def test_structured_removes_channels_and_still_trains(kw: dict[str, object]) -> None:
    cfg = TrialConfig(epochs=4, prune_every=1, prune_ratio=0.5, prune_method="structured", **kw)  # type: ignore[arg-type]
    model, pruner, dense = train_with_pruning(cfg)
    model = pruner.finalize(model)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 0.45 * dense  # half the channels: most layers keep about a quarter of their weights
    assert sparsity(model, pruner.dense_weights) == pruner.sparsity(model) > 0.6
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if kw["model"] == "resnet":
        assert [m.out_channels for m in layers[:2]] == [8, 8]  # stem and first conv: 16 -> 8
    else:
        assert [m.out_features for m in layers] == [32, 32, 32, 10]  # hidden units 64 -> 32, classes kept
    assert classifier_layer(model).out_features == 10
    data = digits()
    opt = torch.optim.Adam(model.parameters())
    loss = F.cross_entropy(model(data.x_train[:64]), data.y_train[:64])
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and model(data.x_val[:5]).shape == (5, 10)


def test_structured_keeps_channels_last_models_channels_last() -> None:
    cfg = TrialConfig(epochs=3, prune_every=1, prune_ratio=0.5, prune_method="structured")
    model, _, _ = train_with_pruning(cfg, channels_last=True)
    conv = model.blocks[0].conv1.weight
    assert conv.shape[0] == 8 and conv.is_contiguous(memory_format=torch.channels_last)


def test_unstructured_works_on_channels_last_models() -> None:
    cfg = TrialConfig(epochs=3, prune_every=1, prune_ratio=0.5)
    model, _, _ = train_with_pruning(cfg, channels_last=True)
    assert abs(sparsity(model) - 0.5) <= 0.02
    assert model.blocks[0].conv1.weight_orig.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("carry", [True, False], ids=["optimizer-carried", "optimizer-rebuilt"])
@pytest.mark.parametrize("method", ["structured", "unstructured"])
def test_resume_replays_the_steps_then_loads_model_and_optimizer(method: str, carry: bool) -> None:
    """Resuming after epoch e: dense model, optimizer, pruner; step(model, e) replays the structure
    (the pruner carrying the optimizer over, or the caller rebuilding it when told, as the original
    run did); then both state dicts load."""
    cfg = TrialConfig(epochs=8, prune_every=2, prune_ratio=0.5, prune_method=method)  # steps after 2, 4, 6
    data = digits()
    x, y = data.x_train[:64], data.y_train[:64]

    def adam_step(model: nn.Module, opt: torch.optim.Optimizer) -> None:
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def start() -> tuple[nn.Module, torch.optim.Optimizer, Pruner]:
        torch.manual_seed(1)
        model = build_model(cfg, data.input_shape, data.num_classes)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3), Pruner(model, cfg, data.x_train[:1])

    def prune(m: nn.Module, o: torch.optim.Optimizer, p: Pruner, epoch: int) -> tuple[nn.Module, torch.optim.Optimizer]:
        m, changed = p.step(m, epoch, o if carry else None)
        return m, (torch.optim.Adam(m.parameters(), lr=1e-3) if changed and not carry else o)

    model, opt, pruner = start()
    for epoch in range(1, 5):
        adam_step(model, opt)
        model, opt = prune(model, opt, pruner, epoch)
        adam_step(model, opt)  # why: the optimizer has state for every parameter at the checkpoint
    # why: a checkpoint is a copy; optimizer.load_state_dict would otherwise share the live Adam moment tensors
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())

    resumed, ropt, rpruner = start()
    resumed, ropt = prune(resumed, ropt, rpruner, 4)
    resumed.load_state_dict(saved_model)
    ropt.load_state_dict(saved_opt)
    outputs = []
    for m, o, p in ((model, opt, pruner), (resumed, ropt, rpruner)):
        for epoch in (5, 6):
            adam_step(m, o)
            m, o = prune(m, o, p, epoch)
        adam_step(m, o)
        outputs.append(m.eval()(data.x_val[:16]))
    assert torch.equal(outputs[0], outputs[1])


def test_counts() -> None:
    model = build_model(TrialConfig(model="ffnn", depth=1, width=4), (1, 2, 2), 3)
    with torch.no_grad():
        model.net[1].weight.zero_()
        model.net[1].bias.fill_(1.0)
    assert prunable_weights(model) == 16  # the 4x4 hidden layer; the 4x3 classifier is not prunable
    assert sparsity(model) == 1.0 and sparsity(model, dense_params=32) == 1.0
    assert nonzero_params(model) == 4 + 12 + torch.count_nonzero(model.net[3].bias).item()


# --- after a structured step: batch-norm recalibration and the optimizer's state ----------------------


def _trained(cfg: TrialConfig, epochs: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The default ResNet after ``epochs`` real epochs of Adam on digits (seeded order)."""
    data = digits()
    torch.manual_seed(0)
    model = build_model(cfg, data.input_shape, data.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data.x_train), generator=gen)
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model, opt


def _val_accuracy(model: nn.Module) -> float:
    model.eval()
    with torch.no_grad():
        return (model(digits().x_val).argmax(1) == digits().y_val).float().mean().item()


def test_recalibration_matches_the_pruned_networks_batch_statistics_and_restores_accuracy() -> None:
    cfg = TrialConfig(epochs=20, prune_every=5, prune_ratio=0.5, prune_method="structured")
    model, _ = _trained(cfg, 3)
    data = digits()
    calibration = data.x_train[:512]
    stale_pruner = Pruner(model, TrialConfig(**{**cfg.to_dict(), "bn_recalibrate": False}), data.x_train[:1])
    model, changed = stale_pruner.step(model, 5)  # the benchmark's first step: 35 % of the channels
    assert changed
    stale = _val_accuracy(model)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    # the batch statistics of the pruned network, batch by batch, as training mode computes them
    seen: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {m: [] for m in norms}
    hooks = [
        m.register_forward_pre_hook(
            lambda mod, args: seen[mod].append((args[0].mean((0, 2, 3)), args[0].var((0, 2, 3), unbiased=True)))
        )
        for m in norms
    ]
    model.train()
    with torch.no_grad():
        for i in range(0, 512, 64):
            model(calibration[i : i + 64])
    for h in hooks:
        h.remove()
    used = recalibrate_batchnorm(model, calibration, batch_size=64)
    assert used == 512
    for m in norms:
        assert m.momentum == 0.1 and m.num_batches_tracked.item() == 8
        torch.testing.assert_close(m.running_mean, torch.stack([s[0] for s in seen[m]]).mean(0))
        torch.testing.assert_close(m.running_var, torch.stack([s[1] for s in seen[m]]).mean(0))
    recalibrated = _val_accuracy(model)
    # stale statistics leave the pruned net near chance (0.1); re-estimated ones recover much of it
    assert stale < 0.3 and recalibrated > 0.45 and recalibrated > stale + 0.25


def test_pruner_recalibrates_after_a_step_with_calibration_data_only_when_asked() -> None:
    data = digits()
    for flag in (True, False):
        cfg = TrialConfig(epochs=4, prune_every=1, prune_ratio=0.5, prune_method="structured", bn_recalibrate=flag)
        torch.manual_seed(0)
        model = build_model(cfg, data.input_shape, data.num_classes)
        pruner = Pruner(model, cfg, data.x_train[:1], calibration=data.x_train[:256])
        model, _ = pruner.step(model, 1)
        counts = {int(m.num_batches_tracked.item()) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
        assert counts == ({4} if flag else {0})  # 256 samples in batches of 64, or untouched


def test_optimizer_carry_keeps_each_surviving_weights_adam_state() -> None:
    cfg = TrialConfig(epochs=4, prune_every=1, prune_ratio=0.5, prune_method="structured")
    model, opt = _trained(cfg, 1)
    # why: state that is a known function of each weight shows which entries survived, along every dim
    for p in model.parameters():
        opt.state[p]["exp_avg"] = 2.0 * p.detach().clone()
        opt.state[p]["exp_avg_sq"] = p.detach().clone() ** 2
    steps = {int(s["step"].item()) for s in opt.state.values()}
    pruner = Pruner(model, cfg, digits().x_train[:1])
    model, changed = pruner.step(model, 1, opt)
    assert changed and [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in model.parameters()]
    assert classifier_layer(model).in_features == 41  # 0.5 * (1 - (2/3)^3) = 35 % of the 64 channels gone
    for p in model.parameters():
        state = opt.state[p]
        assert torch.equal(state["exp_avg"], 2.0 * p.detach()) and torch.equal(state["exp_avg_sq"], p.detach() ** 2)
        assert int(state["step"].item()) in steps
    loss = F.cross_entropy(model(digits().x_train[:64]), digits().y_train[:64])
    opt.zero_grad()
    loss.backward()
    opt.step()  # the carried state fits the new shapes
    assert torch.isfinite(loss)


def test_bn_recalibrate_is_a_trial_key_taking_true_or_false() -> None:
    assert TrialConfig().bn_recalibrate is True
    assert TrialConfig.from_mapping({"bn_recalibrate": False}).bn_recalibrate is False
    with pytest.raises(ConfigError, match=r"bn_recalibrate: got 'yes'; allowed: true or false"):
        TrialConfig.from_mapping({"bn_recalibrate": "yes"})
