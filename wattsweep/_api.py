"""``wattsweep.sweep``: one call runs a sweep of a function or a spec file and returns its result.

The same path as ``python -m orchestrator sweep``: a spec mapping is parsed and validated
(``search_spaces``), the sweep runs on Ray (``orchestrator``), the report is written (``reports``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from orchestrator.export import ExportResult

Objectives = Sequence[Mapping[str, str] | tuple[str, str]] | Mapping[str, str]


@dataclass(frozen=True)
class SweepResult:
    """What a finished sweep left: its run directory, report, trials, front and Optuna study."""

    run_dir: Path
    report_dir: Path

    @property
    def trials(self) -> pd.DataFrame:
        """Every trial: config, final metrics, state, ``on_front``, ``pareto_rank``, ``knee``."""
        from reports.analysis import analyse_front, objectives_from_manifest
        from reports.table import trials_table
        from rundir import read_run

        run = read_run(self.run_dir)
        table, _ = analyse_front(trials_table(run), objectives_from_manifest(run.manifest))
        return table

    @property
    def front(self) -> pd.DataFrame:
        """The Pareto front: complete trials no other complete trial beats on every objective."""
        t = self.trials
        return t[t["on_front"]].reset_index(drop=True)

    @property
    def study(self) -> optuna.Study:
        """The sweep's Optuna study (states, values and parameters of every trial)."""
        import optuna

        from rundir import MANIFEST, optuna_storage

        name = _json(self.run_dir / MANIFEST)["name"]
        return optuna.load_study(study_name=name, storage=optuna_storage(self.run_dir))


def _json(path: Path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text())


def _objectives(objectives: Objectives) -> list[dict[str, str]]:
    if isinstance(objectives, Mapping):
        return [{"metric": k, "direction": v} for k, v in objectives.items()]
    return [dict(o) if isinstance(o, Mapping) else {"metric": o[0], "direction": o[1]} for o in objectives]


def _raw_spec(trainable: Any, keys: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The spec mapping and its source: a YAML file (with ``keys`` replacing its top-level keys) or a function."""
    import yaml

    from search_spaces import SpecError

    if isinstance(trainable, (str, os.PathLike)) and str(trainable).endswith((".yaml", ".yml")):
        path = Path(trainable)
        if not path.is_file():
            raise SpecError("spec", str(path), "the path of an existing YAML spec file")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, Mapping):
            raise SpecError("spec", str(path), "a YAML mapping of spec keys")
        return {**raw, **keys}, str(path)
    return {"trainable": trainable, **keys}, "<memory>"


def sweep(
    trainable: Callable[..., Any] | str | os.PathLike[str],
    *,
    space: Mapping[str, Mapping[str, Any]] | None = None,
    fixed: Mapping[str, Any] | None = None,
    objectives: Objectives | None = None,
    num_samples: int | None = None,
    name: str | None = None,
    storage: str | os.PathLike[str] = "runs",
    address: str | None = None,
    max_epochs: int | None = None,
    seed: int | None = None,
    energy_budget: float | None = None,
    **spec_keys: Any,
) -> SweepResult:
    """Run a sweep and return its result. Blocks until the sweep ends.

    ``trainable``: a function ``train(config, ctx)``, a ``"package.module:function"`` reference, or the path of
    a YAML spec. ``space`` / ``fixed`` / ``objectives`` and any other spec key (``scheduler``, ``sampler``,
    ``resources``, ``energy``, ``dataset``, ``cost``, ...) as in a spec file; they replace a spec file's.
    ``space`` values as in YAML, or from ``wattsweep.choice / uniform / loguniform / integer``. ``objectives``:
    ``[("f1", "max"), ("energy_j", "min")]`` or ``{"f1": "max", "energy_j": "min"}``. ``storage``: the
    directory (or s3:// / gs:// URI) that receives ``<name>/``; ``address``: a Ray cluster to join ("auto").

    Bad input raises ``search_spaces.SpecError`` (a ValueError naming the field, the value and what is
    allowed) before Ray starts and before anything is written.
    """
    from orchestrator.ray_session import check_address
    from orchestrator.sweep import check_data, check_storage, run_sweep
    from search_spaces import default_run_name, parse_spec

    keys = {k: v for k, v in {"space": space, "fixed": fixed, **spec_keys}.items() if v is not None}
    if objectives is not None:
        keys["objectives"] = _objectives(objectives)
    raw, source = _raw_spec(trainable, keys)
    spec = parse_spec(raw, source=source)
    run_name = default_run_name(spec.name) if name is None else name  # why is None: an empty name is an error
    spec = spec.with_overrides(
        name=run_name, num_samples=num_samples, max_epochs=max_epochs, seed=seed, energy_budget=energy_budget
    )
    check_data(spec)
    where: Path | str = str(storage) if "://" in str(storage) else Path(storage)
    check_address(address)  # why first: an unreachable cluster must leave no storage directory behind
    check_storage(where, spec.name)
    report_dir = run_sweep(spec, storage=where, address=address)
    return SweepResult(run_dir=report_dir.parent, report_dir=report_dir)


def export(
    run: str | os.PathLike[str],
    *,
    trials: str | Sequence[str] = "knee",
    formats: str | Sequence[str] = ("onnx", "torchscript", "int8"),
    out: str | os.PathLike[str] | None = None,
    trust: bool = False,
) -> ExportResult:
    """Export trials of a finished run as deployable models, each measured on this machine: the same path as
    ``python -m orchestrator export``.

    ``run``: a run directory (``result.run_dir``) or a run's URI. ``trials``: ``"knee"``, ``"front"`` or a list
    of trial ids (complete trials). ``formats``: any of ``onnx``, ``torchscript``, ``int8``. ``out``: default
    ``<run>/exports`` (where the report finds them). Returns ``ExportResult(out_dir, cards)``: each trial's
    ``model_card.json`` as a dict. Bad input raises ``SpecError`` and a failure while exporting ``ExportFailure``;
    either way nothing is left half-written.
    """
    from orchestrator.export import export_run
    from search_spaces import SpecError

    if isinstance(trials, str) and trials not in ("knee", "front"):
        raise SpecError("trials", trials, "'knee', 'front' or a list of trial ids")
    ids = [] if isinstance(trials, str) else [str(t) for t in trials]
    return export_run(run, trial_ids=ids, front=trials == "front", formats=formats, out=out, trust=trust)


def choice(values: Sequence[Any], *, default: Any = None) -> dict[str, Any]:
    """A searched key taking one of ``values``."""
    return _param("choice", values=list(values), default=default)


def uniform(low: float, high: float, *, default: float | None = None) -> dict[str, Any]:
    """A searched float, uniform in [low, high]."""
    return _param("uniform", low=low, high=high, default=default)


def loguniform(low: float, high: float, *, default: float | None = None) -> dict[str, Any]:
    """A searched float, log-uniform in [low, high] (low > 0): learning rates, weight decay."""
    return _param("loguniform", low=low, high=high, default=default)


def integer(low: int, high: int, *, step: int = 1, default: int | None = None) -> dict[str, Any]:
    """A searched integer in [low, high] on a grid of ``step``."""
    return _param("int", low=low, high=high, step=step, default=default)


def _param(kind: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, **{k: v for k, v in fields.items() if v is not None}}
