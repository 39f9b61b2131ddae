"""What the driver costs at cluster scale: many slots, many trials that only wait (issue 19).

A local Ray cluster started with many logical CPUs (``ray start --head --num-cpus=SLOTS``, its own ports and temp
dir) runs trials that spend no CPU: each epoch waits ``--wait`` seconds and reports. What is measured is the
orchestration. Two arms, side by side in one run, each in a fresh Python process and on a fresh cluster:

  wattsweep   ``run_sweep`` of a spec whose trainable is ``wait_train`` below, through the public trainable
              contract (``train(config, ctx)``, ``ctx.report`` per epoch); the spec's scheduler (``--scheduler``),
              the default sampler; the trials' reports carry the metric contract (energy, time, ...)
  plain-tune  ``tune.Tuner`` of a function that waits and calls ``tune.report`` per epoch, Tune's defaults
  plain-tune-reuse  the same with ``reuse_actors=True`` (as wattsweep runs Tune: one process per slot, not per
              trial), so that "beyond plain Tune's own" compares like with like
  plain-tune-ckpt   the same again, each report with a checkpoint (a small file), keeping one per trial (as
              wattsweep does, so that a trial lost with its node or driver resumes): plain Tune with the same fault
              tolerance

Printed per arm and size: trials and reports per second of sweep wall time; busy fraction of the slots
(trial wait time / (sweep wall time x slots)); the driver's CPU per trial and per report (its process CPU time,
all threads), and for wattsweep the part spent in each of its components (thread CPU time of the driver's calls
into search, recorder, scheduler, limiter, live view; "tune+ray" is the rest); the driver's memory growth per
1,000 trials (slope of its RSS against trials ended, second half of the sweep); the report's build time.

The "sweep wall time" runs from ``run_sweep`` / ``Tuner.fit`` being called to its return, without the cluster's
start (done before) but with wattsweep's report (printed apart too).

Memory bounds the slots here: each wattsweep trial actor imports torch and torch._dynamo (the contract seeds torch,
saves state with it and warms dynamo up), ~440 MB private memory each (smaps_rollup, 2026-12-02); 64 of them do not
fit on a 24 GiB machine beside anything else.

With two or more ``--epochs`` (the same trials, each run with every epoch count), the driver's CPU per trial is fitted
as a + b x epochs for each arm: b is its CPU per epoch report, a its CPU per trial beside the reports (asked, started,
ended); the two arms' a and b are printed beside each other ("beyond plain Tune's own": the differences). One
epoch count gives only CPU / trials and CPU / reports, which mixes the two.

Usage: python benchmarks/scale.py [--trials 100 1000] [--slots 24] [--wait 10] [--epochs 4 [8]]
                                  [--scheduler moasha|fifo]
                                  [--arms wattsweep plain-tune plain-tune-reuse plain-tune-ckpt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("wattsweep", "plain-tune", "plain-tune-reuse", "plain-tune-ckpt")
PLAIN = ARMS[1:]
PARTS = ("search", "limiter", "scheduler", "recorder", "live")


def wait_train(config: dict[str, Any], ctx: Any) -> None:
    """The benchmark's trainable (public contract): waits ``wait_s`` per epoch, reports a made-up accuracy."""
    x = float(config["x"])
    for epoch in range(ctx.start_epoch + 1, ctx.epochs + 1):
        time.sleep(float(config["wait_s"]))
        ctx.report({"accuracy": 1.0 - 0.5 / (1.0 + epoch * x), "loss": 1.0 / (1.0 + epoch * x)})


# --- the cluster -------------------------------------------------------------------------------------------------


def _start_cluster(slots: int, temp: Path) -> tuple[str, list[str]]:
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.ray_nodes import RAY, cluster_env, free_port

    port, dash = free_port(), free_port()
    cmd = [
        RAY,
        "start",
        "--head",
        f"--num-cpus={slots}",
        f"--port={port}",
        "--include-dashboard=false",
        f"--dashboard-port={dash}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--temp-dir={temp}",
        "--node-ip-address=127.0.0.1",
    ]
    os.environ.update(cluster_env())  # why: the cluster's token, for this process's driver too
    subprocess.run(cmd, env=cluster_env(), check=True, capture_output=True, timeout=180)
    return f"127.0.0.1:{port}", [f":{port}", f"={port}", str(temp)]


def _stop_cluster(marks: list[str]) -> None:
    from tests.fixtures.ray_nodes import kill_processes

    kill_processes(*marks)


# --- one arm, in its own process ---------------------------------------------------------------------------------


def rss_mb() -> float:
    """This process's resident memory now (MB), from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Meter:
    """Thread CPU time of the driver's calls into each wattsweep component, and its RSS against trials ended."""

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(PARTS, 0.0)
        self._inner: list[float] = []
        self.ended = 0
        self.rss: list[tuple[int, float]] = []

    def wrap(self, cls: type, part: str, names: tuple[str, ...]) -> None:
        for name in names:
            original = cls.__dict__.get(name)
            if original is None:
                continue

            def timed(*args: Any, _original: Any = original, **kw: Any) -> Any:
                # why the stack: a part called from another (the limiter asks the search) counts once, as itself
                self._inner.append(0.0)
                t = time.thread_time()
                try:
                    return _original(*args, **kw)
                finally:
                    spent = time.thread_time() - t
                    self.cpu[part] += spent - self._inner.pop()
                    if self._inner:
                        self._inner[-1] += spent

            setattr(cls, name, timed)

    def trial_ended(self) -> None:
        self.ended += 1
        self.rss.append((self.ended, rss_mb()))

    def growth_mb_per_1000(self) -> float | None:
        import numpy as np

        pts = self.rss[len(self.rss) // 2 :]
        if len(pts) < 10:
            return None
        n, mb = np.array(pts).T
        return float(np.polyfit(n, mb, 1)[0] * 1000)


def _instrument(meter: _Meter) -> None:
    from orchestrator import limiter, moasha, recorder, search

    hooks = ("on_trial_result", "on_trial_complete", "on_trial_start", "on_trial_error", "on_step_begin")
    meter.wrap(search.HonestOptunaSearch, "search", ("suggest", "on_trial_result", "on_trial_complete"))
    meter.wrap(limiter.FollowClusterLimiter, "limiter", ("suggest",))
    meter.wrap(moasha.MOASHAScheduler, "scheduler", ("on_trial_result", "on_trial_complete", "choose_trial_to_run"))
    meter.wrap(recorder.RunRecorder, "recorder", hooks)
    try:
        from orchestrator import live
    except ImportError:
        live = None
    if live is not None:
        for obj in vars(live).values():
            if isinstance(obj, type) and obj.__module__ == live.__name__:
                meter.wrap(obj, "live", tuple(n for n in vars(obj) if n.startswith("on_")))
    original = recorder.RunRecorder.on_trial_complete

    def complete(self: Any, *args: Any, **kw: Any) -> Any:
        meter.trial_ended()
        return original(self, *args, **kw)

    recorder.RunRecorder.on_trial_complete = complete  # type: ignore[method-assign]


def _result(
    trials: int, reports: int, wall: float, cpu: float, args: argparse.Namespace, meter: _Meter, report_s: float | None
) -> dict[str, Any]:
    """One arm's figures (seconds, MB) as the table reads them."""
    return {
        "trials": trials,
        "reports": reports,
        "wall_s": wall,
        "busy_s": reports * args.wait,
        "driver_cpu_s": cpu,
        "parts_cpu_s": meter.cpu,
        "rss_growth_mb_per_1000": meter.growth_mb_per_1000(),
        "report_s": report_s,
    }


def run_wattsweep(address: str, storage: Path, args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from orchestrator.sweep import run_sweep
    from reports.build import build_report
    from rundir import read_run
    from search_spaces import parse_spec

    meter = _Meter()
    _instrument(meter)
    raw = {
        "name": "scale",
        "trainable": "benchmarks.scale:wait_train",
        "fixed": {"epochs": args.epochs, "wait_s": args.wait},
        "space": {"x": {"kind": "uniform", "low": 0.01, "high": 1.0}},
        "objectives": [{"metric": "accuracy", "direction": "max"}, {"metric": "energy_j", "direction": "min"}],
        "num_samples": args.n,
        "resources": {"cpu": 1, "gpu": 0},
    }
    if args.scheduler == "moasha":
        raw["scheduler"] = {"kind": "moasha", "grace_period": 1, "reduction_factor": 3}
    spec = parse_spec(raw, source="benchmarks/scale.py")
    cpu0, t0 = time.process_time(), time.perf_counter()
    report_dir = run_sweep(spec, storage=storage, address=address)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    run_dir = report_dir.parent
    t = time.perf_counter()
    build_report(run_dir)
    report_s = time.perf_counter() - t
    trials = read_run(run_dir).trials
    reports = sum(int(tr.final.get("epoch", 0)) for tr in trials)
    return _result(len(trials), reports, wall, cpu, args, meter, report_s)


def _plain_train(config: dict[str, Any]) -> None:
    from ray import tune

    x = float(config["x"])
    for epoch in range(1, int(config["epochs"]) + 1):
        time.sleep(float(config["wait_s"]))
        metrics = {"accuracy": 1.0 - 0.5 / (1.0 + epoch * x), "epoch": epoch}
        if not config["checkpoint"]:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as d:
            Path(d, "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def run_plain(address: str, storage: Path, args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from ray import tune

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    rss: list[tuple[int, float]] = []

    class Ended(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            rss.append((len(rss) + 1, rss_mb()))

    tuner = tune.Tuner(
        _plain_train,
        param_space={
            "x": tune.uniform(0.01, 1.0),
            "epochs": args.epochs,
            "wait_s": args.wait,
            "checkpoint": args.arm == "plain-tune-ckpt",
        },
        tune_config=tune.TuneConfig(num_samples=args.n, reuse_actors=args.arm != "plain-tune"),
        run_config=tune.RunConfig(
            storage_path=str(storage),
            name="plain",
            verbose=0,
            callbacks=[Ended()],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    grid = tuner.fit()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    reports = sum(int((r.metrics or {}).get("training_iteration", 0)) for r in grid)  # type: ignore[attr-defined]
    meter = _Meter()
    meter.cpu, meter.rss = {}, rss
    ray.shutdown()
    return _result(len(grid), reports, wall, cpu, args, meter, None)


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="wattsweep-scale-") as tmp:
        address, marks = _start_cluster(args.slots, Path(tmp) / "ray")
        try:
            run = run_wattsweep if args.arm == "wattsweep" else run_plain
            out = run(address, Path(tmp) / "runs", args)
        finally:
            _stop_cluster(marks)
    print("RESULT " + json.dumps(out), flush=True)


# --- the table ---------------------------------------------------------------------------------------------------


def _row(arm: str, n: int, epochs: int, slots: int, r: dict[str, Any]) -> str:
    per_trial = r["driver_cpu_s"] / max(r["trials"], 1) * 1e3
    per_report = r["driver_cpu_s"] / max(r["reports"], 1) * 1e3
    growth = r["rss_growth_mb_per_1000"]
    report = "" if r["report_s"] is None else f"{r['report_s']:.1f}"
    return (
        f"{arm:<16} {n:>6} {epochs:>3} {r['trials']:>6} {r['reports']:>7} {r['wall_s']:>8.1f}"
        f" {r['trials'] / r['wall_s']:>8.2f}"
        f" {r['reports'] / r['wall_s']:>8.2f} {r['busy_s'] / (r['wall_s'] * slots):>5.2f} {per_trial:>8.1f}"
        f" {per_report:>8.2f} {'' if growth is None else f'{growth:.0f}':>8} {report:>8}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--slots", type=int, default=24)
    ap.add_argument("--wait", type=float, default=10.0, help="seconds each epoch waits")
    ap.add_argument("--epochs", type=int, nargs="+", default=[4], help="two or more: CPU per report fitted")
    ap.add_argument("--scheduler", choices=("moasha", "fifo"), default="moasha")
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    ap.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)  # the child process's arm
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.arm:
        args.epochs = args.epochs[0]
        child(args)
        return
    print(
        f"# {platform.node()} {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()};"
        f" {args.slots} slots, {'/'.join(map(str, args.epochs))} epochs of {args.wait:g} s waiting,"
        f" scheduler {args.scheduler}"
    )
    head = (
        f"{'arm':<16} {'asked':>6} {'ep':>3} {'trials':>6} {'reports':>7} {'wall s':>8} {'trial/s':>8} {'rep/s':>8}"
        f" {'busy':>5} {'ms/trial':>8} {'ms/rep':>8} {'MB/1000':>8} {'report s':>8}"
    )
    print(head)
    results: dict[tuple[str, int, int], dict[str, Any]] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for n in args.trials:
        for epochs in args.epochs:
            for arm in args.arms:
                cmd = [sys.executable, __file__, "--arm", arm, "--n", str(n), "--slots", str(args.slots)]
                cmd += ["--wait", str(args.wait), "--epochs", str(epochs), "--scheduler", args.scheduler]
                p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
                lines = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
                if p.returncode != 0 or not lines:
                    print(f"{arm} n={n} failed (exit {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
                    continue
                results[arm, n, epochs] = json.loads(lines[-1].removeprefix("RESULT "))
                print(_row(arm, n, epochs, args.slots, results[arm, n, epochs]), flush=True)
    for n in args.trials:
        for epochs in args.epochs:
            _print_ratios(results, n, epochs)
        if len(args.epochs) > 1:
            _print_fit(results, n, args)


def _print_ratios(results: dict[tuple[str, int, int], dict[str, Any]], n: int, epochs: int) -> None:
    ws = results.get(("wattsweep", n, epochs))
    tag = f"{n} x {epochs} epochs"
    if ws:
        parts = ", ".join(f"{k} {v / ws['trials'] * 1e3:.1f}" for k, v in ws["parts_cpu_s"].items())
        rest = ws["driver_cpu_s"] - sum(ws["parts_cpu_s"].values())
        print(f"wattsweep {tag}: driver CPU ms/trial by part: {parts}, tune+ray {rest / ws['trials'] * 1e3:.1f}")
    for plain in PLAIN:
        pt = results.get((plain, n, epochs))
        if not (ws and pt):
            continue
        extra_trial = (ws["driver_cpu_s"] / ws["trials"] - pt["driver_cpu_s"] / pt["trials"]) * 1e3
        extra_report = (ws["driver_cpu_s"] / ws["reports"] - pt["driver_cpu_s"] / pt["reports"]) * 1e3
        busy = (ws["busy_s"] / ws["wall_s"]) / (pt["busy_s"] / pt["wall_s"])
        print(
            f"ratio {tag}: busy fraction wattsweep/{plain} {busy:.2f}; driver CPU beyond {plain}'s"
            f" {extra_trial:+.1f} ms/trial, {extra_report:+.2f} ms/report"
        )


def fit_per_report(points: list[tuple[float, float, float]]) -> tuple[float, float]:
    """Least-squares (a, b) of driver CPU = a x trials + b x reports over runs (trials, reports, cpu_s): a is the
    CPU per trial beside its reports, b the CPU per report (both in the unit of cpu_s)."""
    import numpy as np

    x = np.array([[t, r] for t, r, _ in points], dtype=float)
    y = np.array([c for _, _, c in points], dtype=float)
    (a, b), *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(a), float(b)


def _print_fit(results: dict[tuple[str, int, int], dict[str, Any]], n: int, args: argparse.Namespace) -> None:
    fits: dict[str, tuple[float, float]] = {}
    for arm in args.arms:
        runs = [results.get((arm, n, e)) for e in args.epochs]
        if all(runs):
            fits[arm] = fit_per_report([(r["trials"], r["reports"], r["driver_cpu_s"]) for r in runs if r])
            a, b = fits[arm]
            print(
                f"fit {n} {arm}: driver CPU {a * 1e3:.1f} ms per trial beside its reports + {b * 1e3:.2f} ms per report"
            )
    ws = fits.get("wattsweep")
    for plain in PLAIN:
        if ws and plain in fits:
            a, b = ws[0] - fits[plain][0], ws[1] - fits[plain][1]
            print(f"fit {n}: beyond {plain}'s own: {a * 1e3:+.1f} ms per trial, {b * 1e3:+.2f} ms per report")


if __name__ == "__main__":
    main()
