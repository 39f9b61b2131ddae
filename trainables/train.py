"""The built-in trainable: ResNet / FFNN on the spec's dataset, one user of the public contract.

``train(config, ctx)`` is what a user's own trainable looks like (``trainables.contract``): it reads its
config, trains, and calls ``ctx.report`` every epoch; wattsweep measures the energy, counts the model it
is handed (``ctx.watch``), checkpoints and resumes. Readable top to bottom: setup, data, model, training,
evaluation. ``run_trial`` runs it in-process, without Ray (the CLI's ``trial`` command, tests, benchmarks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainables import metrics as M
from trainables.autocast import autocast
from trainables.config import DatasetConfig, TrialConfig
from trainables.contract import Context, TrialPlan, run_contract
from trainables.data import Splits
from trainables.loader import BUILTIN
from trainables.models import build_model

# why at module level: the worker imports this module before the trial's energy window opens; imported inside
# train() (torch_pruning, ~0.5 s) it would land on the bill of the first trial each worker runs
from trainables.pruning import Pruner

# report(metrics, state): state is what a checkpoint must hold to resume (None = no checkpoint)
ReportFn = Callable[[dict[str, Any], dict[str, Any] | None], None]


@dataclass(frozen=True)
class RunOptions:
    """How an in-process trial runs (``run_trial``), as opposed to what it trains (TrialConfig)."""

    max_epochs: int | None = None  # cap on cfg.epochs (smoke runs)
    num_threads: int | None = None  # torch intra-op threads; None = leave torch's choice
    watts_per_core: float | None = None  # estimate backend setting
    idle_power_w: Mapping[str, float] = field(default_factory=dict)  # idle baseline, W, by GPU UUID / cpu-*
    checkpoint: bool = True  # hand a resumable state to report() every epoch


def _lr_factor(cfg: TrialConfig, epochs: int) -> Callable[[int], float]:
    """Per-epoch learning-rate multiplier for the decay schedule."""
    if cfg.lr_decay == "cosine":
        return lambda e: 0.5 * (1.0 + math.cos(math.pi * e / max(epochs, 1)))
    if cfg.lr_decay == "step":
        return lambda e: 0.1 ** (e // max(1, epochs // 3))
    if cfg.lr_decay == "exponential":
        return lambda e: 0.95**e
    return lambda e: 1.0


def _make_optimizer(cfg: TrialConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024
) -> tuple[float, float, torch.Tensor]:
    """Accuracy, mean cross-entropy and predictions over a split."""
    model.eval()
    preds, loss_sum = [], 0.0
    for i in range(0, len(x), batch):
        with autocast(x.device):
            logits = model(x[i : i + batch]).float()
        loss_sum += F.cross_entropy(logits, y[i : i + batch], reduction="sum").item()
        preds.append(logits.argmax(1))
    p = torch.cat(preds)
    return (p == y).float().mean().item(), loss_sum / len(x), p


def train_epoch(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, batch: int, gen: torch.Generator
) -> float:
    """One pass over the training split in a seeded random order; batches by index. Returns mean loss."""
    model.train()
    order = torch.randperm(len(x), generator=gen).to(x.device)
    total = torch.zeros((), device=x.device)
    for i in range(0, len(x), batch):
        idx = order[i : i + batch]
        with autocast(x.device):
            loss = F.cross_entropy(model(x[idx]).float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)  # why: no .item() per step: it would sync the GPU
    return total.item() / len(x)


def confusion_matrix(pred: torch.Tensor, y: torch.Tensor, k: int) -> list[list[int]]:
    cm = torch.bincount(y.cpu() * k + pred.cpu(), minlength=k * k).reshape(k, k)
    return cm.tolist()


def train(config: dict[str, Any], ctx: Context) -> None:
    """The built-in trainable. ``config``: TrialConfig keys; ``ctx.data``: the spec's dataset (required)."""
    # setup
    cfg = TrialConfig.from_mapping(config)
    epochs = ctx.epochs
    run_cfg = cfg if epochs == cfg.epochs else replace(cfg, epochs=epochs)
    if ctx.data is None:
        raise ValueError("the built-in trainable needs the spec's dataset (ctx.data is None)")

    # data
    data = ctx.data.to(ctx.device)
    example = data.x_train[:1]

    # network
    model = build_model(run_cfg, data.input_shape, data.num_classes).to(ctx.device)
    if ctx.device.type == "cuda" and data.kind == "image":
        model = model.to(memory_format=torch.channels_last)  # why: faster convs with bf16 on tensor cores
    pruner = Pruner(model, run_cfg, example, calibration=data.x_train)
    opt = _make_optimizer(run_cfg, model)
    ctx.watch(model, example)  # why: before a resume's replayed pruning, so the dense counts are the dense model's
    if ctx.checkpoint is not None:
        # why: replay the pruning the first run did, so the structure (and the optimizer's parameter
        # order) matches the checkpoint, then load its weights and optimizer state
        model, _ = pruner.step(model, ctx.start_epoch, opt)
        model.load_state_dict(ctx.checkpoint["model_state"])
        opt.load_state_dict(ctx.checkpoint["optimizer"])
    lr_at = _lr_factor(run_cfg, epochs)
    gen = torch.Generator().manual_seed(cfg.seed)

    # training
    for epoch in range(ctx.start_epoch + 1, epochs + 1):
        gen.manual_seed(cfg.seed * 100_003 + epoch)  # why: resuming from a checkpoint replays the same order
        for group in opt.param_groups:
            group["lr"] = run_cfg.lr * lr_at(epoch - 1)
        loss = train_epoch(model, opt, data.x_train, data.y_train, run_cfg.batch_size, gen)
        # why: the pruner carries the optimizer's state over to the surviving weights and re-estimates
        # batch-norm statistics; both are part of the trial's work, inside the meter's window
        model, _ = pruner.step(model, epoch, opt)
        last = epoch == epochs
        if last:
            model = pruner.finalize(model)

        # evaluation
        acc, val_loss, _ = evaluate(model, data.x_val, data.y_val)
        test_acc, _, test_pred = evaluate(model, data.x_test, data.y_test)
        metrics: dict[str, Any] = {M.ACCURACY: acc, M.TEST_ACCURACY: test_acc, M.LOSS: loss, M.VAL_LOSS: val_loss}
        if last:
            metrics[M.CONFUSION_MATRIX] = confusion_matrix(test_pred, data.y_test, data.num_classes)
        ctx.report(metrics, state={"model_state": model.state_dict(), "optimizer": opt.state_dict()})


def _builtin_plan(ds: DatasetConfig, options: RunOptions) -> TrialPlan:
    """The plan of an in-process built-in trial (``run_trial``)."""
    return TrialPlan(
        trainable=BUILTIN,
        dataset=ds,
        max_epochs=options.max_epochs,
        default_epochs=TrialConfig.epochs,
        num_threads=options.num_threads,
        watts_per_core=options.watts_per_core,
        idle_power_w=dict(options.idle_power_w),
        checkpoint=options.checkpoint,
    )


def run_trial(
    cfg: TrialConfig,
    ds: DatasetConfig,
    *,
    report: ReportFn | None = None,
    resume: dict[str, Any] | None = None,
    options: RunOptions = RunOptions(),
    splits: Splits | None = None,
) -> dict[str, Any]:
    """Train one built-in configuration in-process through the contract; call ``report(metrics, state)``
    after every epoch; return the last epoch's metrics. ``resume``: a ``state`` an earlier report handed over.
    ``splits``: the dataset already loaded; None loads ``ds`` here, once per process."""
    last: dict[str, Any] = {}

    def sink(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        last.clear()
        last.update(metrics)
        if report is not None:
            report(metrics, state)

    run_contract(train, cfg.to_dict(), _builtin_plan(ds, options), sink, resume=resume, data=splits)
    return last
