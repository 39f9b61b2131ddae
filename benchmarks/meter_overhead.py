"""What the energy meter costs a training loop: the same small CPU loop with the meter off and on.

Variants, run interleaved (rotating order each repetition, so drift hits all alike):
  off          no meter
  per-epoch    meter started, read() every --read-every steps (as the trainable does per epoch), stopped
  every-step   meter started, read() after every step, stopped

Also times read() alone. Usage:
    python benchmarks/meter_overhead.py [--steps 1500] [--reps 5] [--read-every 100] [--backend auto]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # why: runnable as a script from any directory

from trainables.energy import make_meter

VARIANTS = ("off", "per-epoch", "every-step")


def build(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A small MLP on random MNIST-shaped batches (fixed seed: every run does the same work)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batches = [(torch.randn(64, 784), torch.randint(0, 10, (64,))) for _ in range(16)]
    return model, opt, batches


def run(variant: str, *, steps: int, read_every: int, backend: str) -> float:
    """Wall seconds for ``steps`` training steps (meter start/stop included when on)."""
    model, opt, batches = build()
    loss_fn = nn.CrossEntropyLoss()
    every = {"off": 0, "per-epoch": read_every, "every-step": 1}[variant]
    t0 = time.perf_counter()
    meter = make_meter("cpu", backend=backend) if every else None
    if meter is not None:
        meter.start()
    for step in range(1, steps + 1):
        x, y = batches[step % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if meter is not None and step % every == 0:
            meter.read()
    if meter is not None:
        meter.stop()
    return time.perf_counter() - t0


def read_cost_us(backend: str, n: int = 20_000) -> float:
    """Median cost of one read(), µs (5 batches of n/5)."""
    meter = make_meter("cpu", backend=backend)
    meter.start()
    per: list[float] = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n // 5):
            meter.read()
        per.append((time.perf_counter() - t0) / (n // 5) * 1e6)
    meter.stop()
    return statistics.median(per)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--read-every", type=int, default=100, help="steps per 'epoch' read (default 100)")
    parser.add_argument("--backend", default="auto", choices=["auto", "rapl", "estimate"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: least sensitive to other load)")
    parser.add_argument("--json", type=Path, help="also write the raw timings here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    source = make_meter("cpu", backend=args.backend).source
    print(f"# meter_overhead: {args.steps} steps x {args.reps} reps per variant, interleaved; meter source={source}")
    print(f"# {platform.machine()} {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, python {platform.python_version()}")  # fmt: skip
    run("off", steps=min(200, args.steps), read_every=args.read_every, backend=args.backend)  # warm-up
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for rep in range(args.reps):
        order = VARIANTS[rep % 3 :] + VARIANTS[: rep % 3]
        for v in order:
            times[v].append(run(v, steps=args.steps, read_every=args.read_every, backend=args.backend))

    base, base_min = statistics.median(times["off"]), min(times["off"])
    head = f"{'variant':<12} {'reads':>6} {'median s':>9} {'min s':>7} {'max s':>7} {'ms/step':>8}"
    print(f"\n{head} {'ratio(median)':>13} {'ratio(min)':>10}")
    for v in VARIANTS:
        reads = {"off": 0, "per-epoch": args.steps // args.read_every, "every-step": args.steps}[v]
        med, lo = statistics.median(times[v]), min(times[v])
        print(
            f"{v:<12} {reads:>6} {med:>9.3f} {lo:>7.3f} {max(times[v]):>7.3f} "
            f"{med / args.steps * 1e3:>8.3f} {med / base:>13.4f} {lo / base_min:>10.4f}"
        )
    cost = read_cost_us(args.backend)
    step_us = base_min / args.steps * 1e6
    print(f"\nread() alone: {cost:.2f} us (median of 5 x 4000); one step ('off', fastest run): {step_us:.0f} us")
    print(f"=> direct cost per step: every-step {cost / step_us * 100:.3f} %, "
          f"per-epoch (every {args.read_every}) {cost / (step_us * args.read_every) * 100:.5f} %")  # fmt: skip
    spread = (max(times["off"]) - min(times["off"])) / base * 100
    print(f"(run-to-run spread of 'off' alone: {spread:.1f} % of its median: ratios inside that are noise)")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "times_s": times}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
