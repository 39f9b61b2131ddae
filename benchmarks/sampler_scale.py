"""The driver's cost of Optuna's samplers as a sweep grows to thousands of trials (issue 19).

Each sampler runs the same simulated sweep, side by side in one run: 2 objectives (accuracy max, energy min), the
default sweep's four keys (depth and width choices, log-uniform learning rate, uniform pruning ratio), ``--slots``
trials always in flight (asked, not yet told: what a cluster with that many slots keeps pending), each told after
``--epochs`` per-epoch user attributes (what wattsweep stores per report), on the journal-file storage a run uses.
Objective values are a fixed function of the config plus noise, so every sampler sees the same landscape.

Printed: the driver's CPU (thread time) per trial for ask and for tell+attributes, as the mean over the trials
around each size (the marginal cost there, not the mean since the start).

Usage: python benchmarks/sampler_scale.py [--trials 2000] [--at 100 1000 2000] [--slots 64]
                                          [--samplers random nsga2 tpe tpe-liar]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from collections import deque
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

SAMPLERS = ("random", "nsga2", "tpe", "tpe-liar")
WINDOW = 50  # trials around each size whose costs are averaged


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=name == "tpe-liar")


def objectives(params: dict[str, Any], rng: random.Random) -> list[float]:
    cap = math.log2(params["width"]) + params["depth"] / 8
    acc = 1 - 0.5 / cap - abs(math.log10(params["lr"]) + 2.5) / 20 - params["prune_ratio"] / 10
    energy = params["depth"] * params["width"] * (1 - params["prune_ratio"] / 2)
    return [acc + rng.gauss(0, 0.01), energy * (1 + rng.gauss(0, 0.05))]


def run(name: str, trials: int, slots: int, epochs: int, at: list[int]) -> dict[int, tuple[float, float]]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        storage = JournalStorage(JournalFileBackend(os.path.join(tmp, "journal.log")))
        study = optuna.create_study(storage=storage, directions=["maximize", "minimize"], sampler=make_sampler(name, 0))
        study.set_metric_names(["accuracy", "energy_j"])
        ask_s: list[float] = []
        tell_s: list[float] = []
        pending: deque[optuna.trial.Trial] = deque()
        for i in range(trials + slots):
            if len(pending) == slots or i >= trials:  # a slot frees: the oldest pending trial ends
                trial = pending.popleft()
                t = time.thread_time()
                values = objectives(trial.params, rng)
                for epoch in range(1, epochs + 1):
                    trial.set_user_attr(f"epoch_{epoch}", [v * epoch / epochs for v in values])
                study.tell(trial, values)
                tell_s.append(time.thread_time() - t)
                if not pending and i >= trials:
                    break
            if i < trials:
                t = time.thread_time()
                trial = study.ask()
                trial.suggest_categorical("depth", [8, 14, 20])
                trial.suggest_categorical("width", [8, 16, 32])
                trial.suggest_float("lr", 3e-4, 1e-2, log=True)
                trial.suggest_float("prune_ratio", 0.0, 0.8)
                ask_s.append(time.thread_time() - t)
                pending.append(trial)
    out = {}
    for n in at:
        lo, hi = max(0, n - WINDOW), min(trials, n)
        out[n] = (sum(ask_s[lo:hi]) / (hi - lo), sum(tell_s[lo:hi]) / (hi - lo))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--at", type=int, nargs="+", default=[100, 1000, 2000])
    ap.add_argument("--slots", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    args = ap.parse_args()
    at = [n for n in args.at if n <= args.trials]
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, optuna"
        f" {optuna.__version__}; {args.slots} trials in flight, {args.epochs} attributes per trial; ms of driver CPU"
        f" per trial, mean over the {WINDOW} trials before each size; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'sampler':<10} " + " ".join(f"{'ask@' + str(n):>10} {'tell@' + str(n):>10}" for n in at) + "  wall s")
    for name in args.samplers:
        t0 = time.perf_counter()
        costs = run(name, args.trials, args.slots, args.epochs, at)
        cells = " ".join(f"{costs[n][0] * 1e3:>10.2f} {costs[n][1] * 1e3:>10.2f}" for n in at)
        print(f"{name:<10} {cells}  {time.perf_counter() - t0:6.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
