"""The run directory's names and its one rule for how a trial ended (see the package docstring for the layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

MANIFEST = "wattsweep.json"
LOCK = "wattsweep.lock"  # the driver holding the run: host and pid (rundir.writer.RunLock)
EPOCHS = "epochs.jsonl"  # per trial, under TRIALS_DIR/<trial_id>/
TRIALS_DIR = "trials"
REPORT_DIR = "report"
TUNE_DIR = "tune"
OPTUNA_JOURNAL = "optuna_journal.log"
OPTUNA_DB = "optuna.db"  # why: the study file of runs made before the journal
# A complete trial's final model, whole (torch.save of the module: a pickle), beside its last checkpoint's state
# under TUNE_DIR/trial_<trial_id>/checkpoint_*/; what `export` reads (unpickling runs code: the run must be trusted)
FINAL_MODEL = "final_model.pt"
EXPORTS_DIR = "exports"  # `export` output: EXPORTS_DIR/<trial_id>/ holds the artifacts and MODEL_CARD
MODEL_CARD = "model_card.json"

TrialState = Literal["running", "complete", "stopped", "failed"]
TRIAL_STATES: tuple[TrialState, ...] = ("running", "complete", "stopped", "failed")


def end_state(*, error: bool, epochs_run: int, budget_epochs: int) -> TrialState:
    """The one rule for how a trial ended, used by the run directory and the Optuna study alike.

    ``failed``: it raised (after its retries); that includes breaking the trainable contract, e.g. a missing
    or non-finite objective (``trainables.contract``). ``complete``: it reported its whole epoch budget.
    ``stopped``: it ended earlier without an error (a scheduler, an energy budget, or the trainable returned).
    """
    if error:
        return "failed"
    return "complete" if budget_epochs and epochs_run >= budget_epochs else "stopped"


def optuna_storage(run_dir: Path | str) -> Any:
    """The Optuna storage of a run's study, for ``optuna.load_study(study_name=<run name>, storage=...)``.

    A new run's study is the journal file; a run that has only ``optuna.db`` (made before the journal) its SQLite URL;
    a run made with ``--optuna-storage URL`` (``optuna_storage:`` in its spec) that URL, as its manifest keeps it.
    """
    run_dir = Path(run_dir)
    url = _manifest_storage_url(run_dir)
    if url is not None:
        return url
    if not (run_dir / OPTUNA_JOURNAL).exists() and (run_dir / OPTUNA_DB).exists():
        return f"sqlite:///{(run_dir / OPTUNA_DB).resolve()}"
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str((run_dir / OPTUNA_JOURNAL).resolve())))


def _manifest_storage_url(run_dir: Path) -> str | None:
    """The Optuna storage URL the run's manifest names (its CLI override, else its spec's); None for none."""
    import json

    try:
        raw = json.loads((run_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    for section in (raw.get("overrides"), raw.get("spec")):
        url = section.get("optuna_storage") if isinstance(section, dict) else None
        if isinstance(url, str) and url:
            return url
    return None


class NotARunError(ValueError):
    """The path is not a wattsweep run directory."""
