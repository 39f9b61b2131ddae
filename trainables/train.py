"""The training loop: one trial, driven by a TrialConfig, reporting the metric contract.

Readable top to bottom: setup, data, model, training, evaluation. It knows
nothing of Ray; ``trainables.ray_trainable`` adapts it to Tune, and the CLI's
``trial`` command calls it in-process.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainables import metrics as M
from trainables.config import DatasetConfig, TrialConfig
from trainables.data import Splits, load_splits
from trainables.energy import make_meter
from trainables.models import build_model

# report(metrics, state): state is what a checkpoint must hold to resume (None = no checkpoint)
ReportFn = Callable[[dict[str, Any], dict[str, Any] | None], None]


@dataclass(frozen=True)
class RunOptions:
    """How the trial runs, as opposed to what it trains (TrialConfig)."""

    max_epochs: int | None = None  # cap on cfg.epochs (smoke runs)
    num_threads: int | None = None  # torch intra-op threads; None = leave torch's choice
    watts_per_core: float | None = None  # estimate backend setting
    idle_power_w: dict[str, float] | None = None  # idle baseline, W, by GPU UUID / "cpu-package" / "cpu-dram"
    checkpoint: bool = True  # hand a resumable state to report() every epoch


@functools.lru_cache(maxsize=4)
def _cached_splits(ds: DatasetConfig) -> Splits:
    # why: Ray reuses worker processes; load (and scale) each dataset once per process
    return load_splits(ds)


def _pick_device(cfg: TrialConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


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


def _autocast(device: torch.device) -> AbstractContextManager[Any]:
    # why: bf16 autocast speeds up convs/matmuls on GPUs; on CPU fp32 is faster for small nets
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024
) -> tuple[float, float, torch.Tensor]:
    """Accuracy, mean cross-entropy and predictions over a split."""
    model.eval()
    preds, loss_sum = [], 0.0
    for i in range(0, len(x), batch):
        with _autocast(x.device):
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
        with _autocast(x.device):
            loss = F.cross_entropy(model(x[idx]).float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)  # why: no .item() per step: it would sync the GPU
    return total.item() / len(x)


def confusion_matrix(pred: torch.Tensor, y: torch.Tensor, k: int) -> list[list[int]]:
    cm = torch.bincount(y.cpu() * k + pred.cpu(), minlength=k * k).reshape(k, k)
    return cm.tolist()


def _idle_power_for(meter: Any, idle: dict[str, float]) -> float | None:
    """The idle baseline of what this meter measures (its GPUs, or the RAPL package + DRAM), W."""
    if not idle:
        return None
    if hasattr(meter, "devices"):  # NVML: the trial's GPUs, by UUID
        keys = [d.uuid for d in meter.devices]
    elif meter.source == "rapl":
        keys = ["cpu-package", "cpu-dram"]
    else:
        return None  # why: an estimate from CPU time has no idle part to subtract
    found = [idle[k] for k in keys if k in idle]
    return sum(found) if found else None


def inference_window_s(source: str) -> float:
    """The shortest window over which ``measure_inference`` can trust a meter of this source, s.

    An NVML counter refreshes every 20-100 ms, so GPU windows must be long; RAPL counters update about every
    millisecond but count the whole package, so a tenth of a second evens out the rest of the machine. The
    ``estimated-cpu`` meter reads this process's CPU time (a nanosecond clock): its 50 samples need no floor
    (measured on digits ResNets: the same energy per 1,000 to 1-2 % with a 0, 0.05 or 0.1 s floor, while the
    floor cost 0.08 s of every trial).
    """
    if source.startswith("nvml"):
        return 0.5
    return 0.1 if source == "rapl" else 0.0


@torch.no_grad()
def measure_inference(model: nn.Module, x: torch.Tensor, meter: Any, *, min_s: float = 0.5) -> dict[str, float]:
    """Energy per 1,000 and latency of single-sample inference (the edge-device case), measured
    over at least ``min_s`` seconds (an NVML counter refreshes every 20-100 ms) and 50 samples."""
    model.eval()
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    model(x[:1])  # warm-up
    sync()
    before, t0, n = meter.read(), time.perf_counter(), 0
    while n < 50 or time.perf_counter() - t0 < min_s:
        with _autocast(x.device):
            model(x[n % len(x) : n % len(x) + 1])
        n += 1
        if n >= 20_000:
            break
    sync()
    elapsed, after = time.perf_counter() - t0, meter.read()
    return {
        M.INFER_ENERGY_J_PER_1K: (after.energy_j - before.energy_j) / n * 1000.0,
        M.INFER_LATENCY_MS: elapsed / n * 1000.0,
    }


def run_trial(
    cfg: TrialConfig,
    ds: DatasetConfig,
    *,
    report: ReportFn | None = None,
    resume: dict[str, Any] | None = None,
    options: RunOptions = RunOptions(),
    splits: Splits | None = None,
) -> dict[str, Any]:
    """Train one configuration; call report() after every epoch; return the last epoch's metrics.

    ``splits``: the dataset already loaded (the sweep's driver loads it once and ships it to every
    worker); None loads ``ds`` here, once per process.
    """
    from trainables.flops import count_flops, effective_flops  # why: lazy, keeps worker imports light
    from trainables.pruning import Pruner, nonzero_params

    # setup
    if options.num_threads:
        torch.set_num_threads(options.num_threads)
    torch.manual_seed(cfg.seed)
    device = _pick_device(cfg)
    epochs = min(cfg.epochs, options.max_epochs) if options.max_epochs else cfg.epochs
    run_cfg = cfg if epochs == cfg.epochs else TrialConfig(**{**cfg.to_dict(), "epochs": epochs})

    # data
    data = (splits if splits is not None else _cached_splits(ds)).to(device)
    example = data.x_train[:1]

    # network
    model = build_model(run_cfg, data.input_shape, data.num_classes).to(device)
    if device.type == "cuda" and data.kind == "image":
        model = model.to(memory_format=torch.channels_last)  # why: faster convs with bf16 on tensor cores
    pruner = Pruner(model, run_cfg, example, calibration=data.x_train)
    opt = _make_optimizer(run_cfg, model)
    counted = count_flops(model, example)  # why: valid until a structural pruning step changes the shapes
    dense_flops = counted[0]
    lr_at = _lr_factor(run_cfg, epochs)
    start_epoch, energy0, dyn0, time0 = 0, 0.0, 0.0, 0.0
    if resume is not None:
        # why: replay the pruning the first run did, so the structure (and the optimizer's parameter
        # order) matches the checkpoint, then load its weights and optimizer state
        start_epoch = int(resume["epoch"])
        model, changed = pruner.step(model, start_epoch, opt)  # why: opt follows the new parameters
        if changed:
            counted = count_flops(model, example)
        model.load_state_dict(resume["model_state"])
        opt.load_state_dict(resume["optimizer"])
        energy0, dyn0, time0 = resume["energy_j"], resume["dynamic_energy_j"], resume["time_s"]
    gen = torch.Generator().manual_seed(cfg.seed)

    # training
    meter = make_meter(device.type, watts_per_core=options.watts_per_core)
    meter.idle_power_w = _idle_power_for(meter, options.idle_power_w or {})
    meter.start()
    result: dict[str, Any] = {}
    for epoch in range(start_epoch + 1, epochs + 1):
        gen.manual_seed(cfg.seed * 100_003 + epoch)  # why: resuming from a checkpoint replays the same order
        for group in opt.param_groups:
            group["lr"] = run_cfg.lr * lr_at(epoch - 1)
        loss = train_epoch(model, opt, data.x_train, data.y_train, run_cfg.batch_size, gen)
        # why: the pruner carries the optimizer's state over to the surviving weights and re-estimates
        # batch-norm statistics; both are part of the trial's work, inside the meter's window
        model, changed = pruner.step(model, epoch, opt)
        if changed:
            counted = count_flops(model, example)
        last = epoch == epochs
        if last:
            model = pruner.finalize(model)

        # evaluation
        acc, val_loss, _ = evaluate(model, data.x_val, data.y_val)
        test_acc, _, test_pred = evaluate(model, data.x_test, data.y_test)
        if device.type == "cuda":
            torch.cuda.synchronize()
        reading = meter.read()
        result = {
            M.EPOCH: epoch,
            M.ACCURACY: acc,
            M.TEST_ACCURACY: test_acc,
            M.LOSS: loss,
            M.VAL_LOSS: val_loss,
            M.ENERGY_J: energy0 + reading.energy_j,
            M.DYNAMIC_ENERGY_J: dyn0 + reading.dynamic_energy_j,
            M.ENERGY_SOURCE: reading.source,
            M.ENERGY_ESTIMATED: reading.estimated,
            M.TIME_S: time0 + reading.time_s,
            M.PARAMS: nonzero_params(model),
            M.FLOPS: dense_flops,
            M.EFFECTIVE_FLOPS: effective_flops(model, example, counted=counted),
            M.SPARSITY: pruner.sparsity(model),
            M.BUDGET_EPOCHS: epochs,
        }
        if last:
            layer_flops = counted[1]
            result[M.CONFUSION_MATRIX] = confusion_matrix(test_pred, data.y_test, data.num_classes)
            result[M.LAYER_FLOPS] = layer_flops
            result[M.POWER_TRACE] = meter.trace()
            result[M.ENERGY_PROVENANCE] = meter.provenance()
            result.update(measure_inference(model, data.x_test, meter, min_s=inference_window_s(meter.source)))
        state = None
        if options.checkpoint:
            state = {
                "model_state": model.state_dict(),
                "optimizer": opt.state_dict(),
                "epoch": epoch,
                "energy_j": result[M.ENERGY_J],
                "dynamic_energy_j": result[M.DYNAMIC_ENERGY_J],
                "time_s": result[M.TIME_S],
            }
        if report is not None:
            report(result, state)
    meter.stop()
    return result
