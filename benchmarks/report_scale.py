"""How the report scales: a 10,000-trial x 50-epoch run, and 2-objective Pareto sorting from 1k to 1M points.

    python benchmarks/report_scale.py [--trials 10000] [--epochs 50] [--keep DIR]

Part 1 writes a synthetic run directory in the run-directory format (the same files RunWriter writes, written in
bulk: writing is not timed), then times ``build_report`` end to end: reading every trial's files, the tables,
the Pareto analysis, the figures, index.html, report.md and the CSV/parquet files. Stage times are printed.
The figures are the ten every run gets plus one per searched key; the synthetic manifest has no spec, so the report
takes the config keys that vary across trials (model, depth, width, shortcut, lr, prune_ratio, seed): 17 figures.
(Timings recorded before one figure per key replaced the lr/prune 'knobs' figure drew 11: not like for like.)
Part 2 times ``pareto_front_mask`` and ``non_dominated_sort`` on uniform random points and prints
time / (n log2 n), which stays flat when the cost is O(n log n).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports import pareto
from reports.build import report_from_tables
from reports.table import build_tables
from rundir import REPORT_DIR, read_run

_LINE = (
    '{{"epoch": {e}, "accuracy": {a:.5f}, "test_accuracy": {ta:.5f}, "loss": {lo:.5f}, "val_loss": {vl:.5f}, '
    '"energy_j": {en:.3f}, "dynamic_energy_j": {de:.3f}, "energy_source": "estimated-cpu", '
    '"energy_estimated": true, "time_s": {t:.3f}, "params": {p}, "flops": {f}, "effective_flops": {ef}, '
    '"sparsity": {sp:.3f}, "budget_epochs": {b}}}\n'
)


def _config(rng: np.random.Generator) -> dict[str, Any]:
    model = "ffnn" if rng.random() < 0.2 else "resnet"
    return {
        "model": model,
        "depth": int(rng.choice([8, 14, 20, 26, 32])),
        "width": int(rng.choice([8, 16, 32, 64])),
        "shortcut": bool(rng.random() < 0.7),
        "init": "xavier",
        "lr": float(10 ** rng.uniform(-4, -1)),
        "optimizer": "adam",
        "momentum": 0.9,
        "weight_decay": 0.0,
        "lr_decay": "cosine",
        "batch_size": 64,
        "epochs": 50,
        "prune_ratio": float(rng.choice([0.0, 0.25, 0.5, 0.75])),
        "prune_method": "unstructured",
        "prune_every": 5,
        "prune_schedule": "cubic",
        "seed": int(rng.integers(0, 1000)),
        "device": "cpu",
    }


def _final_extras(rng: np.random.Generator, cost: float, n_epochs: int) -> dict[str, object]:
    # what a finished trial adds to its last line: a 10-class confusion matrix, 20 layers' FLOPs, a 500-sample trace
    t = np.linspace(0, 0.5 * n_epochs, 500)
    return {
        "confusion_matrix": (np.eye(10, dtype=int) * 40 + rng.integers(0, 4, (10, 10))).tolist(),
        "layer_flops": {f"layer{k // 2}.{k % 2}.conv": int(cost * 50 * (1 + k % 3)) for k in range(20)},
        "power_trace": {
            "t_s": t.round(3).tolist(),
            "watts": (30 + 5 * np.sin(t)).round(2).tolist(),
            "source": "estimated-cpu",
        },
    }


def write_run(root: Path, n_trials: int, n_epochs: int, seed: int = 0) -> None:
    """A run directory of n_trials; ~70% complete, 20% stopped early, 5% failed, 5% running."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    (root / "wattsweep.json").write_text(
        json.dumps(
            {
                "name": "scale",
                "objectives": [{"metric": "accuracy", "direction": "max"}, {"metric": "energy_j", "direction": "min"}],
                "num_samples": n_trials,
                "status": "finished",
                "created_at": "2026-11-24T00:00:00Z",
                "dataset": {"name": "digits"},
                "energy": {"source": "estimated-cpu", "estimated": True},
                "carbon": {"grid_g_per_kwh": 475, "pue": 1.0},
            }
        )
    )
    states = rng.choice(["complete", "stopped", "failed", "running"], size=n_trials, p=[0.7, 0.2, 0.05, 0.05])
    epochs = np.arange(1, n_epochs + 1)
    for i, state in enumerate(states):
        cfg = _config(rng)
        d = root / "trials" / f"trial_{i:05d}"
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"trial_id": d.name, "config": cfg}))
        ran = n_epochs if state == "complete" else int(rng.integers(1, n_epochs))
        cost = float(cfg["depth"]) * float(cfg["width"]) * (1 - 0.5 * float(cfg["prune_ratio"])) * rng.uniform(0.8, 1.2)
        top = 0.6 + 0.3 * (1 - math.exp(-cost / 400)) + rng.normal(0, 0.02)
        acc = top * (1 - np.exp(-epochs[:ran] / 8)) + rng.normal(0, 0.005, ran)
        energy = cost * epochs[:ran]
        lines = [
            _LINE.format(
                e=e,
                a=a,
                ta=a - 0.01,
                lo=1 / e,
                vl=1.1 / e,
                en=en,
                de=0.8 * en,
                t=0.5 * e,
                p=1000,
                f=int(cost * 1000),
                ef=int(cost * 800),
                sp=cfg["prune_ratio"],
                b=n_epochs,
            )
            for e, a, en in zip(epochs[:ran], acc, energy, strict=True)
        ]
        if state == "complete":
            lines[-1] = lines[-1][:-2] + ", " + json.dumps(_final_extras(rng, cost, ran))[1:] + "\n"
        (d / "epochs.jsonl").write_text("".join(lines))
        if state != "running":
            (d / "state.json").write_text(
                json.dumps(
                    {
                        "state": state,
                        "error": "RuntimeError: synthetic" if state == "failed" else None,
                        "epochs_run": ran,
                        "budget_epochs": n_epochs,
                        "updated_at": 1.8e9 + i,
                    }
                )
            )


def time_report(root: Path) -> None:
    t0 = time.perf_counter()
    run = read_run(root)
    t1 = time.perf_counter()
    tables = build_tables(run)
    t2 = time.perf_counter()
    report_from_tables(tables, run.manifest, root / REPORT_DIR, run=run)
    t3 = time.perf_counter()
    n_epochs = len(tables.epochs)
    print(f"report: {len(tables.trials)} trials, {n_epochs} trial-epochs")
    print(f"  read run dir {t1 - t0:6.2f} s | tables {t2 - t1:6.2f} s | analysis+figures+html+files {t3 - t2:6.2f} s")
    print(f"  build_report total (read_run -> every file written): {t3 - t0:.2f} s")
    size = (root / REPORT_DIR / "index.html").stat().st_size
    html = (root / REPORT_DIR / "index.html").read_text()
    print(f"  index.html {size / 1e6:.1f} MB, {html.count('<img ')} figures drawn, {html.count('left out.')} left out")


def time_pareto(sizes: list[int]) -> None:
    print("2-objective Pareto sorting, uniform random points (accuracy max, energy min); best of 3")
    print(
        f"{'n':>9} {'front mask s':>13} {'ns/(n log2 n)':>14} {'full sort s':>12} {'ns/(n log2 n)':>14} {'fronts':>7}"
    )
    rng = np.random.default_rng(0)
    dirs = ("max", "min")
    for n in sizes:
        pts = rng.uniform(size=(n, 2))
        nlogn = n * math.log2(n)
        t_mask = min(_timed(pareto.pareto_front_mask, pts, dirs) for _ in range(3))
        t_sort = min(_timed(pareto.non_dominated_sort, pts, dirs) for _ in range(3 if n < 10**6 else 1))
        fronts = int(pareto.non_dominated_sort(pts, dirs).max()) + 1
        print(
            f"{n:>9} {t_mask:>13.4f} {1e9 * t_mask / nlogn:>14.2f} {t_sort:>12.4f} {1e9 * t_sort / nlogn:>14.2f}"
            f" {fronts:>7}"
        )


def _timed(fn: Callable[..., object], *args: object) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--keep", type=Path, default=None, help="write the run here and keep it")
    args = ap.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, numpy {np.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="wattsweep-bench-"))
    root = args.keep or tmp / "run"
    try:
        t = time.perf_counter()
        write_run(root, args.trials, args.epochs)
        print(f"(writing the synthetic run, not timed below: {time.perf_counter() - t:.1f} s)")
        time_report(root)
        time_pareto([1_000, 10_000, 100_000, 1_000_000])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
