"""Search efficiency: hypervolume of the accuracy / energy front against the energy a sweep spends.

On the default sweep's space (digits, search_spaces/digits_resnet.yaml) unless ``--spec`` names another: its
dataset, fixed keys and searched ranges are then the benchmark's, its reference grid is stored beside the spec
(``reference_front_<spec name>.json``), and the strategies are the same (``default`` is still wattsweep's default
strategy, the shipped default spec's sampler and scheduler).

Strategies, each with the same number of trials, over several sampler seeds, in one run:
  random          random sampling, every trial runs its whole budget
  nsga2           Optuna NSGA-II, every trial runs its whole budget
  default         wattsweep's default strategy: the sampler and scheduler of search_spaces/digits_resnet.yaml
                  (the issue's (c); its ratio to random search is the headline "energy ratio (c)/(a)")
  cheap-random    random sampling after a cheap start (the first 4 trials each the predicted-cheapest of 4
                  random draws), every trial runs its whole budget
  moasha-<s>      variants of wattsweep's early stopping (MO-ASHA, grace period 1, reduction factor 3) with
                  sampler <s>, runnable with --strategies

Per sweep, in the order trials ended: the hypervolume (accuracy max, energy_j min) of the front of COMPLETE trials
against the cumulative energy of ALL trials (complete and stopped): energy is an estimate from process CPU time
(``estimated-cpu``), i.e. what the sweep spent. Every hypervolume uses one fixed reference point taken from the
stored reference front (``--build-reference``: a dense grid over the same space, run once): accuracy 0.5 and
1.1 x the grid's largest energy; "% ref" is a hypervolume over the grid's own.

Energy estimates depend on the machine's load (CPU time grows when cores are shared), so the reference grid and
the sweeps are comparable only when run under similar load; the script prints the load average.

Usage:
    python benchmarks/search_efficiency.py --build-reference     # once: the grid, ~10 min on 2 cores
    python benchmarks/search_efficiency.py --spec S.yaml --build-reference   # once per other space, then:
    python benchmarks/search_efficiency.py --spec S.yaml
    python benchmarks/search_efficiency.py                       # 3 seeds x 3 strategies x 24 trials, ~20 min
    python benchmarks/search_efficiency.py --quick               # 1 seed x 16 trials, ~5 min
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import itertools
import json
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # why: runnable as a script from any directory

from reports.pareto import hypervolume, pareto_front_mask
from rundir import read_run
from search_spaces import SweepSpec, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).with_name("reference_front_digits.json")
DIRECTIONS = ("max", "min")  # accuracy, energy_j
# wattsweep's default strategy is the default spec's; by default the benchmark also measures its space, fixed keys
# and dataset (the stored reference grid was run for them; tests/test_benchmarks.py fails if the two part ways)
DEFAULT_SPEC_PATH = ROOT / "search_spaces" / "digits_resnet.yaml"
DEFAULT_SPEC = load_spec(DEFAULT_SPEC_PATH)
# The benchmarked spec and what is taken from it (``use_spec`` sets them from ``--spec``)
BENCH_SPEC: SweepSpec = DEFAULT_SPEC
BENCH_SOURCE = str(DEFAULT_SPEC_PATH)  # why: a csv dataset's relative path is relative to the spec's file
FIXED: dict[str, Any] = {}
SPACE: dict[str, Any] = {}


def use_spec(path: Path) -> Path:
    """Benchmark the space of the spec at ``path``; returns where its reference grid is stored."""
    global BENCH_SPEC, BENCH_SOURCE, FIXED, SPACE
    BENCH_SPEC, BENCH_SOURCE = load_spec(path), str(path)
    FIXED = dict(BENCH_SPEC.raw.get("fixed", {}))
    # the searched ranges; each key's `default` (used only by `trial`) left out
    SPACE = {name: {k: v for k, v in p.items() if k != "default"} for name, p in BENCH_SPEC.raw["space"].items()}
    if Path(path).resolve() == DEFAULT_SPEC_PATH.resolve():
        return REFERENCE
    return Path(path).with_name(f"reference_front_{BENCH_SPEC.name}.json")


use_spec(DEFAULT_SPEC_PATH)
MOASHA = {"kind": "moasha", "grace_period": 1, "reduction_factor": 3}
# why these variants: on 2 slots ASHA's rule (the first trials at a rung always pass) let ~7 of 24 trials run
# their whole budget; "defer" judges them once the rung holds eta points, "hv" orders a front by hypervolume
# contribution instead of crowding (crowding always keeps both extremes, e.g. the costliest accurate network)
DEFER_HV = {**MOASHA, "defer": True, "tie_break": "hypervolume"}
RANDOM, TPE, NSGA2 = {"kind": "random"}, {"kind": "tpe"}, {"kind": "nsga2"}
# why a variant with the cheap start alone (no early stopping): to tell its share of the default's saving from
# MO-ASHA's
CHEAP = {**RANDOM, "cheap_start": 4}
Sampler = dict[str, Any]  # the spec's sampler mapping, without the seed
STRATEGIES: dict[str, tuple[Sampler, dict[str, Any] | str]] = {  # key -> (sampler, scheduler)
    "random": (RANDOM, "fifo"),
    "nsga2": (NSGA2, "fifo"),
    "cheap-random": (CHEAP, "fifo"),
    "moasha-nsga2": (NSGA2, MOASHA),
    "moasha-tpe": (TPE, MOASHA),
    "moasha-tpe-defer": (TPE, {**MOASHA, "defer": True}),
    "moasha-random": (RANDOM, MOASHA),
    "moasha-random-defer": (RANDOM, {**MOASHA, "defer": True}),
    "moasha-cheap-random-defer": (CHEAP, {**MOASHA, "defer": True}),
    "moasha-cheap-random-defer-hv": (CHEAP, DEFER_HV),
    "moasha-random-hv": (RANDOM, {**MOASHA, "tie_break": "hypervolume"}),
    "moasha-random-defer-hv": (RANDOM, DEFER_HV),
    "moasha-random-defer-eta4": (RANDOM, {**MOASHA, "defer": True, "reduction_factor": 4}),
    "moasha-random-defer-hv-eta4": (RANDOM, {**DEFER_HV, "reduction_factor": 4}),
    "moasha-nsga2-defer-hv": (NSGA2, DEFER_HV),
    # why: issue 19's second space, where 1 epoch ranks networks poorly and 2 rungs leave ~3 of 24 trials complete
    "moasha-cheap-random-defer-g2": (CHEAP, {**MOASHA, "defer": True, "grace_period": 2}),
    "moasha-cheap-random-defer-eta2": (CHEAP, {**MOASHA, "defer": True, "reduction_factor": 2}),
    "moasha-cheap-random-defer-g3": (CHEAP, {**MOASHA, "defer": True, "grace_period": 3}),
    "moasha-cheap-random-defer-front": (CHEAP, {**MOASHA, "defer": True, "keep_front": True}),
    "moasha-random-defer-front": (RANDOM, {**MOASHA, "defer": True, "keep_front": True}),
    # why: on the second space good networks are rare under random draws (wide, lr near the top of its range) and
    # TPE learns both from a few trials; the default's scheduler and cheap start with TPE after them
    "moasha-cheap-tpe-defer-hv": ({**TPE, "cheap_start": 4}, DEFER_HV),
}


def _default_strategy() -> tuple[Sampler, dict[str, Any] | str]:
    """wattsweep's default strategy: the sampler and scheduler of the shipped default spec."""
    # why raw: spec_for() builds a spec from the same YAML mappings the user wrote (the seed is the benchmark's)
    sampler = {k: v for k, v in DEFAULT_SPEC.raw.get("sampler", {}).items() if k != "seed"}
    return sampler, DEFAULT_SPEC.raw.get("scheduler", "fifo")


# (c) of the issue: whatever search_spaces/digits_resnet.yaml uses, decided before the run (not the best variant
# picked afterwards from the same run's noise)
STRATEGIES["default"] = _default_strategy()
# (a), (b), (c); the variants stay runnable by name (on 2 cores each costs 5-15 min over 3 seeds)
DEFAULT_STRATEGIES = ["random", "nsga2", "default"]
LEVELS = (0.90, 0.95)


# --- the reference front ----------------------------------------------------------------------------------------
def reference_point(max_grid_energy_j: float) -> list[float]:
    """The fixed hypervolume reference point: accuracy 0.5, 1.1 x the grid's largest energy (J)."""
    return [0.5, 1.1 * max_grid_energy_j]


def _axis(p: dict[str, Any], points: int) -> list[Any]:
    """The grid's values of one searched key: every choice; ``points`` values spread over a range."""
    if p["kind"] == "choice":
        return list(p["values"])
    low, high = p["low"], p["high"]
    if p["kind"] == "loguniform":
        return np.geomspace(low, high, points).round(6).tolist()
    if p["kind"] == "uniform":
        return np.linspace(low, high, points).round(4).tolist()
    values = list(range(int(low), int(high) + 1, int(p.get("step", 1))))  # int
    if len(values) <= points:
        return values
    return [values[round(float(i))] for i in np.linspace(0, len(values) - 1, points)]


def grid_configs(points: int) -> list[dict[str, Any]]:
    """Every combination of the searched keys' grid values (``_axis``)."""
    axes = {name: _axis(p, points) for name, p in SPACE.items()}
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def build_reference(path: Path, points: int) -> None:
    """Run the grid once (plain Tune, 1 CPU per trial, reused actors: the sweeps' trainable and worker set-up)."""
    import ray
    from ray import tune

    from orchestrator.sweep import trial_plan
    from trainables.data import load_arrays
    from trainables.ray_trainable import tune_trainable

    grid = grid_configs(points)
    print(f"reference grid: {len(grid)} configurations x {FIXED['epochs']} epochs; load average {_load()}", flush=True)
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(ROOT), *_pythonpath()]))
    # why: a checkpoint every epoch (as in the sweeps, so the energy compares) trips a warning meant for slow storage
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # why the sweeps' own plan: the built-in trainable on the spec's dataset, 1 torch thread (resources.cpu 1), the
    # spec's watts_per_core (unset) and no epoch cap; the same settings the grid ran with before the trial plan
    plan = trial_plan(BENCH_SPEC)
    splits = load_arrays(BENCH_SPEC.dataset) if BENCH_SPEC.dataset is not None else None
    space = {**FIXED, **{k: tune.grid_search(_axis(p, points)) for k, p in SPACE.items()}}
    t0 = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="reference_grid_") as tmp:
            tuner = tune.Tuner(
                tune.with_resources(
                    # why the splits loaded here, as a sweep does: a csv path is relative to where the driver runs
                    tune.with_parameters(tune_trainable, plan=plan, splits=splits),
                    {"cpu": 1},
                ),
                param_space=space,
                tune_config=tune.TuneConfig(reuse_actors=True),
                run_config=tune.RunConfig(
                    storage_path=tmp, name="grid", verbose=0, checkpoint_config=tune.CheckpointConfig(num_to_keep=1)
                ),
            )
            results = tuner.fit()
            rows = [_grid_point(results[i].config or {}, results[i].metrics or {}) for i in range(len(results))]
    finally:
        ray.shutdown()
    wall = time.perf_counter() - t0
    points = [p for p in rows if p is not None]
    if len(points) < len(rows):
        print(f"left out {len(rows) - len(points)} grid configurations that did not finish (failed)")
    values = np.array([[p["accuracy"], p["energy_j"]] for p in points])
    ref = reference_point(float(values[:, 1].max()))
    mask = pareto_front_mask(values, DIRECTIONS)
    payload = {
        "what": "final validation accuracy and estimated energy of every grid configuration (complete trials)",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "load_average_after": _load()},
        "energy_source": points[0].get("energy_source") if points else None,
        "fixed": FIXED,
        "space": SPACE,
        "spec": BENCH_SPEC.name,
        "grid": {"points_per_range": points, "configurations": len(grid)},
        "wall_s": round(wall, 1),
        "reference_point": ref,
        "hypervolume": hypervolume(values, DIRECTIONS, ref),
        "front": [i for i, on in enumerate(mask) if on],
        "points": points,
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(
        f"wrote {path}: {len(points)} points, {int(mask.sum())} on the front, hypervolume "
        f"{payload['hypervolume']:.3f} (reference point {ref[0]}, {ref[1]:.1f} J); {wall:.0f} s"
    )


def _grid_point(config: dict[str, Any], m: dict[str, Any]) -> dict[str, Any] | None:
    if int(m.get("epoch", 0)) < FIXED["epochs"]:
        return None  # why: a failed grid trial has no final value; it is left out (and counted in the log)
    keys = ("accuracy", "test_accuracy", "energy_j", "time_s", "effective_flops", "energy_source")
    return {**{k: config[k] for k in SPACE}, **{k: m.get(k) for k in keys}}


def load_reference(path: Path) -> dict[str, Any]:
    if not path.is_file():
        spec = "" if path == REFERENCE else f" --spec {BENCH_SOURCE}"
        raise SystemExit(
            f"no reference front at {path}: run `python {Path(__file__).name}{spec} --build-reference` once"
        )
    return json.loads(path.read_text())


# --- one sweep and its hypervolume trace ------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepResult:
    """One strategy x seed: the trace after each trial's end, and the sweep's cost. Units: J, s."""

    strategy: str
    seed: int
    energy_cum_j: list[float]  # cumulative energy of all trials ended so far
    hv: list[float]  # hypervolume of the complete trials ended so far
    n_complete: int
    n_stopped: int
    wall_s: float
    busy_fraction: float

    def energy_to(self, target_hv: float) -> float | None:
        """Cumulative energy when the hypervolume first reached ``target_hv`` (None: never)."""
        return next((e for e, h in zip(self.energy_cum_j, self.hv, strict=True) if h >= target_hv), None)


def spec_for(strategy: str, seed: int, n_trials: int) -> SweepSpec:
    sampler, scheduler = STRATEGIES[strategy]
    raw = {
        "name": f"eff_{strategy}_{seed}",
        "dataset": dict(BENCH_SPEC.raw.get("dataset", {})),
        "fixed": FIXED,
        "space": SPACE,
        "sampler": {**sampler, "seed": seed},
        "scheduler": scheduler,
        "num_samples": n_trials,
        "resources": {"cpu": 1, "gpu": 0},
    }
    return parse_spec(raw, source=BENCH_SOURCE)


def run_one(strategy: str, seed: int, n_trials: int, storage: Path, ref: list[float]) -> SweepResult:
    """Run one sweep through ``run_sweep`` and read its trace back from the run directory."""
    from orchestrator.sweep import run_sweep

    spec = spec_for(strategy, seed, n_trials)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # why: one progress line per trial; the table says it all
        run_sweep(spec, storage=storage)
    wall = time.perf_counter() - t0
    return trace(strategy, seed, storage / spec.name, ref, wall)


def trace(strategy: str, seed: int, run_dir: Path, ref: list[float], wall_s: float) -> SweepResult:
    """Hypervolume of the complete trials vs cumulative energy of all trials, in the order trials ended."""
    trials = [t for t in read_run(run_dir).trials if t.epochs]
    trials.sort(key=lambda t: t.ended_at if t.ended_at is not None else math.inf)
    hvs: list[float] = []
    done: list[list[float]] = []
    for t in trials:
        if t.state == "complete":
            done.append([float(t.final["accuracy"]), float(t.final["energy_j"])])
        hvs.append(hypervolume(np.array(done), DIRECTIONS, ref) if done else 0.0)
    busy = sum(float(t.final.get("time_s", 0.0)) for t in trials) / (wall_s * (os.cpu_count() or 1))
    return SweepResult(
        strategy,
        seed,
        list(itertools.accumulate(float(t.final.get("energy_j", 0.0)) for t in trials)),
        hvs,
        sum(t.state == "complete" for t in trials),
        sum(t.state == "stopped" for t in trials),
        wall_s,
        busy,
    )


# --- summary ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """One strategy over its seeds. Energies in J: means over the seeds that reached the level."""

    strategy: str
    n_seeds: int
    final_pct: float  # mean final hypervolume, % of the reference front's
    energy_to: dict[float, tuple[float | None, int]]  # level -> (mean energy to reach it, seeds that reached it)
    total_j: float
    wall_s: float
    busy_fraction: float
    n_complete: float
    n_stopped: float


def summarise(results: list[SweepResult], ref_hv: float, levels: tuple[float, ...]) -> Summary:
    reached = {lv: [e for e in (r.energy_to(lv * ref_hv) for r in results) if e is not None] for lv in levels}
    return Summary(
        results[0].strategy,
        len(results),
        100 * statistics.mean(r.hv[-1] / ref_hv for r in results),
        {lv: (statistics.mean(v) if v else None, len(v)) for lv, v in reached.items()},
        statistics.mean(r.energy_cum_j[-1] for r in results),
        statistics.mean(r.wall_s for r in results),
        statistics.mean(r.busy_fraction for r in results),
        statistics.mean(r.n_complete for r in results),
        statistics.mean(r.n_stopped for r in results),
    )


def common_level(results: list[SweepResult], ref_hv: float) -> float:
    """The highest level (whole per cent of the reference hypervolume) every sweep of every strategy reached."""
    return math.floor(100 * min(r.hv[-1] / ref_hv for r in results)) / 100


def _fmt_energy(value: tuple[float | None, int], n: int) -> str:
    mean, k = value
    if mean is None:
        return "not reached"
    return f"{mean:7.0f}" + ("" if k == n else f" ({k}/{n})")


def print_tables(results: list[SweepResult], ref_hv: float, levels: tuple[float, ...]) -> dict[str, Summary]:
    print(
        f"{'strategy':<22} {'seed':>4} {'done':>4} {'stop':>4} {'HV % ref':>8} "
        + " ".join(f"{'E to ' + format(lv, '.0%') + ' J':>11}" for lv in levels)
        + f" {'spent J':>8} {'wall s':>6} {'busy':>5}"
    )
    for r in results:
        reach = " ".join(f"{_fmt_energy((r.energy_to(lv * ref_hv), 1), 1):>11}" for lv in levels)
        print(
            f"{r.strategy:<22} {r.seed:>4} {r.n_complete:>4} {r.n_stopped:>4} {100 * r.hv[-1] / ref_hv:8.1f} "
            f"{reach} {r.energy_cum_j[-1]:8.0f} {r.wall_s:6.0f} {r.busy_fraction:5.2f}"
        )
    summaries = {}
    print()
    print("mean over seeds (an energy is the mean over the seeds that reached the level; (k/n) when not all did):")
    for key in dict.fromkeys(r.strategy for r in results):
        s = summarise([r for r in results if r.strategy == key], ref_hv, levels)
        summaries[key] = s
        reach = " ".join(f"{_fmt_energy(s.energy_to[lv], s.n_seeds):>11}" for lv in levels)
        print(
            f"{key:<22} {'mean':>4} {s.n_complete:4.0f} {s.n_stopped:4.0f} {s.final_pct:8.1f} {reach} "
            f"{s.total_j:8.0f} {s.wall_s:6.0f} {s.busy_fraction:5.2f}"
        )
    return summaries


def _mean_energy_to(results: list[SweepResult], key: str, target_hv: float) -> float | None:
    """Mean over the strategy's seeds of the energy to reach ``target_hv``; None unless every seed reached it."""
    energies = [r.energy_to(target_hv) for r in results if r.strategy == key]
    reached = [e for e in energies if e is not None]
    return statistics.mean(reached) if reached and len(reached) == len(energies) else None


def _ratios_at(results: list[SweepResult], level: float, ref_hv: float) -> dict[str, float | str]:
    """Each strategy's mean energy to ``level`` over random search's, or why there is none."""
    keys = list(dict.fromkeys(r.strategy for r in results))
    base = _mean_energy_to(results, "random", level * ref_hv)
    out: dict[str, float | str] = {}
    for key in keys:
        n = sum(r.strategy == key for r in results)
        k = sum(r.energy_to(level * ref_hv) is not None for r in results if r.strategy == key)
        mean = _mean_energy_to(results, key, level * ref_hv)
        out[key] = mean / base if mean is not None and base else f"not reached in {n - k}/{n} seeds"
    return out


def print_ratios(results: list[SweepResult], ref_hv: float) -> str | None:
    """Energy to 95 % of the reference hypervolume over random search's (ratio of the means over seeds), for each
    strategy, and at the highest level every sweep reached. Returns the best early-stopping strategy."""
    if not any(r.strategy == "random" for r in results):
        return None
    common = common_level(results, ref_hv)
    at95 = _ratios_at(results, 0.95, ref_hv)
    level = 0.95
    if not isinstance(at95["random"], float):
        level = common
        print(
            f"\nrandom search did not reach 95 % of the reference hypervolume in every seed: the headline ratio "
            f"is at {level:.0%} (fallback: the highest whole per cent that every sweep of every strategy reached)"
        )
    at_level = _ratios_at(results, level, ref_hv)
    at_common = _ratios_at(results, common, ref_hv)
    print(
        f"\nenergy to reach a level, over random search's (ratio of the means over seeds; "
        f"{common:.0%} = the highest level every sweep of every strategy reached):"
    )
    print(f"{'strategy':<22} {format(level, '.0%') + ' of ref HV':>26} {format(common, '.0%') + ' of ref HV':>26}")
    for key, ratio in at_level.items():
        print(f"{key:<22} {_fmt_ratio(ratio):>26} {_fmt_ratio(at_common[key]):>26}")
    note = "" if level == 0.95 else f"  (at {level:.0%} of the reference HV, not 95 %: see above)"
    if "default" in at_level:
        c = at_level["default"]
        print(f"\n(c) = wattsweep's default strategy: {_describe('default')}")
        if not isinstance(c, float):
            print(f"energy ratio (c)/(a): none: the default strategy {c} at {level:.0%}")
            return None
        print(f"energy ratio (c)/(a): {c:.2f}{note}")
        return "default"
    early = {k: v for k, v in at_level.items() if k.startswith("moasha-") and isinstance(v, float)}
    if not early:
        print("\nno early-stopping strategy reached the level in every seed: no ratio")
        return None
    best = min(early, key=early.__getitem__)
    # why not "(c)/(a)": picking the best of several variants in the run that scores them favours the luckiest
    print(
        f"\nbest early-stopping variant run (lowest energy to {level:.0%}, reached in every seed; chosen after the "
        f"fact, so optimistic): {best} ({_describe(best)}): {early[best]:.2f}"
        f"{note}"
    )
    return best


def _describe(strategy: str) -> str:
    sampler, scheduler = STRATEGIES[strategy]
    extra = ", ".join(f"{k} {v}" for k, v in sampler.items() if k != "kind")
    return f"sampler {sampler['kind']}{f' ({extra})' if extra else ''} + {scheduler}"


def _fmt_ratio(ratio: float | str) -> str:
    return f"{ratio:.3f}" if isinstance(ratio, float) else ratio


def _pythonpath() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-reference", action="store_true", help="run the dense grid and store the front, then exit")
    ap.add_argument("--spec", type=Path, default=DEFAULT_SPEC_PATH, help="the space to benchmark (a sweep spec)")
    ap.add_argument("--grid-points", type=int, default=5, help="grid values per searched range (choices: all)")
    ap.add_argument("--reference", type=Path, default=None, help="the reference grid's file (default: by the spec)")
    ap.add_argument("--trials", type=int, default=24, help="trials per sweep (every strategy the same)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", choices=list(STRATEGIES), default=DEFAULT_STRATEGIES)
    ap.add_argument("--out", type=Path, default=None, help="also write every sweep's trace here (JSON)")
    ap.add_argument("--quick", action="store_true", help="seed 0 only, 16 trials per sweep (~5 min)")
    args = ap.parse_args(argv)
    stored = use_spec(args.spec)
    args.reference = args.reference or stored
    if args.build_reference:
        build_reference(args.reference, args.grid_points)
        return 0
    if args.quick:
        args.seeds, args.trials = [0], 16
    reference = load_reference(args.reference)
    ref, ref_hv = reference["reference_point"], float(reference["hypervolume"])
    ranges = " x ".join(
        f"{k} {p['values']}" if p["kind"] == "choice" else f"{k} [{p['low']:g}, {p['high']:g}]"
        for k, p in SPACE.items()
    )
    print(
        f"search_efficiency: {BENCH_SPEC.name} ({BENCH_SPEC.dataset.name}), {ranges}, {FIXED.get('epochs')} epochs; "
        f"{args.trials} trials per sweep, seeds {args.seeds}; {os.cpu_count()} slots of 1 CPU"
    )
    print(
        f"reference: {len(reference['points'])} grid points ({reference['created']}), front of "
        f"{len(reference['front'])}, hypervolume {ref_hv:.3f} at reference point (accuracy {ref[0]}, "
        f"{ref[1]:.1f} J); energy {reference['energy_source']} (process CPU time x 10 W/core: noisy on a shared "
        f"machine); load average before: {_load()}",
        flush=True,
    )
    results: list[SweepResult] = []
    with tempfile.TemporaryDirectory(prefix="search_efficiency_") as tmp:
        # why seed-major: each strategy meets the same drift in machine load
        for seed in args.seeds:
            for key in args.strategies:
                results.append(run_one(key, seed, args.trials, Path(tmp), ref))
                r = results[-1]
                print(
                    f"  done: {key} seed {seed}: HV {100 * r.hv[-1] / ref_hv:.1f} % of ref, "
                    f"{r.energy_cum_j[-1]:.0f} J, {r.wall_s:.0f} s, busy {r.busy_fraction:.2f} "
                    f"(load average {_load()})",
                    flush=True,
                )
    if args.out:
        args.out.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    print()
    print_tables(results, ref_hv, LEVELS)
    print_ratios(results, ref_hv)
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    logging.getLogger("ray").setLevel(logging.WARNING)
    raise SystemExit(main())
