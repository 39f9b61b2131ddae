"""What wattsweep's training loop costs over a bare PyTorch loop: same model, data, epochs, seed, side by side.

Target (from the issue): the loop's overhead (energy meter, reporting, pruning
bookkeeping, checkpoints) is at most 5 % over a bare PyTorch loop on the same
model and data, i.e. ``wattsweep / bare <= 1.05`` in wall time.

Definitions. Both loops train the same config (default: ResNet depth 8 width 16,
xavier, Adam lr 1e-3 with the default cosine decay, batch 64) on the same
in-memory digits splits (``load_splits(DatasetConfig())``), same epochs, one
torch thread, same seed, same initial weights and the same shuffling order, so
they do identical arithmetic; the script checks that their final validation and
test accuracies agree.

- ``bare``: the useful work only. Build the model and Adam; per epoch: set the
  cosine LR, shuffle by index, train the batches, (pruned variant: prune on the
  schedule with ``torch.nn.utils.prune.global_unstructured``, and make the masks
  permanent after the last epoch), then compute validation and test accuracy
  once. Nothing else: no meter, no losses kept, no FLOP or parameter counts,
  no checkpoint.
- ``wattsweep``: ``run_trial(cfg, ds, report=..., options=RunOptions(num_threads=1))``,
  i.e. the built-in ``trainables.train.train`` run through the trainable contract
  (``trainables.contract.run_contract``), whose ``report`` does what the Ray
  adapter's sink does with the checkpoint state (``{"wattsweep": counters,
  "user": model + optimizer state}``): ``torch.save`` it, to an ``io.BytesIO``
  (``--checkpoint memory``, default) or to a file in a temporary directory
  (``--checkpoint file``, as ``ray_trainable`` does).
- overhead = everything ``run_trial`` does beyond ``bare``: the contract's
  context (seeding, the energy meter opened, read at every report and around its
  own FLOP counting, and closed; the metrics it adds and the objective check),
  train/validation losses, what ``ctx.watch`` counts (``trainables.watch.ModelWatch``:
  the dense FLOP and prunable-weight counts when the model is handed over,
  non-zero parameter, sparsity and effective-FLOP counts every epoch, FLOPs
  recounted after a structured pruning step, the last epoch's layer FLOPs and
  inference energy/latency measurement), the last epoch's confusion matrix,
  power trace and energy provenance, the pruner's bookkeeping, and building
  and serialising the checkpoint state every epoch.

Each measured run is one whole trial (setup included). Both variants are warmed up
once first (imports such as torch_pruning and the dataset cache are paid once per
Ray worker process, not per trial, so they are excluded). Repetitions interleave
bare and wattsweep, alternating which goes first (ABBA), so drift and other load
hit both alike. A separate instrumented pass wraps the calls ``run_trial`` makes
with timers to show where its time goes.

    python benchmarks/loop_overhead.py [--epochs 10] [--reps 7] [--breakdown-reps 3] [--checkpoint memory]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # why: runnable as a script from any folder

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune

import trainables.energy
import trainables.flops
import trainables.pruning
import trainables.train
import trainables.watch
from trainables import metrics as M
from trainables.config import DatasetConfig, TrialConfig
from trainables.data import Splits, load_splits
from trainables.models import build_model
from trainables.pruning import Pruner, pruning_epochs, target_sparsity
from trainables.train import ReportFn, RunOptions, run_trial

TARGET_RATIO = 1.05
# why: when the bare loop's own run-to-run spread is wider than this, whole-run wall ratios cannot resolve 5 %
NOISY_SPREAD = 0.10
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "unstructured-0.5": {"prune_ratio": 0.5, "prune_method": "unstructured", "prune_every": 2},
}

# --- the bare loop ------------------------------------------------------------------


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> float:
    model.eval()
    preds = [model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)]
    return (torch.cat(preds) == y).float().mean().item()


def bare_loop(cfg: TrialConfig, data: Splits, init_rng: torch.Tensor) -> tuple[float, float]:
    """Train and evaluate as plainly as PyTorch allows. Returns the last (validation, test) accuracy."""
    if (cfg.optimizer, cfg.lr_decay, cfg.weight_decay) != ("adam", "cosine", 0.0) or (
        cfg.prune_ratio > 0 and cfg.prune_method != "unstructured"
    ):
        raise ValueError(f"the bare loop implements adam, cosine decay and unstructured pruning only, got {cfg=}.")
    torch.set_rng_state(init_rng)  # why: the same initial weights as run_trial's trained model
    model = build_model(cfg, data.input_shape, data.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]  # all but the classifier
    n_weights = sum(m.weight.numel() for m in layers)
    # why: weights to prune at each step, from the same cubic schedule; precomputed so the loop only prunes
    steps = {e: round(target_sparsity(e, cfg) * n_weights) for e in pruning_epochs(cfg)}
    done = 0
    gen = torch.Generator()
    x, y, n = data.x_train, data.y_train, len(data.x_train)
    val_acc = test_acc = math.nan
    for epoch in range(1, cfg.epochs + 1):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / cfg.epochs))
        gen.manual_seed(cfg.seed * 100_003 + epoch)  # why: run_trial's per-epoch order, so the work is identical
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch in steps:
            # why: rank the current weights (module.weight is only refreshed by the next forward)
            scores = {(m, "weight"): getattr(m, "weight_orig", m.weight).detach().abs() for m in layers}
            prune.global_unstructured(
                [(m, "weight") for m in layers], prune.L1Unstructured, scores, amount=steps[epoch] - done
            )
            done = steps[epoch]
        if epoch == cfg.epochs and done:
            for m in layers:
                prune.remove(m, "weight")
        val_acc, test_acc = accuracy(model, data.x_val, data.y_val), accuracy(model, data.x_test, data.y_test)
    return val_acc, test_acc


# --- the wattsweep loop ---------------------------------------------------------------


def checkpoint_report(where: str) -> ReportFn:
    """A report() that serialises the checkpoint state like the Ray adapter (in memory or to a temp file)."""

    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        if state is None:
            return
        if where == "memory":
            torch.save(state, io.BytesIO())
            return
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, os.path.join(d, "trial_state.pt"))

    return report


def wattsweep_loop(cfg: TrialConfig, ds: DatasetConfig, report: ReportFn) -> tuple[float, float]:
    out = run_trial(cfg, ds, report=report, options=RunOptions(num_threads=1))
    return float(out[M.ACCURACY]), float(out[M.TEST_ACCURACY])


def timed(fn: Callable[[], tuple[float, float]]) -> tuple[float, float, tuple[float, float]]:
    """(wall seconds, process CPU seconds, fn's result)."""
    t0, c0 = time.perf_counter(), time.process_time()
    accs = fn()
    return time.perf_counter() - t0, time.process_time() - c0, accs


# --- where run_trial's time goes ----------------------------------------------------------


class Timers:
    """Wall seconds per label; a timed call made inside another timed call counts to the outer one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._depth = 0

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - t0
                self.calls[label] += 1
                self._depth -= 1

        return timed_call


# (module or class, attribute, label); "*" marks the useful work the bare loop also does. Each is patched where
# the caller looks it up at call time: train() calls its module's globals, ModelWatch imports the flops and pruning
# functions inside its methods and calls measure_inference from trainables.watch.
PATCHES: list[tuple[Any, str, str]] = [
    (trainables.train, "train_epoch", "* train_epoch"),
    (trainables.train, "evaluate", "* evaluate (val + test, with losses)"),
    (Pruner, "step", "* Pruner.step (pruning + bookkeeping)"),
    (Pruner, "finalize", "* Pruner.finalize"),
    (trainables.flops, "count_flops", "count_flops (ctx.watch; after a reshape)"),
    (trainables.pruning, "prunable_weights", "prunable_weights (dense, at ctx.watch)"),
    (trainables.flops, "effective_flops", "effective_flops (every epoch)"),
    (trainables.pruning, "nonzero_params", "nonzero_params (every epoch)"),
    (trainables.pruning, "sparsity", "sparsity (every epoch)"),
    (Pruner, "__init__", "Pruner.__init__"),
    (trainables.train, "confusion_matrix", "confusion_matrix (last epoch)"),
    (trainables.watch, "measure_inference", "measure_inference (last epoch)"),
]
LABEL_BUILD = "build_model"
LABEL_OPT = "_make_optimizer"
LABEL_METER = "meter (make/start/read/stop/trace/provenance)"
LABEL_STATE = "checkpoint state_dict() (model + Adam)"
LABEL_SAVE = "checkpoint torch.save"


@contextmanager
def instrumented(timers: Timers) -> Iterator[None]:
    """Patch the calls run_trial makes with timers (restored on exit)."""
    real_make_opt, real_make_meter = trainables.train._make_optimizer, trainables.energy.make_meter

    def build(*args: Any, **kwargs: Any) -> nn.Module:
        model = build_model(*args, **kwargs)
        model.state_dict = timers.wrap(LABEL_STATE, model.state_dict)  # type: ignore[method-assign]
        return model

    def make_opt(*args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        opt = real_make_opt(*args, **kwargs)
        opt.state_dict = timers.wrap(LABEL_STATE, opt.state_dict)  # type: ignore[method-assign]
        return opt

    def make_meter(*args: Any, **kwargs: Any) -> Any:
        meter = real_make_meter(*args, **kwargs)
        for name in ("start", "read", "stop", "trace", "provenance"):
            setattr(meter, name, timers.wrap(LABEL_METER, getattr(meter, name)))
        return meter

    with ExitStack() as stack:
        for owner, attr, label in PATCHES:
            if not hasattr(owner, attr):
                # why: skipping would move the call's time into "unattributed" while its row silently disappears
                raise AttributeError(f"{owner.__name__}.{attr} is gone (row {label!r}): patch it where it lives now")
            stack.enter_context(mock.patch.object(owner, attr, timers.wrap(label, getattr(owner, attr))))
        stack.enter_context(mock.patch.object(trainables.train, "build_model", timers.wrap(LABEL_BUILD, build)))
        stack.enter_context(mock.patch.object(trainables.train, "_make_optimizer", timers.wrap(LABEL_OPT, make_opt)))
        # why: trainables.contract._open_meter imports make_meter from trainables.energy when each trial starts
        stack.enter_context(mock.patch.object(trainables.energy, "make_meter", timers.wrap(LABEL_METER, make_meter)))
        yield


def breakdown(cfg: TrialConfig, ds: DatasetConfig, where: str, reps: int) -> dict[str, tuple[float, float]]:
    """Median over ``reps`` instrumented runs: label -> (seconds per run, calls per run)."""
    runs: list[tuple[dict[str, float], dict[str, int]]] = []
    for _ in range(reps):
        timers = Timers()
        report = timers.wrap(LABEL_SAVE, checkpoint_report(where))
        with instrumented(timers):
            total, _, _ = timed(lambda: wattsweep_loop(cfg, ds, report))  # noqa: B023 - called right here
        timers.seconds["rest of run_trial (unattributed)"] = total - sum(timers.seconds.values())
        timers.seconds["total"] = total
        runs.append((dict(timers.seconds), dict(timers.calls)))
    labels = list(runs[0][0])
    return {
        k: (statistics.median(s.get(k, 0.0) for s, _ in runs), statistics.median(c.get(k, 0) for _, c in runs))
        for k in labels
    }


def print_breakdown(name: str, part: dict[str, tuple[float, float]], reps: int) -> None:
    """One row per timed component, largest first: ms per run and % of the same runs' useful ('*') time."""
    print(
        f"\nwhere run_trial's time goes, {name}: median of {reps} instrumented runs; '*' = work the bare loop does too"
    )
    print(f"  {'component':<46} {'calls':>5} {'ms/run':>8} {'% of *':>7}")
    rows = sorted(((k, v) for k, v in part.items() if k != "total"), key=lambda kv: -kv[1][0])
    # why: the denominator comes from the same runs, so other load on the machine largely cancels
    useful = sum(seconds for k, (seconds, _) in rows if k.startswith("*"))

    def row(label: str, seconds: float, calls: str = "") -> None:
        print(f"  {label:<46} {calls:>5} {seconds * 1e3:>8.1f} {seconds / useful:>7.1%}")

    for label, (seconds, calls) in rows:
        row(label, seconds, "" if label.startswith("rest") else f"{calls:.0f}")
    row("sum of '*' rows (useful work)", useful)
    row("sum of the other rows (overhead)", sum(seconds for k, (seconds, _) in rows if not k.startswith("*")))
    row("total run_trial", part["total"][0])


Timings = dict[str, dict[str, list[float]]]  # variant -> loop -> seconds per run


def measure(
    configs: dict[str, TrialConfig], data: Splits, ds: DatasetConfig, report: ReportFn, reps: int
) -> tuple[Timings, Timings, dict[str, dict[str, tuple[float, float]]]]:
    """Warm up, then ``reps`` interleaved runs of each loop per variant: wall and CPU seconds, last accuracies."""
    wall: Timings = {v: {"bare": [], "wattsweep": []} for v in configs}
    cpu: Timings = {v: {"bare": [], "wattsweep": []} for v in configs}
    accs: dict[str, dict[str, tuple[float, float]]] = {v: {} for v in configs}
    runners: dict[str, dict[str, Callable[[], tuple[float, float]]]] = {}
    for name, cfg in configs.items():
        torch.manual_seed(cfg.seed)  # why: run_trial seeds, then builds its model: same initial weights
        init_rng = torch.get_rng_state()
        runners[name] = {
            "bare": functools.partial(bare_loop, cfg, data, init_rng),
            "wattsweep": functools.partial(wattsweep_loop, cfg, ds, report),
        }
        for loop in ("bare", "wattsweep"):
            runners[name][loop]()  # warm-up: imports, dataset cache, allocator
    for rep in range(reps):
        for name in configs:
            # why: ABBA order, so slow drift (other load) does not favour whichever runs first
            for loop in ("bare", "wattsweep") if rep % 2 == 0 else ("wattsweep", "bare"):
                w, c, accs[name][loop] = timed(runners[name][loop])
                wall[name][loop].append(w)
                cpu[name][loop].append(c)
    return wall, cpu, accs


def print_summary(wall: Timings, cpu: Timings, accs: dict[str, dict[str, tuple[float, float]]]) -> bool:
    """The timing table and the ratios; True when every variant meets the target by median and by min (wall)."""
    med = statistics.median
    print(
        f"\n{'variant':<17} {'loop':<10} {'n':>2} {'wall median s':>13} {'min s':>6} {'max s':>6} {'cpu median s':>12}"
        f"  val / test acc"
    )
    for name in wall:
        for loop in ("bare", "wattsweep"):
            t, (va, te) = wall[name][loop], accs[name][loop]
            print(
                f"{name:<17} {loop:<10} {len(t):>2} {med(t):>13.3f} {min(t):>6.3f} {max(t):>6.3f} "
                f"{med(cpu[name][loop]):>12.3f}  {100 * va:.2f} / {100 * te:.2f} %"
            )
    print(
        f"\nwattsweep / bare  {'wall(median)':>12} {'wall(min)':>9} {'paired':>7} {'cpu(median)':>11} "
        f"{'bare spread':>11}  target <= {TARGET_RATIO} (wall, median and min)"
    )
    ok = True
    for name in wall:
        b, w = wall[name]["bare"], wall[name]["wattsweep"]
        r_med, r_min = med(w) / med(b), min(w) / min(b)
        paired = med(wi / bi for wi, bi in zip(w, b, strict=True))  # each run against its neighbour
        r_cpu = med(cpu[name]["wattsweep"]) / med(cpu[name]["bare"])
        met = max(r_med, r_min) <= TARGET_RATIO
        ok &= met
        same = "same accuracies" if accs[name]["bare"] == accs[name]["wattsweep"] else "ACCURACIES DIFFER"
        spread = (max(b) - min(b)) / med(b)
        noisy = "; NOISY: trust cpu and the breakdown" if spread > NOISY_SPREAD else ""
        print(
            f"{name:<17} {r_med:>12.3f} {r_min:>9.3f} {paired:>7.3f} {r_cpu:>11.3f} "
            f"{spread:>11.1%}  {'MET' if met else 'NOT MET'} ({same}{noisy})"
        )
    return ok


# --- main ---------------------------------------------------------------------------


def source_digest() -> str:
    """sha256 (12 hex) over trainables/**/*.py, and train.py's modification time: which loop was measured."""
    root = Path(trainables.train.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    mtime = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(Path(trainables.train.__file__).stat().st_mtime))
    return f"trainables/*.py sha256 {digest.hexdigest()[:12]}, train.py modified {mtime} UTC"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--reps", type=int, default=7, help="timed runs per loop and variant (default 7)")
    parser.add_argument("--breakdown-reps", type=int, default=3, help="instrumented run_trial runs per variant")
    parser.add_argument("--checkpoint", choices=["memory", "file"], default="memory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the raw timings here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ds = DatasetConfig()
    data = load_splits(ds)
    report = checkpoint_report(args.checkpoint)
    meter_source = trainables.energy.make_meter("cpu").source
    print(
        f"# loop_overhead: digits {len(data.x_train)}/{len(data.x_val)}/{len(data.x_test)}, resnet depth 8 width 16, "
        f"adam lr 1e-3 cosine, batch 64, {args.epochs} epochs, seed {args.seed}; checkpoint to {args.checkpoint}"
    )
    print(
        f"# {platform.machine()} {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread, python {platform.python_version()}, meter source {meter_source}"
    )
    print(f"# {source_digest()}; load average at start: {loadavg()}")

    configs = {
        name: TrialConfig(epochs=args.epochs, seed=args.seed, device="cpu", **extra) for name, extra in VARIANTS.items()
    }
    wall, cpu, accs = measure(configs, data, ds, report, args.reps)
    print(f"# load average after timed runs: {loadavg()}")
    ok = print_summary(wall, cpu, accs)

    parts: dict[str, dict[str, tuple[float, float]]] = {}
    for name, cfg in configs.items():
        parts[name] = breakdown(cfg, ds, args.checkpoint, args.breakdown_reps)
        print_breakdown(name, parts[name], args.breakdown_reps)
    print(f"# load average at end: {loadavg()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {**vars(args), "json": str(args.json)},
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "breakdown_s_calls": parts,
                },
                indent=1,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
