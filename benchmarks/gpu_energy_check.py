"""Check the NVML meter on a real NVIDIA GPU.

1. idle power (measure_idle_power) before any CUDA work;
2. a fixed matmul burn (--burn-s, default 30 s): counter energy vs integrated power, their
   ratio, mean power, the counter's measured update period, temperature start/stop;
3. a short training loop, meter off vs on (read every step and per "epoch"), interleaved:
   the meter's overhead on step time.

On a machine without an NVIDIA GPU it says so (and why) and exits 0.
Usage: python benchmarks/gpu_energy_check.py [--quick] [--burn-s 30] [--idle-s 5] [--steps 300] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # why: runnable as a script from any folder

from trainables.energy import BaseMeter, co2e_g, make_meter, measure_idle_power
from trainables.energy._doctor import check_nvml
from trainables.energy._factory import trial_gpus


def burn(seconds: float, n: int) -> tuple[int, float]:
    """Matmuls of two n x n fp32 matrices until ``seconds`` pass; returns (matmuls done, wall s)."""
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    torch.cuda.synchronize()
    t0, done = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            a = (a @ b).tanh_()  # why: tanh keeps values bounded across thousands of products
        torch.cuda.synchronize()
        done += 10
    return done, time.perf_counter() - t0


def train(steps: int, meter: BaseMeter | None, read_every: int) -> float:
    """A small conv net on random CIFAR-shaped batches; returns wall seconds (meter start/stop included)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    ).cuda()  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(256, 3, 32, 32, device="cuda"), torch.randint(0, 10, (256,), device="cuda")
    loss_fn = nn.CrossEntropyLoss()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    if meter is not None:
        meter.start()
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if meter is not None and step % read_every == 0:
            meter.read()
    if meter is not None:
        meter.stop()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burn-s", type=float, default=30.0)
    parser.add_argument("--idle-s", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=8192, help="matmul size")
    parser.add_argument("--quick", action="store_true", help="burn 5 s, idle 2 s, 100 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.burn_s, args.idle_s, args.steps = 5.0, 2.0, 100

    nvml = check_nvml()
    if not torch.cuda.is_available() or not nvml.available:
        print("gpu_energy_check: no NVIDIA GPU found, nothing to check.")
        print(f"  torch.cuda.is_available() = {torch.cuda.is_available()}")
        print(f"  NVML: {nvml.detail}" + (f" (fix: {nvml.fix})" if nvml.fix else ""))
        return 0

    print(f"# {nvml.detail}")
    idle = measure_idle_power(args.idle_s, cpu=False)
    for uuid, w in idle.items():
        print(f"idle power {uuid}: {w:.1f} W over {args.idle_s:g} s")

    torch.cuda.init()
    idle_w = idle.get(trial_gpus(0)[0].uuid)  # why: by UUID, cuda:0 need not be NVML's GPU 0
    meter = make_meter("cuda:0", backend="nvml", idle_power_w=idle_w)
    meter.start()
    n_mm, wall = burn(args.burn_s, args.n)
    r = meter.stop()
    prov = meter.provenance()
    dev = prov["devices"][0]
    tflops = 2 * args.n**3 * n_mm / wall / 1e12
    print(f"\nburn: {n_mm} matmuls {args.n}^3 fp32 in {wall:.1f} s ({tflops:.1f} TFLOP/s)")
    print(f"  counter energy     {r.energy_j:10.1f} J   ({r.energy_j / r.time_s:.1f} W mean)")
    if r.crosscheck_energy_j is not None:
        print(f"  integrated power   {r.crosscheck_energy_j:10.1f} J   ratio integral/counter {r.crosscheck_ratio:.4f}")
    print(f"  dynamic (- idle)   {r.dynamic_energy_j:10.1f} J   idle baseline {idle_w} W")
    print(f"  power samples      {prov['n_power_samples']} at {prov['sample_interval_s']} s")
    print(f"  counter period     {dev['counter_update_period_s']} s (measured)")
    print(f"  temperature        {dev['temperature_start_c']} -> {dev['temperature_stop_c']} C")
    print(f"  power limit        {dev['power_limit_w']} W")
    print(f"  versions           driver {prov['driver_version']}, NVML {prov['nvml_version']}")
    print(f"  CO2e (world grid)  {co2e_g(r.energy_j):.2f} g")

    train(20, None, 1)  # warm-up: cuDNN autotune, allocator
    per_epoch = max(1, args.steps // 5)
    times: dict[str, list[float]] = {"off": [], f"read/{per_epoch}": [], "read/1": []}
    for rep in range(args.reps):
        names = list(times)
        for name in names[rep % 3 :] + names[: rep % 3]:
            every = {"off": 0, f"read/{per_epoch}": per_epoch, "read/1": 1}[name]
            m = make_meter("cuda:0", backend="nvml") if every else None
            times[name].append(train(args.steps, m, every or 1))
    base = statistics.median(times["off"])
    print(f"\ntraining loop: {args.steps} steps x {args.reps} reps, interleaved")
    for name, ts in times.items():
        med = statistics.median(ts)
        per_step_ms = med / args.steps * 1e3
        print(f"  {name:<10} median {med:.3f} s  {per_step_ms:.3f} ms/step  overhead {100 * (med / base - 1):+.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
