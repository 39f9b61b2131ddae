"""Does structured pruning keep the accuracy while cutting the FLOPs? Digits, default ResNet, 3 seeds.

Trains the default ResNet (depth 8, width 16, adam, lr 1e-3, cosine, batch 64)
for EPOCHS epochs on the CPU with one thread, unpruned and with prune_ratio 0.5
structured (prune_every 5, cubic), through the real training loop
(``trainables.train.run_trial``: batch norms recalibrated and Adam's state carried
over to the surviving weights after each step). Prints test accuracy and effective
FLOPs per run, the validation accuracy right after each pruning step, their means,
the accuracy gap and the FLOPs reduction, and whether the targets hold (gap <= 1.5
points, effective FLOPs >= 40% lower).

    python benchmarks/pruning_check.py [--epochs 20] [--seeds 0 1 2]
    python benchmarks/pruning_check.py --step-cost   # seconds the pruning steps take per trial
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # why: runnable as a script from any folder

import torch

from trainables.config import DatasetConfig, TrialConfig
from trainables.data import load_splits
from trainables.models import build_model
from trainables.pruning import Pruner, pruning_epochs
from trainables.train import RunOptions, _make_optimizer, run_trial

MAX_GAP_POINTS = 1.5
MIN_FLOPS_REDUCTION = 0.40


def step_cost(epochs: int, repeats: int = 7) -> None:
    """Median seconds of one trial's structured steps: recalibration + optimizer carry vs bare step + fresh Adam."""
    data = load_splits(DatasetConfig())
    x, y = data.x_train, data.y_train

    def once(recover: bool) -> float:
        cfg = TrialConfig(
            epochs=epochs, prune_ratio=0.5, prune_method="structured", bn_recalibrate=recover, device="cpu"
        )
        torch.manual_seed(0)
        model = build_model(cfg, data.input_shape, data.num_classes)
        pruner, opt, total = Pruner(model, cfg, x[:1], calibration=x), _make_optimizer(cfg, model), 0.0
        for epoch in pruning_epochs(cfg):
            torch.nn.functional.cross_entropy(model(x[:64]), y[:64]).backward()  # why: Adam has state to carry
            opt.step()
            t0 = time.perf_counter()
            model, changed = pruner.step(model, epoch, opt if recover else None)
            if changed and not recover:
                opt = _make_optimizer(cfg, model)
            total += time.perf_counter() - t0
        return total

    for recover in (True, False, True, False):  # warm-up
        once(recover)
    new = statistics.median(once(True) for _ in range(repeats))
    old = statistics.median(once(False) for _ in range(repeats))
    print(
        f"{len(pruning_epochs(TrialConfig(epochs=epochs, prune_ratio=0.5)))} structured steps per trial, "
        f"median of {repeats}: {new:.3f} s with recalibration + optimizer carry, {old:.3f} s bare + fresh Adam "
        f"(+{new - old:.3f} s per trial)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--step-cost", action="store_true", help="time the pruning steps only, then exit")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.step_cost:
        step_cost(args.epochs)
        return 0
    ds = DatasetConfig()  # digits, split_seed 0: every run sees the same split
    variants = {
        "unpruned": {},
        "structured-0.5": {"prune_ratio": 0.5, "prune_method": "structured", "prune_every": 5},
    }
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in variants}
    print(f"digits, resnet depth 8 width 16, adam lr 1e-3 cosine, batch 64, {args.epochs} epochs, CPU, 1 thread")
    for name, extra in variants.items():
        for seed in args.seeds:
            cfg = TrialConfig(epochs=args.epochs, seed=seed, device="cpu", **extra)  # type: ignore[arg-type]
            val: dict[int, float] = {}
            t0 = time.perf_counter()
            out = run_trial(
                cfg,
                ds,
                report=lambda m, _state, val=val: val.__setitem__(m["epoch"], m["accuracy"]),  # type: ignore[misc]
                options=RunOptions(num_threads=1, checkpoint=False),
            )
            acc, flops = float(out["test_accuracy"]), int(out["effective_flops"])
            results[name].append((acc, flops))
            after = " / ".join(f"{100 * val[e]:.0f}" for e in pruning_epochs(cfg))
            print(
                f"{name:15s} seed {seed}: test accuracy {100 * acc:6.2f} %  effective FLOPs {flops:>9,d}  "
                f"params {out['params']:>6,d}  ({time.perf_counter() - t0:.1f} s)"
                + (f"  val acc after pruning steps {after} %" if after else "")
            )
    mean = {name: (statistics.mean(a for a, _ in r), statistics.mean(f for _, f in r)) for name, r in results.items()}
    (acc_u, flops_u), (acc_p, flops_p) = mean["unpruned"], mean["structured-0.5"]
    gap, cut = 100 * (acc_u - acc_p), 1 - flops_p / flops_u
    n = len(args.seeds)
    # why: same seed, same split: the per-seed difference is the paired comparison; its spread says how sure we are
    diffs = [100 * (u[0] - p[0]) for u, p in zip(results["unpruned"], results["structured-0.5"], strict=True)]
    se = statistics.stdev(diffs) / n**0.5 if n > 1 else float("nan")
    print(f"mean over n={n} seeds:")
    print(f"  unpruned        test accuracy {100 * acc_u:6.2f} %  effective FLOPs {flops_u:>11,.0f}")
    print(f"  structured-0.5  test accuracy {100 * acc_p:6.2f} %  effective FLOPs {flops_p:>11,.0f}")
    ok_gap, ok_cut = gap <= MAX_GAP_POINTS, cut >= MIN_FLOPS_REDUCTION
    print(
        f"accuracy gap {gap:+.2f} points, paired standard error {se:.2f} (target <= {MAX_GAP_POINTS}): "
        f"{'PASS' if ok_gap else 'FAIL'}"
    )
    print(
        f"effective FLOPs reduction {100 * cut:.1f} % (target >= {100 * MIN_FLOPS_REDUCTION:.0f} %): "
        f"{'PASS' if ok_cut else 'FAIL'}"
    )
    return 0 if ok_gap and ok_cut else 1


if __name__ == "__main__":
    sys.exit(main())
