"""Which trials and formats an export means: pure rules over a run's records, bad input as ``SpecError``.

The front and the knee are the report's own (``reports.analysis.analyse_front`` over the same trials table), so
``export --knee`` exports the trial the report calls the knee.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rundir import TUNE_DIR, RunRecord
from rundir.layout import FINAL_MODEL
from search_spaces import SpecError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("onnx", "torchscript", "int8")
WATCH_HINT = (
    "a trial whose trainable handed over its final model: call ctx.watch(model, example_input) in train() with the "
    "model as it ends (example_input: one input, batch 1; the model's class importable, not defined in __main__ or "
    "inside a function) and sweep again"
)


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"onnx,int8"`` (or a sequence of names) -> the formats in FORMATS order. SpecError naming ``--format``."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        got = ",".join(unknown) if unknown else str(text)
        raise SpecError("--format", got, f"a comma-separated list of {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in names)


def choose_trials(run: RunRecord, *, trial_ids: Sequence[str] = (), front: bool = False) -> list[str]:
    """The trial ids to export: ``trial_ids`` as given, else the whole front (``front``), else the knee.

    SpecError when an id is not a trial of the run, a trial did not complete, or the run has no front.
    """
    states = {t.trial_id: t.state for t in run.trials}
    for tid in trial_ids:
        if tid not in states:
            known = ", ".join(sorted(states)[:20]) + (" ..." if len(states) > 20 else "")
            raise SpecError("--trial", tid, f"a trial of {run.run_dir.name} ({known or 'it has no trials'})")
        if states[tid] != "complete":
            raise SpecError(
                "--trial", tid, f"a complete trial (one that ran its whole epoch budget); {tid} is {states[tid]}"
            )
    if trial_ids:
        return list(dict.fromkeys(trial_ids))
    trials = _analysed(run)
    flag = "--front" if front else "--knee"
    picked = trials[trials["on_front"]] if front else trials[trials["knee"]]
    if picked.empty:
        raise SpecError(flag, str(run.run_dir), "a run with complete trials that reported every objective")
    return [str(t) for t in picked["trial_id"]]


def _analysed(run: RunRecord) -> pd.DataFrame:
    from reports import analysis
    from reports.table import build_tables

    objectives = analysis.objectives_from_manifest(run.manifest)
    trials, _ = analysis.analyse_front(build_tables(run).trials, objectives)
    return trials


def final_model_file(run_dir: Path, trial_id: str) -> Path:
    """``tune/trial_<id>/checkpoint_*/final_model.pt`` of a complete trial. SpecError naming RUN_DIR when the run
    has no checkpoint for it, naming the trial (with what to hand over) when its trainable never handed a model."""
    trial_dir = run_dir / TUNE_DIR / f"trial_{trial_id}"
    checkpoints = sorted(trial_dir.glob("checkpoint_*")) if trial_dir.is_dir() else []
    if not checkpoints:
        raise SpecError(
            "RUN_DIR",
            str(run_dir),
            f"a run with its checkpoints ({TUNE_DIR}/trial_<id>/checkpoint_*/): there is none for trial {trial_id}",
        )
    found = [c / FINAL_MODEL for c in checkpoints if (c / FINAL_MODEL).is_file()]
    if not found:
        raise SpecError("--trial", trial_id, f"{WATCH_HINT} (its final checkpoint holds no {FINAL_MODEL})")
    return found[-1]
