"""``python -m orchestrator``: sweep, report, resume, export, trial, validate, doctor.

Exit codes: 0 success; 2 bad input (spec, flags, paths), with a message naming
the field, the bad value and what is allowed; 1 a failure at run time.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from orchestrator.moasha_ranking import budget_share, rung_milestones
from orchestrator.ray_session import check_address
from orchestrator.sweep import check_data, check_storage
from search_spaces import DEFAULT_SPEC, SpecError, SweepSpec, default_run_name, load_spec, parse_set
from search_spaces._check import LOGGERS

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT = 0, 1, 2


def _positive_int(flag: str) -> type:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: got {text!r}; allowed: an integer >= 1") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{flag}: got {v}; allowed: an integer >= 1")
        return v

    return parse  # type: ignore[return-value]


def _positive_float(flag: str) -> type:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        if not v > 0 or v == float("inf"):
            raise argparse.ArgumentTypeError(f"{flag}: got {text!r}; allowed: a number > 0")
        return v

    return parse  # type: ignore[return-value]


def _non_negative_float(flag: str) -> type:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        if not v >= 0 or v == float("inf"):
            raise argparse.ArgumentTypeError(f"{flag}: got {text!r}; allowed: a number >= 0")
        return v

    return parse  # type: ignore[return-value]


def _integer(flag: str) -> type:
    """An integer; its range is the spec's rule for the value it overrides (``SweepSpec.with_overrides``)."""

    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: got {text!r}; allowed: an integer") from None

    return parse  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m orchestrator",
        description="wattsweep: find the configurations that give the most accuracy for the energy they cost.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("sweep", help="run a sweep (default: the local digits ResNet sweep) and write its report")
    s.add_argument("spec", nargs="?", default=DEFAULT_SPEC, help=f"YAML spec (default: {DEFAULT_SPEC})")
    s.add_argument("--name", help="run name (default: <spec name>-<UTC timestamp>); also the Optuna study name")
    s.add_argument("--num-samples", type=_positive_int("--num-samples"), help="number of trials")
    s.add_argument("--max-epochs", type=_positive_int("--max-epochs"), help="cap each trial's epochs (smoke runs)")
    s.add_argument(
        "--storage",
        default="./runs",
        help="where runs are written: a directory, or s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, file:///PATH "
        "(staged locally, mirrored there; Tune's checkpoints go there directly) (default: ./runs)",
    )
    s.add_argument("--address", help="join an existing Ray cluster (e.g. auto); default: start a local one")
    s.add_argument("--seed", type=_integer("--seed"), help="sampler seed, 0 to 2**32 - 1 (overrides the spec's)")
    s.add_argument(
        "--energy-budget",
        type=_positive_float("--energy-budget"),
        metavar="JOULES",
        help="stop launching trials once the sweep has spent this much energy; running trials stop at their next rung",
    )
    s.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also write TensorBoard event files (scalars) under RUN_DIR/tune (costs the driver ~1 s importing torch)",
    )
    s.add_argument(
        "--logger",
        dest="loggers",
        action="append",
        choices=LOGGERS,
        help="also log every trial's epochs to this tracker (repeatable): mlflow, wandb (see the README)",
    )
    s.add_argument(
        "--optuna-storage",
        metavar="URL",
        help="keep the Optuna study in this storage (sqlite:///PATH, postgresql://USER@HOST/DB; no password in it) "
        "instead of RUN_DIR/optuna_journal.log",
    )
    s.add_argument(
        "--grid-intensity",
        type=_non_negative_float("--grid-intensity"),
        metavar="G_PER_KWH",
        help="the grid's carbon intensity for this run's CO2e, g CO2e/kWh (default: the cloud region's, else 480)",
    )

    r = sub.add_parser("report", help="(re)build the report of a run directory, finished or not")
    r.add_argument("run_dir", help="a run directory, or a run's URI (s3://BUCKET/PREFIX/NAME)")

    t = sub.add_parser("trial", help="run ONE configuration in-process (no Ray); last line: JSON metrics")
    t.add_argument("spec")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="override a trial key")
    t.add_argument("--max-epochs", type=_positive_int("--max-epochs"))

    rs = sub.add_parser("resume", help="continue a sweep whose driver died, with its Optuna study intact")
    rs.add_argument("run_dir", help="a run directory, or a run's URI (s3://BUCKET/PREFIX/NAME)")
    rs.add_argument("--address", help="join an existing Ray cluster; default: start a local one")
    rs.add_argument(
        "--trust",
        action="store_true",
        help="resume a run you did not create on this machine (resume unpickles its saved state, which can run code)",
    )

    e = sub.add_parser("export", help="export trials of a run as ONNX, TorchScript and int8 ONNX, measured here")
    e.add_argument("run_dir", help="a run directory, or a run's URI (s3://BUCKET/PREFIX/NAME)")
    which = e.add_mutually_exclusive_group()
    which.add_argument("--knee", action="store_true", help="the knee of the front (the default)")
    which.add_argument("--front", action="store_true", help="every trial on the Pareto front")
    which.add_argument("--trial", dest="trials", action="append", default=[], metavar="ID", help="a trial (repeatable)")
    e.add_argument("--format", default="onnx,torchscript,int8", help="comma-separated: onnx, torchscript, int8 (all)")
    e.add_argument("--out", help="output directory (default: RUN_DIR/exports; for a URI: ./exports/NAME)")
    e.add_argument("--trust", action="store_true", help="export a run you did not create here (unpickles its models)")

    v = sub.add_parser("validate", help="check a spec and say what is wrong")
    v.add_argument("spec", nargs="?", default=DEFAULT_SPEC, help=f"YAML spec (default: {DEFAULT_SPEC})")

    sub.add_parser("doctor", help="which energy backends work on this machine, and why the others do not")
    return p


def _cmd_validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    check_data(spec)
    print(f"{args.spec}: ok ({spec.num_samples} trials; searches {', '.join(p.name for p in spec.space) or 'nothing'};")
    print(
        f"  objectives: {', '.join(f'{o.direction} {o.metric}' for o in spec.objectives)}; "
        f"dataset {spec.dataset.name if spec.dataset else 'the trainable loads its own'}; "
        f"trainable {spec.trainable_ref})"
    )
    print(f"  early stopping: {schedule_summary(spec)}")
    return EXIT_OK


def schedule_summary(spec: SweepSpec) -> str:
    """The spec's early stopping in a line: its rungs and the share of the budget a trial runs on average."""
    s, epochs = spec.scheduler, spec.budget_epochs()
    if s.kind == "fifo":
        return f"none (scheduler fifo): every trial runs its {epochs} epochs"
    rungs = rung_milestones(s.grace_period, s.reduction_factor, epochs)
    if not rungs:
        return f"none: {s.kind}'s grace_period {s.grace_period} is the whole budget ({epochs} epochs)"
    eta = f"{s.reduction_factor:g}"
    share = budget_share(s.grace_period, s.reduction_factor, epochs)
    return (
        f"{s.kind}, rungs at epoch {', '.join(f'{m:g}' for m in rungs)} of {epochs}: if exactly the top 1/{eta} "
        f"goes on at each rung, a trial runs {share * epochs:.1f} of its {epochs} epochs on average ({share:.2f} of "
        "the budget)"
    )


def _cmd_sweep(args: argparse.Namespace) -> int:
    from orchestrator.sweep import run_sweep

    spec = load_spec(args.spec)
    # why: `--name ''` is a mistake to report (with_overrides refuses it), not a request for the default
    name = default_run_name(spec.name) if args.name is None else args.name
    spec = spec.with_overrides(
        name=name,
        num_samples=args.num_samples,
        max_epochs=args.max_epochs,
        seed=args.seed,
        energy_budget=args.energy_budget,
        tensorboard=args.tensorboard,
        loggers=args.loggers,
        optuna_storage=args.optuna_storage,
        grid_intensity=args.grid_intensity,
    )
    check_data(spec)
    # why: a URI (s3://, gs://, file://) stays a string; Path() would fold its "//"
    storage: Path | str = args.storage if "://" in args.storage else Path(args.storage)
    check_address(args.address)  # why first: an unreachable cluster must leave no storage directory behind
    check_storage(storage, spec.name)  # why: refuse before Ray starts (for a URI: a write probe)
    report_dir = run_sweep(spec, storage=storage, address=args.address)
    if isinstance(storage, str):
        print(f"report: {storage.rstrip('/')}/{spec.name}/report/index.html (local copy: {report_dir / 'index.html'})")
    else:
        print(f"report: {report_dir / 'index.html'}")
    return EXIT_OK


def _cmd_resume(args: argparse.Namespace) -> int:
    from orchestrator.sweep import resume_sweep

    check_address(args.address)
    if "://" in args.run_dir:
        report_dir = resume_sweep(args.run_dir, address=args.address, trust=args.trust)
        print(f"report: {args.run_dir.rstrip('/')}/report/index.html (local copy: {report_dir / 'index.html'})")
    else:
        report_dir = resume_sweep(Path(args.run_dir), address=args.address, trust=args.trust)
        print(f"report: {report_dir / 'index.html'}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from reports import build_report
    from rundir import NotARunError

    if "://" in args.run_dir:
        from orchestrator.storage import report_remote

        print(f"report: {report_remote(args.run_dir)}")
        return EXIT_OK
    try:
        out = build_report(Path(args.run_dir))
    except NotARunError as e:
        raise SpecError("RUN_DIR", args.run_dir, f"a wattsweep run directory ({e})") from None
    print(f"report: {out / 'index.html'}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from orchestrator.export import ExportFailure, export_run, summary_lines

    try:
        result = export_run(
            args.run_dir, trial_ids=args.trials, front=args.front, formats=args.format, out=args.out, trust=args.trust
        )
    except ExportFailure as e:
        print(f"wattsweep: export failed (nothing written): {e}", file=sys.stderr)
        return EXIT_RUNTIME
    for line in summary_lines(result):
        print(line)
    return EXIT_OK


def _cmd_trial(args: argparse.Namespace) -> int:
    from orchestrator.sweep import trial_plan
    from trainables.contract import run_contract
    from trainables.loader import load_trainable

    spec = load_spec(args.spec).with_overrides(max_epochs=args.max_epochs)
    overrides = parse_set(args.sets, spec)
    config = spec.trial_config(overrides).to_dict() if spec.is_builtin else {**spec.default_config(), **overrides}
    check_data(spec)
    fn = load_trainable(spec.trainable)
    final: dict = {}

    def progress(metrics: dict, state: object) -> None:
        final.clear()
        final.update(metrics)
        est = " (estimated)" if metrics.get("energy_estimated") else ""
        acc = f"accuracy {metrics['accuracy']:.4f} " if isinstance(metrics.get("accuracy"), float) else ""
        print(
            f"epoch {metrics['epoch']}/{metrics['budget_epochs']}: {acc}energy {metrics['energy_j']:.2f} J{est}",
            file=sys.stderr,
            flush=True,
        )

    run_contract(fn, config, replace(trial_plan(spec), checkpoint=False), progress)
    print(json.dumps({**config, **final}, default=str))
    return EXIT_OK


def _cmd_doctor(args: argparse.Namespace) -> int:
    from trainables.energy import doctor_lines

    for line in doctor_lines():
        print(line)
    return EXIT_OK


COMMANDS = {
    "sweep": _cmd_sweep,
    "report": _cmd_report,
    "resume": _cmd_resume,
    "trial": _cmd_trial,
    "export": _cmd_export,
    "validate": _cmd_validate,
    "doctor": _cmd_doctor,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits 2 with a usage message on bad flags
    try:
        return COMMANDS[args.command](args)
    except SpecError as e:
        print(f"wattsweep: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("wattsweep: interrupted", file=sys.stderr)
        return EXIT_RUNTIME
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        print(f"wattsweep: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_RUNTIME
