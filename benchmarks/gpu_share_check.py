"""Two trials share one GPU (``gpu_fraction=0.5`` each): do their bills add up to the device's energy?

Two processes burn matmuls on GPU 0, overlapping (the second starts ``--offset-s`` after the first); each opens
the meter a trial with ``resources: {gpu: 0.5}`` opens and reports its GPU joules. The parent reads the device's
energy counter from just before the first starts to just after the last stops. Prints both bills, their sum, the
device's energy and the ratio (sum / device; the ledger's goal is 1.0, less the seconds the processes spend
starting outside their windows, which the device also counts). On a machine without an NVIDIA GPU it says so.

Usage: python benchmarks/gpu_share_check.py [--burn-s 20] [--offset-s 5]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # why: runnable as a script from any folder


def trial(burn_s: float, delay_s: float, out: mp.Queue) -> None:
    import torch

    from trainables.energy import make_meter

    time.sleep(delay_s)
    a = torch.randn(4096, 4096, device="cuda")
    b = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    meter = make_meter("cuda", gpu_fraction=0.5)
    with meter:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < burn_s:
            a = (a @ b).tanh_()
            torch.cuda.synchronize()
    r = meter.read()
    out.put((r.components.get("gpu"), r.attribution_label, time.time()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--burn-s", type=float, default=20.0)
    ap.add_argument("--offset-s", type=float, default=5.0)
    args = ap.parse_args()
    try:
        from trainables.energy._factory import trial_gpus

        [device] = trial_gpus(0)
    except Exception as e:
        print(f"gpu_share_check: no NVIDIA GPU to check ({e}).")
        return 0
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    e0 = device.energy_mj()
    procs = [ctx.Process(target=trial, args=(args.burn_s, d, out)) for d in (0.0, args.offset_s)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    device_j = (device.energy_mj() - e0) / 1000.0
    billed = [r[0] for r in results]
    print(f"{'trial':>6} {'gpu J':>10} attribution")
    for i, (j, label, _) in enumerate(results):
        print(f"{i:>6} {j:>10.1f} {label}")
    print(
        f"sum {sum(billed):.1f} J, device {device_j:.1f} J (counter over both processes' lives), "
        f"ratio {sum(billed) / device_j:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
