"""How much of a sweep's wall time its trial slots spend training: wattsweep's sweep vs plain Ray Tune defaults.

busy fraction = sum over trials of the last reported ``time_s`` (the trial's training wall time)
                / (sweep wall time x parallel trial slots)

Both sweeps run the same trials (same trainable, same fixed config, learning rate drawn at random, 1 CPU per
trial, one slot per core), each in a fresh Python process of its own (so that neither inherits the other's
imports or environment), one after the other (order alternating over ``--reps``). The wall time runs from
the start of the sweep's own imports to its return:

  wattsweep   ``from orchestrator.sweep import run_sweep`` + ``run_sweep(...)``: Ray start, sweep, Ray
              shutdown and the report it builds (the report's share is printed on its own)
  plain-tune  ``import ray, ray.tune`` + ``ray.init`` + ``tune.Tuner(tune_trainable, param_space=...,
              TuneConfig(num_samples=N)).fit()`` + ``ray.shutdown``, every other setting at Tune's default
              (output silenced with verbose=0)

``time_s`` includes each epoch's ``tune.report`` round trip (the trial waits there for the driver), so busy
time is training plus reporting; the overhead left outside it is the per-trial and per-sweep cost. The issue's
workload is trials of about 5 s: the table prints the mean trial length, pick ``--epochs`` to match.

Usage:
    python benchmarks/busy_fraction.py [--trials 24] [--epochs 11] [--reps 1] [--only wattsweep|plain-tune]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # why: runnable as a script from any directory

from rundir import read_run
from search_spaces import SweepSpec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
FIXED: dict[str, Any] = {
    "model": "resnet",
    "depth": 14,
    "width": 16,
    "optimizer": "adam",
    "lr_decay": "cosine",
    "batch_size": 64,
    "prune_method": "unstructured",
    "prune_every": 4,
    "prune_ratio": 0.3,
    "seed": 0,
}
LR_RANGE = (3e-4, 1e-2)


@dataclass(frozen=True)
class SweepTiming:
    """One sweep's wall time and its trials' training time. Units: seconds."""

    kind: str
    trials: int
    slots: int
    wall_s: float
    busy_s: float
    report_s: float = 0.0  # part of wall_s spent building the report (wattsweep only)
    first_start_s: float | None = None  # from the call to the first trial's start (wattsweep only)
    after_last_s: float | None = None  # from the last trial's end to the call's return (wattsweep only)
    ray_init_s: float | None = None  # the local Ray cluster's start, ray.init (wattsweep only)
    first_train_s: float | None = None  # from the call to the first trial's training start (wattsweep only)

    @property
    def busy_fraction(self) -> float:
        return self.busy_s / (self.wall_s * self.slots)

    @property
    def busy_fraction_without_report(self) -> float:
        return self.busy_s / ((self.wall_s - self.report_s) * self.slots)


def busy_fraction_of_run(run_dir: Path, wall_s: float, slots: int) -> tuple[float, float]:
    """``(busy_s, busy_fraction)`` of a finished wattsweep run directory, given the sweep's wall time."""
    busy = sum(float(t.final.get("time_s", 0.0)) for t in read_run(run_dir).trials)
    return busy, busy / (wall_s * slots)


def sweep_spec(name: str, trials: int, epochs: int, seed: int) -> SweepSpec:
    """The benchmark's sweep: the fixed config, the learning rate drawn at random, no early stopping."""
    raw = {
        "name": name,
        "dataset": {"name": "digits"},
        "fixed": {**FIXED, "epochs": epochs},
        "space": {"lr": {"kind": "loguniform", "low": LR_RANGE[0], "high": LR_RANGE[1]}},
        "sampler": {"kind": "random", "seed": seed},
        "num_samples": trials,
        "resources": {"cpu": 1, "gpu": 0},
    }
    return parse_spec(raw, source="benchmarks/busy_fraction.py")


def _timed(get_fn: Callable[[], Callable[..., Any]], times: list[float]) -> Callable[..., Any]:
    """A wrapper that calls ``get_fn()`` with its arguments and appends each call's duration (s) to ``times``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return get_fn()(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - t)

    return wrapper


def run_wattsweep(storage: Path, trials: int, epochs: int, seed: int) -> SweepTiming:
    """One wattsweep sweep through ``run_sweep``, timed from its import to its return (run in a fresh process)."""
    t_call = time.time()
    t0 = time.perf_counter()
    import reports
    from orchestrator import ray_session
    from orchestrator.sweep import run_sweep

    name = f"busy_ws_{seed}"
    report_times: list[float] = []
    init_times: list[float] = []
    init_ray = ray_session.init_ray

    def report_builder() -> Any:
        # why imported inside the timed call: `reports` loads its builder (pandas, matplotlib) only when a report is
        # built (or, in the sweep's tail, in a thread), so what is left of that import counts as the report's time
        from reports.build import build_report

        return build_report

    timed_init = _timed(lambda: init_ray, init_times)
    timed_report = _timed(report_builder, report_times)

    reports.build_report = timed_report  # type: ignore[attr-defined]  # why: run_sweep imports it at call time
    ray_session.init_ray = timed_init  # why: init_ray_or_exit looks it up in the module on each call
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # why: one progress line per trial; the table says it all
            run_sweep(sweep_spec(name, trials, epochs, seed), storage=storage)
        wall = time.perf_counter() - t0
        t_return = time.time()
    finally:
        del reports.build_report  # back to the package's lazy attribute
        ray_session.init_ray = init_ray
    run = read_run(storage / name)
    starts = [(storage / name / "trials" / t.trial_id / "config.json").stat().st_mtime for t in run.trials]
    ends = [t.ended_at for t in run.trials if t.ended_at is not None]
    # why ended_at - time_s: the training start as the driver's clock sees it (time_s is the trial's metered
    # training time; ended_at is stamped by the driver, a few ms after the trial's last report)
    done = [t for t in run.trials if t.ended_at is not None and "time_s" in t.final]
    trains = [t.ended_at - float(t.final["time_s"]) for t in done if t.ended_at is not None]
    busy, _ = busy_fraction_of_run(storage / name, wall, _slots())
    return SweepTiming(
        "wattsweep",
        len(run.trials),
        _slots(),
        wall,
        busy,
        report_s=sum(report_times),
        first_start_s=min(starts) - t_call if starts else None,
        after_last_s=t_return - max(ends) if ends else None,
        ray_init_s=sum(init_times) if init_times else None,
        first_train_s=min(trains) - t_call if trains else None,
    )


def run_plain_tune(storage: Path, trials: int, epochs: int, seed: int) -> SweepTiming:
    """The same trials through a plain ``tune.Tuner`` with Tune's defaults, timed from ``import ray`` to shutdown."""
    t0 = time.perf_counter()
    import ray
    from ray import tune

    from trainables.config import DatasetConfig
    from trainables.contract import TrialPlan
    from trainables.loader import BUILTIN
    from trainables.ray_trainable import tune_trainable

    # why: workers must import this project (run_sweep does the same)
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    plan = TrialPlan(trainable=BUILTIN, dataset=DatasetConfig(name="digits"), default_epochs=epochs, num_threads=1)
    # why address="local": a bare ray.init() joins any cluster already running on the machine
    ray.init(
        address="local", num_cpus=_slots(), include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False
    )
    try:
        tuner = tune.Tuner(
            tune.with_parameters(tune_trainable, plan=plan),
            param_space={**FIXED, "epochs": epochs, "lr": tune.loguniform(*LR_RANGE)},
            tune_config=tune.TuneConfig(num_samples=trials),
            run_config=tune.RunConfig(name=f"busy_plain_{seed}", storage_path=str(storage), verbose=0),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    wall = time.perf_counter() - t0
    busy = sum(float((results[i].metrics or {}).get("time_s", 0.0)) for i in range(len(results)))
    return SweepTiming("plain-tune", len(results), _slots(), wall, busy)


RUNNERS = {"wattsweep": run_wattsweep, "plain-tune": run_plain_tune}


def run_in_child(kind: str, storage: Path, trials: int, epochs: int, seed: int) -> SweepTiming:
    """``RUNNERS[kind]`` in a fresh Python process (nothing imported, Tune's environment untouched)."""
    cmd = [sys.executable, __file__, "--child", kind, "--storage", str(storage)]
    cmd += ["--trials", str(trials), "--epochs", str(epochs), "--seed", str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} sweep failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return SweepTiming(**json.loads(out.stdout.strip().splitlines()[-1]))


def _slots() -> int:
    return os.cpu_count() or 1


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def print_table(rows: list[SweepTiming]) -> None:
    print(
        f"{'sweep':<11} {'trials':>6} {'slots':>5} {'wall s':>7} {'busy s':>7} {'idle core-s':>11} "
        f"{'idle/trial s':>12} {'trial s':>7} {'busy fraction':>13} {'w/o report':>10}"
    )
    for r in rows:
        idle = r.wall_s * r.slots - r.busy_s
        no_report = f"{r.busy_fraction_without_report:10.3f}" if r.report_s else f"{'-':>10}"
        print(
            f"{r.kind:<11} {r.trials:>6} {r.slots:>5} {r.wall_s:7.1f} {r.busy_s:7.1f} {idle:11.1f} "
            f"{idle / max(r.trials, 1):12.2f} {r.busy_s / max(r.trials, 1):7.2f} {r.busy_fraction:13.3f} {no_report}"
        )
    for r in rows:
        if r.kind == "wattsweep" and r.first_start_s is not None and r.after_last_s is not None:
            init = f"ray.init {r.ray_init_s:.1f} s, " if r.ray_init_s is not None else ""
            train = f"its training at {r.first_train_s:.1f} s, " if r.first_train_s is not None else ""
            print(
                f"  wattsweep: {init}first trial started at {r.first_start_s:.1f} s, {train}"
                f"{r.after_last_s:.1f} s from the last trial's end to the return (report {r.report_s:.1f} s)"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=11, help="epochs per trial (11: 3-5 s per trial on 2 cores)")
    ap.add_argument("--reps", type=int, default=1, help="repetitions of the pair, order alternating")
    ap.add_argument("--only", choices=tuple(RUNNERS), default=None)
    ap.add_argument("--child", choices=tuple(RUNNERS), help=argparse.SUPPRESS)  # internal: one sweep, JSON out
    ap.add_argument("--storage", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        timing = RUNNERS[args.child](args.storage, args.trials, args.epochs, args.seed)
        print(json.dumps(asdict(timing)))
        return 0
    print(
        f"busy_fraction: {args.trials} trials x {args.epochs} epochs (resnet depth {FIXED['depth']} width "
        f"{FIXED['width']}, digits), {_slots()} slots of 1 CPU; {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}; each sweep in a fresh process; load average before: {_load()}",
        flush=True,
    )
    kinds = list(RUNNERS) if args.only is None else [args.only]
    rows: list[SweepTiming] = []
    with tempfile.TemporaryDirectory(prefix="busy_fraction_") as tmp:
        for rep in range(args.reps):
            for kind in kinds if rep % 2 == 0 else kinds[::-1]:
                rows.append(run_in_child(kind, Path(tmp), args.trials, args.epochs, seed=rep))
                print(
                    f"  done: {kind} rep {rep}: busy fraction {rows[-1].busy_fraction:.3f} (load average {_load()})",
                    flush=True,
                )
    print()
    print_table(rows)
    by_kind = {k: [r.busy_fraction for r in rows if r.kind == k] for k in kinds}
    print()
    print("  ".join(f"{k}: busy fraction {sum(v) / len(v):.3f} (mean of {len(v)})" for k, v in by_kind.items()))
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
