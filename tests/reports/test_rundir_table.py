"""Reading a run directory back, and the tidy tables made from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from reports.table import CONFIG_COLUMNS, build_tables, tidy_column
from rundir import NotARunError, RunWriter, optuna_storage, read_run
from trainables.config import TrialConfig


def test_every_trial_config_key_is_a_trials_column(tmp_path: Path) -> None:
    # why: a key added to TrialConfig (bn_recalibrate was) must reach the report's columns, in config order
    w = RunWriter(tmp_path)
    w.write_manifest({"name": "x"})
    w.start_trial("a", TrialConfig(bn_recalibrate=False).to_dict(), 1)
    trials = build_tables(read_run(tmp_path)).trials
    keys = [f.name for f in dataclasses.fields(TrialConfig)]
    assert [c for c in trials.columns if c in keys] == keys == list(CONFIG_COLUMNS)
    assert not bool(trials.loc[0, "bn_recalibrate"])


def test_read_run_flags_corrupt_and_partial_trials(run_dir: Path) -> None:
    run = read_run(run_dir)
    by_id = {t.trial_id: t for t in run.trials}
    bad = by_id["t_corrupt"]
    assert bad.unreadable is not None
    assert "epochs.jsonl line 2" in bad.unreadable and "state.json: missing" in bad.unreadable
    assert len(bad.epochs) == 1  # the readable line is kept
    assert by_id["t_failed"].error == "RuntimeError: CUDA out of memory"
    assert by_id["t000"].ended_at is not None and by_id["t_running"].ended_at is None
    assert all(t.unreadable is None for t in run.trials if t.trial_id != "t_corrupt")


def test_two_objects_on_one_line_is_not_read_as_two_epochs(tmp_path: Path) -> None:
    w = RunWriter(tmp_path)
    w.write_manifest({"name": "x"})
    w.start_trial("a", {"depth": 8}, 2)
    (tmp_path / "trials" / "a" / "epochs.jsonl").write_text('{"epoch": 1}, {"epoch": 2}\n7\n{"epoch": 3}\n')
    t = read_run(tmp_path).trials[0]
    assert [e["epoch"] for e in t.epochs] == [3]
    assert t.unreadable is not None and "line 1" in t.unreadable and "line 2: not a JSON object" in t.unreadable


@pytest.mark.parametrize("bad_id", ["", "..", "a/b", "../escape"])
def test_writer_refuses_ids_that_are_not_plain_names(tmp_path: Path, bad_id: str) -> None:
    with pytest.raises(ValueError, match="trial_id"):
        RunWriter(tmp_path).start_trial(bad_id, {}, 1)


def test_read_run_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(NotARunError, match="nowhere"):
        read_run(tmp_path / "nowhere")
    with pytest.raises(NotARunError, match=str(tmp_path)):
        read_run(tmp_path)


def test_trials_table_one_row_per_trial_with_config_metrics_and_state(run_dir: Path) -> None:
    tables = build_tables(read_run(run_dir))
    t = tables.trials.set_index("trial_id")
    assert len(t) == 20
    assert t.loc["t_stopped", "state"] == "stopped" and t.loc["t_failed", "state"] == "failed"
    assert t.loc["t_running", "state"] == "running"
    assert t.loc["t_failed", "error"] == "RuntimeError: CUDA out of memory"
    assert str(t["depth"].dtype) == "Int64" and str(t["shortcut"].dtype) == "boolean"
    assert t.loc["t000", "energy_source"] == "estimated-cpu"
    assert t.loc["t000", "epochs_run"] == 3 and t.loc["t000", "budget_epochs"] == 3
    # trials ended in the order they were written; those with no end (running) come last, in table order
    assert t.loc["t000", "end_order"] == 0
    assert t.loc["t_stopped", "end_order"] < t.loc["t_failed", "end_order"]
    assert (t.loc["t_corrupt", "end_order"], t.loc["t_running", "end_order"]) == (18, 19)
    e = tables.epochs
    assert len(e) == 16 * 3 + 1 + 1 + 2 + 1
    assert {"trial_id", "epoch", "accuracy", "energy_j"} <= set(e.columns)
    assert "confusion_matrix" not in e.columns


def test_tidy_column_gives_mixed_values_as_text() -> None:
    mixed = tidy_column(pd.Series([8, "<b>", None], dtype=object))
    assert mixed.tolist()[:2] == ["8", "<b>"] and pd.isna(mixed.iloc[2])
    assert str(tidy_column(pd.Series([1, 2, None], dtype=object)).dtype) == "Int64"
    assert str(tidy_column(pd.Series([1, 2.5], dtype=object)).dtype) == "float64"


def test_odd_config_values_still_write_parquet(tmp_path: Path) -> None:
    w = RunWriter(tmp_path)
    w.write_manifest({"name": "x"})
    w.start_trial("a", {"depth": 8, "note": "x"}, 1)
    w.start_trial("b", {"depth": "deep", "note": 3, "state": "shadow"}, 1)
    tables = build_tables(read_run(tmp_path))
    assert tables.trials["depth"].tolist() == ["8", "deep"]
    assert "config_state" in tables.trials.columns  # a config key named like a report column is renamed
    tables.trials.to_parquet(tmp_path / "t.parquet")


def test_optuna_storage_opens_the_journal_and_a_run_made_before_it(tmp_path: Path) -> None:
    import optuna

    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir()
    old.mkdir()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="n", storage=optuna_storage(new), directions=["maximize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[0.9, 3.0]))
    assert (new / "optuna_journal.log").read_text().count("\n") >= 2  # one JSON line per operation
    assert not (new / "optuna.db").exists()
    optuna.create_study(study_name="o", storage=f"sqlite:///{old / 'optuna.db'}").add_trial(
        optuna.trial.create_trial(value=1.0)
    )
    assert optuna_storage(old) == f"sqlite:///{(old / 'optuna.db').resolve()}"  # no journal written beside it
    assert not (old / "optuna_journal.log").exists()
    assert [t.values for t in optuna.load_study(study_name="n", storage=optuna_storage(new)).trials] == [[0.9, 3.0]]
    assert [t.value for t in optuna.load_study(study_name="o", storage=optuna_storage(old)).trials] == [1.0]
