"""What the trainable contract costs per epoch: a user's loop with ``ctx.report`` against the same loop bare.

Target (from the issue): at most 1 % on a 50 ms step (epoch), beyond the checkpoint's own cost.

The user's work, the same in every variant: a small CNN on scikit-learn's digits (8x8, batch 64, Adam), one
torch thread; an epoch is ``steps`` training steps plus the validation accuracy, with ``steps`` calibrated at
start so that one epoch takes about ``--step-ms`` (default 50 ms) on this machine. Same seed, same initial
weights, same batches in every run. At each epoch end the loop builds its metrics dict and, in the ``+ckpt``
variants, the state a Tune user would checkpoint (``model.state_dict()``, ``opt.state_dict()``), and hands both
to the same sink, which ``torch.save``s the state to an ``io.BytesIO`` (the Ray adapter saves it to a temp dir).

- ``bare``: the loop calls the sink itself (``state`` None: nothing saved).
- ``bare+ckpt``: the same with the state: the checkpoint's own cost.
- ``wattsweep``: ``train(config, ctx)`` run by ``run_contract`` and calling ``ctx.report(metrics)`` (plan with
  ``checkpoint=False``): energy window (meter read), the metric contract, the objectives check.
- ``wattsweep+ckpt``: ``ctx.report(metrics, state=...)``; the sink gets wattsweep's counters beside the state.
  Against ``bare+ckpt`` (same sink, same state) the difference is the context alone: the headline.
- ``wattsweep+ckpt+watch``: also ``ctx.watch(model, example)`` once before the loop: non-zero parameters,
  effective FLOPs and sparsity counted every epoch (FLOPs recounted only on a shape change).

Per-epoch figures are over epochs 2..N-1: the first epoch is warm-up, the last carries the end-of-trial work
(power trace, provenance, with watch: layer FLOPs and the inference measurement), which is counted with the per-trial
fixed costs: ``start`` (call to the loop's first epoch: run_contract's seeding, meter start, Context; with watch the
FLOP count; the model build in all) and ``end`` (last epoch's extra over the median epoch, plus meter stop).

Side by side: a repetition runs one trial of every variant, each in its own thread (as Ray Tune runs a function
trainable) and in lockstep: round k runs epoch k of every variant, one at a time, in an order rotated every round.
So each wattsweep epoch is compared with the bare epoch of the same round (``wall %``: median over a rep's steady
epochs of the paired ratio; the headline is the median over reps, with their min..max), and load that comes and goes
over seconds hits both alike. Besides, each ``deliver`` call (``ctx.report``, or the bare loop's sink call) and each
sink call are timed: ``context us`` = time in deliver minus time in the sink, the context's own work measured directly
(``direct %`` = its difference from the reference, over the reference epoch). Other columns: ``cpu ms`` the trial
thread's CPU time per epoch (unaffected by being descheduled, not by cache or core sharing), ``pooled %`` the ratio of
the medians over all steady epochs of all reps (unpaired), ``start +ms`` / ``end +ms`` the per-trial fixed costs'
difference from the reference. Finally each part of ``ctx.report`` is timed alone, many calls in a row.

    python benchmarks/contract_overhead.py [--reps 5] [--epochs 20] [--step-ms 50] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # why: runnable as a script from any folder

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

from trainables.contract import Context, TrialPlan, run_contract
from trainables.energy import make_meter
from trainables.flops import count_flops, effective_flops
from trainables.pruning import nonzero_params, prunable_weights, sparsity
from trainables.watch import ModelWatch

TARGET_PCT = 1.0
BATCH = 64
ROOT = Path(__file__).resolve().parents[1]
Deliver = Callable[[dict[str, Any], dict[str, Any] | None], None]
med = statistics.median


@dataclass(frozen=True)
class Variant:
    name: str
    wattsweep: bool  # run by run_contract, reporting through ctx.report
    checkpoint: bool  # the loop builds the state and it reaches the sink
    watch: bool = False  # ctx.watch(model, example) before the loop


VARIANTS = (
    Variant("bare", wattsweep=False, checkpoint=False),
    Variant("bare+ckpt", wattsweep=False, checkpoint=True),
    Variant("wattsweep", wattsweep=True, checkpoint=False),
    Variant("wattsweep+ckpt", wattsweep=True, checkpoint=True),
    Variant("wattsweep+ckpt+watch", wattsweep=True, checkpoint=True, watch=True),
)
# (measured, reference); the second is the headline: the context beyond the checkpoint's own cost
COMPARISONS = (
    ("bare+ckpt", "bare"),
    ("wattsweep", "bare"),
    ("wattsweep+ckpt", "bare+ckpt"),
    ("wattsweep+ckpt+watch", "bare+ckpt"),
)
HEADLINE = ("wattsweep+ckpt", "bare+ckpt")
WATCHED = ("wattsweep+ckpt+watch", "bare+ckpt")

# --- the user's work ---------------------------------------------------------------------


def build_model() -> nn.Module:
    """A small CNN for 8x8 digits (71k parameters; with Adam's moments a 0.86 MB checkpoint)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


class Work:
    """Digits (1500 train / 297 validation) as fixed batches; ``steps`` training steps per epoch."""

    def __init__(self, steps: int, seed: int = 0) -> None:
        x, y = load_digits(return_X_y=True)
        x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
        y = torch.tensor(y)
        order = torch.randperm(1500, generator=torch.Generator().manual_seed(seed))
        self.batches = [(x[i], y[i]) for i in order.split(BATCH) if len(i) == BATCH]
        self.x_val, self.y_val = x[1500:], y[1500:]
        self.example = x[:1]
        self.steps = steps

    def build(self) -> tuple[nn.Module, torch.optim.Optimizer]:
        model = build_model()
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch(self, model: nn.Module, opt: torch.optim.Optimizer, epoch: int) -> float:
        """``steps`` training steps (the next batches, wrapping); the mean loss."""
        model.train()
        total = 0.0
        for i in range(self.steps):
            xb, yb = self.batches[(epoch * self.steps + i) % len(self.batches)]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        return total / self.steps

    @torch.no_grad()
    def accuracy(self, model: nn.Module) -> float:
        model.eval()
        return (model(self.x_val).argmax(1) == self.y_val).float().mean().item()


def calibrate(step_ms: float, probe_s: float) -> tuple[int, float, float]:
    """Training steps per epoch so that steps + validation take about ``step_ms``; one step's and one validation's
    time, ms (medians of single timed calls: other load on the machine inflates a few, not the median)."""
    work = Work(steps=1)
    torch.manual_seed(0)
    model, opt = work.build()
    steps_s: list[float] = []
    evals_s: list[float] = []
    t_end = time.perf_counter() + probe_s
    while len(evals_s) < 5 or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        work.epoch(model, opt, len(steps_s))
        t1 = time.perf_counter()
        work.accuracy(model)
        steps_s.append(t1 - t0)
        evals_s.append(time.perf_counter() - t1)
    per_step, per_eval = med(steps_s[1:]), med(evals_s[1:])  # why: the first of each is warm-up
    steps = max(1, round((step_ms / 1e3 - per_eval) / per_step))
    return steps, per_step * 1e3, per_eval * 1e3


# --- one trial, timed, in lockstep with the others ---------------------------------------------


class Baton:
    """Lets one trial run one phase (its setup, one epoch, its teardown) when the driver says so.

    why: other load on a shared machine comes and goes over seconds; trials run one after another see different
    load, and a 1 % difference drowns in it. Run in lockstep, each variant's epoch k runs within one round of the
    others' epoch k. Each trial runs in its own thread (as Ray Tune runs a function trainable); only the thread
    holding the baton runs, so they never compete for the CPU.
    """

    def __init__(self) -> None:
        self._go, self._done = threading.Semaphore(0), threading.Semaphore(0)
        self.error: BaseException | None = None

    def pass_back(self) -> float:
        """In the trial's thread: end this phase, wait for the next; the time it resumes."""
        self._done.release()
        self._go.acquire()
        return time.perf_counter()

    def run_in_thread(self, fn: Callable[[], Any]) -> threading.Thread:
        def body() -> None:
            # why: torch's thread count is per thread (OpenMP); a new thread would use every core, and idle OpenMP
            # workers of one trial spin while another runs
            torch.set_num_threads(1)
            self._go.acquire()
            try:
                fn()
            except BaseException as exc:  # why: handed to the driver, which raises it; a dead thread would hang it
                self.error = exc
            finally:
                self._done.release()

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        return thread

    def turn(self) -> None:
        """In the driver: let the trial run its next phase and wait until it passes the baton back."""
        self._go.release()
        self._done.acquire()
        if self.error is not None:
            raise RuntimeError("a trial failed") from self.error


@dataclass
class Run:
    """One trial's timeline: perf_counter seconds, per-epoch wall and thread CPU seconds."""

    t_call: float = 0.0  # the variant called (bare loop / run_contract)
    t_loop: float = 0.0  # model built (and watched): the loop starts
    t_resume: float = 0.0  # the loop's end, after the last epoch (teardown phase begins)
    t_return: float = 0.0  # the variant returned
    wall_s: list[float] = field(default_factory=list)  # per epoch, delivery included
    cpu_s: list[float] = field(default_factory=list)  # per epoch, this thread's CPU time
    deliver_s: list[float] = field(default_factory=list)  # per epoch: the ctx.report / bare sink call
    sink_s: list[float] = field(default_factory=list)  # per epoch: inside the sink


class MemorySink:
    """``torch.save``s a checkpoint state to an ``io.BytesIO`` (the Ray adapter: to a temp dir); times itself."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.nbytes = 0

    def __call__(self, metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        t0 = time.perf_counter()
        if state is not None:
            buf = io.BytesIO()
            torch.save(state, buf)
            self.nbytes = buf.tell()
        self.seconds.append(time.perf_counter() - t0)


def user_loop(
    work: Work,
    epochs: int,
    deliver: Deliver,
    run: Run,
    baton: Baton,
    *,
    checkpoint: bool,
    on_model: Callable[[nn.Module], None] | None = None,
) -> None:
    """The user's epochs, identical in every variant; only ``deliver`` differs."""
    model, opt = work.build()
    if on_model is not None:
        on_model(model)
    run.t_loop = time.perf_counter()
    for epoch in range(epochs):
        t0, c0 = baton.pass_back(), time.thread_time()
        loss = work.epoch(model, opt, epoch)
        metrics = {"accuracy": work.accuracy(model), "loss": loss}
        state = {"model": model.state_dict(), "opt": opt.state_dict()} if checkpoint else None
        t1 = time.perf_counter()
        deliver(metrics, state)
        t2 = time.perf_counter()
        run.deliver_s.append(t2 - t1)
        run.wall_s.append(t2 - t0)
        run.cpu_s.append(time.thread_time() - c0)
    run.t_resume = baton.pass_back()


def run_variant(v: Variant, work: Work, epochs: int, run: Run, baton: Baton, sink: MemorySink, seed: int = 0) -> None:
    run.t_call = time.perf_counter()
    if not v.wattsweep:
        torch.manual_seed(seed)  # why: run_contract seeds before the user builds the model: same initial weights
        user_loop(work, epochs, sink, run, baton, checkpoint=v.checkpoint)
    else:

        def train(config: dict[str, Any], ctx: Context) -> None:
            def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
                ctx.report(metrics, state=state)

            def watch(model: nn.Module) -> None:
                ctx.watch(model, work.example)

            on_model = watch if v.watch else None
            user_loop(work, ctx.epochs, report, run, baton, checkpoint=v.checkpoint, on_model=on_model)

        plan = TrialPlan(trainable=train, num_threads=1, checkpoint=v.checkpoint)
        run_contract(train, {"epochs": epochs, "seed": seed, "device": "cpu"}, plan, sink)
    run.t_return = time.perf_counter()
    run.sink_s = sink.seconds


def lockstep(work: Work, epochs: int) -> tuple[dict[str, Run], int]:
    """One trial of every variant, their epochs interleaved (order rotated each round); the checkpoint's bytes."""
    runs = {v.name: Run() for v in VARIANTS}
    sinks = {v.name: MemorySink() for v in VARIANTS}
    batons = {v.name: Baton() for v in VARIANTS}
    threads = [
        batons[v.name].run_in_thread(
            functools.partial(run_variant, v, work, epochs, runs[v.name], batons[v.name], sinks[v.name])
        )
        for v in VARIANTS
    ]
    for phase in range(epochs + 2):  # setup, the epochs, teardown
        k = phase % len(VARIANTS)  # why: rotate, so that no variant always follows the same one
        for v in VARIANTS[k:] + VARIANTS[:k]:
            batons[v.name].turn()
    for thread in threads:
        thread.join()
    return runs, max(s.nbytes for s in sinks.values())


def measure(work: Work, reps: int, epochs: int) -> tuple[dict[str, list[Run]], dict[str, float], int]:
    """A warm-up round (its start costs kept: the first trial in the process), then ``reps`` lockstep rounds."""
    first = {name: start_s(run) for name, run in lockstep(work, 3)[0].items()}
    runs: dict[str, list[Run]] = {v.name: [] for v in VARIANTS}
    nbytes = 0
    for _ in range(reps):
        rep, nbytes = lockstep(work, epochs)
        for name, run in rep.items():
            runs[name].append(run)
    return runs, first, nbytes


# --- figures ----------------------------------------------------------------------------------


def start_s(run: Run) -> float:
    """Call to the loop's start: run_contract's seeding, meter start and Context (and watch), the model build."""
    return run.t_loop - run.t_call


def end_s(run: Run) -> float:
    """The last epoch's extra over the trial's median steady epoch, plus the teardown (meter stop)."""
    return run.wall_s[-1] - med(run.wall_s[1:-1]) + (run.t_return - run.t_resume)


def own_s(run: Run) -> list[float]:
    """Per steady epoch: time in deliver beyond the sink (the context's own work; ~0 for bare)."""
    return [d - s for d, s in zip(run.deliver_s, run.sink_s, strict=True)][1:-1]


def summary(runs: list[Run]) -> dict[str, float]:
    """Over the steady epochs (2..N-1) of all reps: medians, and the spread of the per-rep medians."""
    per_rep = [med(r.wall_s[1:-1]) for r in runs]
    return {
        "n": sum(len(r.wall_s[1:-1]) for r in runs),
        "wall": med(d for r in runs for d in r.wall_s[1:-1]),
        "rep_min": min(per_rep),
        "rep_max": max(per_rep),
        "cpu": med(d for r in runs for d in r.cpu_s[1:-1]),
        "deliver": med(d for r in runs for d in r.deliver_s[1:-1]),
        "sink": med(d for r in runs for d in r.sink_s[1:-1]),
        "own": med(d for r in runs for d in own_s(r)),
        "start": med(start_s(r) for r in runs),
        "end": med(end_s(r) for r in runs),
    }


def overhead_pct(runs: dict[str, list[Run]], measured: str, ref: str) -> list[float]:
    """Per rep: the median over steady epochs of (measured - ref) / ref, %; epoch k against epoch k of its round."""
    return [
        med((b / a - 1) * 100 for b, a in zip(rb.wall_s[1:-1], ra.wall_s[1:-1], strict=True))
        for rb, ra in zip(runs[measured], runs[ref], strict=True)
    ]


def print_table(stats: dict[str, dict[str, float]]) -> None:
    print(
        f"\n{'variant':<21} {'n':>4} {'wall ms/epoch':>13} {'reps min..max':>15} {'cpu ms':>7} "
        f"{'deliver ms':>10} {'sink ms':>7} {'context us':>10} {'start ms':>8} {'end ms':>7}"
    )
    for name, s in stats.items():
        span = f"{s['rep_min'] * 1e3:.2f}..{s['rep_max'] * 1e3:.2f}"
        print(
            f"{name:<21} {s['n']:>4} {s['wall'] * 1e3:>13.2f} {span:>15} {s['cpu'] * 1e3:>7.2f} "
            f"{s['deliver'] * 1e3:>10.3f} {s['sink'] * 1e3:>7.3f} {s['own'] * 1e6:>10.1f} "
            f"{s['start'] * 1e3:>8.2f} {s['end'] * 1e3:>7.2f}"
        )


def print_comparisons(runs: dict[str, list[Run]], stats: dict[str, dict[str, float]]) -> None:
    print(
        f"\n{'measured vs reference (% of epoch)':<36} {'wall %':>7} {'reps min..max':>15} {'pooled %':>8} "
        f"{'cpu %':>6} {'direct %':>8} {'start +ms':>9} {'end +ms':>7}"
    )
    for measured, ref in COMPARISONS:
        pct = overhead_pct(runs, measured, ref)
        b, a = stats[measured], stats[ref]
        direct = (b["own"] - a["own"]) / a["wall"] * 100  # time in deliver beyond the sink, measured directly
        print(
            f"{measured + ' vs ' + ref:<36} {med(pct):>+7.2f} {f'{min(pct):+.2f}..{max(pct):+.2f}':>15} "
            f"{(b['wall'] / a['wall'] - 1) * 100:>+8.2f} {(b['cpu'] / a['cpu'] - 1) * 100:>+6.2f} {direct:>+8.3f} "
            f"{(b['start'] - a['start']) * 1e3:>+9.2f} {(b['end'] - a['end']) * 1e3:>+7.2f}"
        )


def verdict(pct: float) -> str:
    return "MET" if pct <= TARGET_PCT else "NOT MET"


def print_headline(runs: dict[str, list[Run]], stats: dict[str, dict[str, float]]) -> None:
    """One line per pair: the side-by-side ratio (the headline), then the directly timed cost beneath it."""
    for label, (measured, ref) in (("context", HEADLINE), ("context with ctx.watch", WATCHED)):
        pct = overhead_pct(runs, measured, ref)
        b, a = stats[measured], stats[ref]
        direct = (b["own"] - a["own"]) / a["wall"] * 100
        print(
            f"{label} overhead per {a['wall'] * 1e3:.1f} ms epoch: {med(pct):+.2f}% ({measured} vs {ref}, same sink; "
            f"reps {len(pct)}, median of paired epochs; min..max {min(pct):+.2f}..{max(pct):+.2f}%); "
            f"target <= {TARGET_PCT:g}%: {verdict(med(pct))}"
        )
        print(
            f"  timed inside ctx.report, beyond the sink: {(b['own'] - a['own']) * 1e6:+.0f} us per epoch = "
            f"{direct:+.2f}%: {verdict(direct)}"
        )
        if max(pct) - min(pct) > TARGET_PCT:
            print(
                f"  NOISY: the reps spread {max(pct) - min(pct):.1f} points, more than the target: trust the timed line"
            )


# --- where ctx.report's time goes ---------------------------------------------------------------


def hot_parts(work: Work, n: int) -> dict[str, float]:
    """Median seconds per call of ctx.report's parts, each called ``n`` times in a row (warm caches; inside the
    training loop, where caches are cold, each costs more: compare the table's 'context us')."""
    torch.manual_seed(0)
    model, opt = work.build()
    watch = ModelWatch()
    watch.set(model, work.example)
    counted, dense = count_flops(model, work.example), prunable_weights(model)
    meter = make_meter("cpu")
    plan = TrialPlan(trainable=run_contract, checkpoint=True)
    with meter:
        ctx = Context({"epochs": 4 * n}, plan, meter, lambda metrics, state: None, device=torch.device("cpu"))
        state = {"model": model.state_dict(), "opt": opt.state_dict()}
        parts: dict[str, Callable[[], Any]] = {
            "ctx.report, no watch (null sink)": lambda: ctx.report({"accuracy": 0.5}, state=state),
            "  meter.read (3 per report)": meter.read,
            "ModelWatch.epoch_metrics (watch)": watch.epoch_metrics,
            "  nonzero_params": lambda: nonzero_params(model),
            "  effective_flops (counted)": lambda: effective_flops(model, work.example, counted=counted),
            "  sparsity": lambda: sparsity(model, dense),
            "checkpoint torch.save (for scale)": lambda: torch.save(state, io.BytesIO()),
        }
        return {label: _median_call(fn, n) for label, fn in parts.items()}


def _median_call(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return med(times)


# --- main -------------------------------------------------------------------------------------


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def revision() -> str:
    """git HEAD and a digest of the contract's code: which context was measured."""
    digest = hashlib.sha256()
    for name in ("contract.py", "watch.py", "energy/_meter.py", "energy/_estimate.py"):
        digest.update((ROOT / "trainables" / name).read_bytes())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "n/a"
    return (
        f"git {head}; trainables/{{contract,watch,energy/_meter,energy/_estimate}}.py sha256 {digest.hexdigest()[:12]}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="lockstep rounds: trials per variant (default 5)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per trial, at least 3 (default 20)")
    parser.add_argument("--step-ms", type=float, default=50.0, help="target epoch duration, ms (default 50)")
    parser.add_argument("--quick", action="store_true", help="a tiny run: 2 reps x 4 epochs of 20 ms")
    parser.add_argument("--json", type=Path, help="also write the raw timelines here")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.epochs, args.step_ms = 2, 4, 20.0
    if args.epochs < 3 or args.reps < 1 or args.step_ms <= 0:
        parser.error(f"need --epochs >= 3, --reps >= 1, --step-ms > 0, but got {args.epochs=} {args.reps=}")
    torch.set_num_threads(1)
    steps, step_ms, eval_ms = calibrate(args.step_ms, probe_s=0.2 if args.quick else 1.0)
    print(
        f"# contract_overhead: digits CNN, batch {BATCH}, Adam, {args.epochs} epochs x {args.reps} reps per variant, "
        f"epochs in lockstep; calibrated epoch = {steps} steps x {step_ms:.2f} ms + validation {eval_ms:.2f} ms "
        f"= {steps * step_ms + eval_ms:.1f} ms (target {args.step_ms:g} ms)"
    )
    print(
        f"# {platform.machine()} {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread, python {platform.python_version()}, "
        f"meter source {make_meter('cpu').source}"
    )
    print(f"# {revision()}; load average at start: {loadavg()}")
    runs, first, nbytes = measure(Work(steps), args.reps, args.epochs)
    print(f"# load average at end: {loadavg()}; checkpoint state {nbytes / 1e6:.2f} MB")
    stats = {name: summary(rs) for name, rs in runs.items()}
    print_table(stats)
    print_comparisons(runs, stats)
    firsts = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in first.items())
    print(f"\nstart ms of the first trial in this process (warm-up, 3 epochs; not in the table): {firsts}")
    n_hot = 50 if args.quick else 300
    print(f"\nwhere ctx.report's time goes: median us per call of {n_hot} calls in a row (warm caches)")
    for label, seconds in hot_parts(Work(steps), n_hot).items():
        print(f"  {label:<36} {seconds * 1e6:>8.1f}")
    print()
    print_headline(runs, stats)
    if args.json:
        raw = {k: [asdict(r) for r in rs] for k, rs in runs.items()}
        payload = {"args": {**vars(args), "json": str(args.json)}, "steps": steps, "runs": raw, "first_start_s": first}
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
