"""The run directory: the one on-disk format between a sweep and its report, a contract of its own.

The sweep (``orchestrator``) writes it and the report (``reports``) reads it; both import this package, which
imports neither. Here are its path names (``layout``), the one rule for how a trial ended (``end_state``), the
manifest type (``manifest``), the writer (``writer``) and the reader (``reader``).

Layout of ``<storage>/<name>/`` (written by the sweep's driver, read here
without Ray)::

    wattsweep.json              run manifest (see RunManifest keys below)
    optuna_journal.log          the Optuna study (Optuna's JournalStorage, a file of JSON lines), study
                                name == run name; runs made before 2026-12-01 have optuna.db (SQLite)
    tune/                       Ray Tune's own experiment directory (for resume); a complete trial's last
                                checkpoint (tune/trial_<id>/checkpoint_*/) also holds final_model.pt: the
                                model its trainable watched, whole (a pickle), for export
    exports/<trial_id>/         what export writes: model.onnx, model.int8.onnx, model.torchscript.pt and
                                model_card.json (the report reads the cards)
    trials/<trial_id>/config.json   {"trial_id": str, "config": {...trial config...}} (the built-in
                                    trainable's: every TrialConfig key; a user's: its fixed + space keys)
    trials/<trial_id>/epochs.jsonl  one JSON object per reported epoch: names from
                                    trainables.metrics, and the user's own metrics; the last line may
                                    also hold FINAL_METRICS (confusion matrix, layer FLOPs, trace)
    trials/<trial_id>/state.json    {"state": TrialState, "error": str | null,
                                     "epochs_run": int, "budget_epochs": int}
    report/                     what reports.build_report writes

A trial's state: ``running`` (no end seen: still running, or the driver died),
``complete`` (ran its whole epoch budget), ``stopped`` (ended early without an
error: a scheduler or an energy budget stopped it), ``failed`` (raised, after
its retries).
"""

from __future__ import annotations

from rundir.layout import (
    MANIFEST,
    OPTUNA_DB,
    OPTUNA_JOURNAL,
    REPORT_DIR,
    TRIAL_STATES,
    TRIALS_DIR,
    TUNE_DIR,
    NotARunError,
    TrialState,
    end_state,
    optuna_storage,
)
from rundir.reader import RunRecord, TrialRecord, is_run_dir, read_run
from rundir.writer import RunWriter

__all__ = [
    "MANIFEST",
    "OPTUNA_DB",
    "OPTUNA_JOURNAL",
    "REPORT_DIR",
    "TRIALS_DIR",
    "TRIAL_STATES",
    "TUNE_DIR",
    "NotARunError",
    "RunRecord",
    "RunWriter",
    "TrialRecord",
    "TrialState",
    "end_state",
    "is_run_dir",
    "optuna_storage",
    "read_run",
]
