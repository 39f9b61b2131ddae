"""Issue 17, item 1: the Optuna study of a real sweep, read by Optuna and by the real optuna-dashboard.

One multi-objective sweep (a user's MLP on digits: f1 max, energy_j min, MO-ASHA stopping some trials) runs once
(module fixture) into its journal file. The study must name its objectives, hold every epoch (pruned trials
included) and each trial's energy facts, agreeing with the run directory; optuna-dashboard (a test-only
dependency) is started on 127.0.0.1 against that journal and its JSON API read back.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest

from orchestrator.optuna_study import BY_EPOCH_SUFFIX, record_epoch, trial_facts, write_trial
from rundir import optuna_storage, read_run

ROOT = Path(__file__).resolve().parents[2]
NAME = "mo"
OBJECTIVES = ["f1", "energy_j"]
SPEC = """
name: mo_spec
trainable: tests.fixtures.custom_trainable:train
fixed: {epochs: 3}
space:
  hidden: {kind: int, low: 8, high: 64, step: 8}
  act: {kind: choice, values: [relu, tanh]}
  lr: {kind: loguniform, low: 1.0e-3, high: 3.0e-2}
objectives:
  - {metric: f1, direction: max}
  - {metric: energy_j, direction: min}
sampler: {kind: random, seed: 0}
scheduler: {kind: moasha, grace_period: 1, reduction_factor: 2}
num_samples: 6
energy: {idle_baseline_s: 0}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("optuna_study")
    (tmp / "spec.yaml").write_text(SPEC)
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(tmp / "spec.yaml"), "--storage", str(tmp / "runs")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([*cmd, "--name", NAME], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return tmp / "runs" / NAME


@pytest.fixture(scope="module")
def study(run_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name=NAME, storage=optuna_storage(run_dir))


def _epochs(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    return {t.trial_id: t.epochs for t in read_run(run_dir).trials}


def test_objectives_are_named_after_their_metrics(study: optuna.Study) -> None:
    assert study.metric_names == OBJECTIVES
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert "f1_by_epoch" in study.user_attrs["intermediate_values"]


def test_every_epoch_is_in_the_study_pruned_trials_included(run_dir: Path, study: optuna.Study) -> None:
    epochs = _epochs(run_dir)
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states, states
    for t in study.trials:
        reported = epochs[t.user_attrs["tune_trial_id"]]
        assert reported, t.number
        # none: Optuna's samplers read a multi-objective study's intermediate values as a single objective's
        assert t.intermediate_values == {}
        for metric in OBJECTIVES:  # every objective per epoch, epoch 1 first
            assert t.user_attrs[metric + BY_EPOCH_SUFFIX] == [float(e[metric]) for e in reported], (t.number, metric)
        if t.state == optuna.trial.TrialState.PRUNED:
            assert len(reported) < 3 and t.values is None


def test_trial_facts_are_user_attributes(run_dir: Path, study: optuna.Study) -> None:
    epochs = _epochs(run_dir)
    for t in study.trials:
        last = epochs[t.user_attrs["tune_trial_id"]][-1]
        assert t.user_attrs["epochs_run"] == last["epoch"]
        assert t.user_attrs["budget_epochs"] == 3
        for key in ("energy_j", "energy_source", "energy_estimated", "time_s", "energy_cpu_j"):
            assert t.user_attrs[key] == last[key], (t.number, key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:  # why: a server this test started locally
        return json.loads(r.read())


def test_optuna_dashboard_serves_the_finished_run(run_dir: Path, study: optuna.Study) -> None:
    import optuna_dashboard  # noqa: F401  # why imported: a test-only dependency that must be there, not skipped

    port = _free_port()
    journal = str(run_dir / "optuna_journal.log")
    code = "import sys; from optuna_dashboard._cli import main; sys.argv[0] = 'optuna-dashboard'; main()"
    cmd = [sys.executable, "-c", code, journal, "--host", "127.0.0.1", "--port", str(port), "--server", "wsgiref"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                listed = _get(f"{base}/api/studies")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "optuna-dashboard did not start"
                time.sleep(0.5)
        (summary,) = [s for s in listed["study_summaries"] if s["study_name"] == NAME]
        assert summary["directions"] == ["maximize", "minimize"]
        detail = _get(f"{base}/api/studies/{summary['study_id']}?after=0")
        assert detail["name"] == NAME
        assert detail["objective_names"] == OBJECTIVES
        assert detail["has_intermediate_values"] is False  # several objectives: per epoch in user attributes
        by_number = {t.number: t for t in study.trials}
        assert len(detail["trials"]) == len(by_number)
        for served in detail["trials"]:
            t = by_number[served["number"]]
            assert served["state"].lower() == t.state.name.lower()
            assert {v["step"]: v["value"] for v in served["intermediate_values"]} == t.intermediate_values
            attrs = {a["key"]: a["value"] for a in served["user_attrs"]}
            assert attrs["energy_source"] == t.user_attrs["energy_source"]
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- the adapter on its own (no Ray): the private Optuna attributes it relies on, pinned ---------------------


@pytest.mark.parametrize("objectives", [["f1"], ["f1", "energy_j"]])
def test_record_epoch_in_single_and_multi_objective_studies(objectives: list[str]) -> None:
    study = optuna.create_study(directions=["maximize"] * len(objectives))
    trial = study.ask()
    seen: dict[str, list[Any]] = {}
    for epoch, f1 in ((1, 0.5), (2, 0.7), (2, 0.75)):  # epoch 2 again: a retried trial's repeat
        record_epoch(trial, {"epoch": epoch, "f1": f1, "energy_j": 10.0 * epoch}, objectives, seen)
    assert not study.trials[0].user_attrs  # the per-epoch series are written once, when the trial ends
    record_epoch(trial, {"epoch": 3, "f1": 0.8, "energy_j": 30.0}, objectives, seen, ended=True)
    frozen = study.trials[0]
    if len(objectives) == 1:
        assert frozen.intermediate_values == {1: 0.5, 2: 0.7, 3: 0.8}  # Trial.report keeps a step's first value
    else:
        assert frozen.intermediate_values == {}  # as Optuna keeps a multi-objective study: see the next test
        assert frozen.user_attrs["f1_by_epoch"] == [0.5, 0.75, 0.8]
        assert frozen.user_attrs["energy_j_by_epoch"] == [10.0, 20.0, 30.0]
    with pytest.raises(NotImplementedError):  # why the storage path: Optuna refuses report() for several
        optuna.create_study(directions=["maximize", "minimize"]).ask().report(0.5, step=1)


def test_tpe_samples_a_multi_objective_study_with_stopped_trials_as_wattsweep_writes_it() -> None:
    """The study as the searcher writes it (every epoch through ``record_epoch``, stopped trials PRUNED) is one
    Optuna's TPE can sample from. It could not while the first objective's epochs were stored as intermediate
    values: TPE ranks a pruned trial by its last intermediate value with ``study.direction``, which raises in a
    multi-objective study, so every TPE sweep with MO-ASHA stopped at its first ask after TPE's startup trials."""
    sampler = optuna.samplers.TPESampler(seed=0, multivariate=True, n_startup_trials=2)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for i in range(6):
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        epochs = 1 if i % 2 else 3  # every other trial stopped after its first epoch
        seen: dict[str, list[Any]] = {}
        for epoch in range(1, epochs + 1):
            result = {"epoch": epoch, "f1": 0.5 + 0.1 * epoch - lr, "energy_j": 10.0 * epoch}
            record_epoch(trial, result, OBJECTIVES, seen, ended=epoch == epochs)
        if epochs == 3:
            study.tell(trial, [result["f1"], result["energy_j"]])
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    asked = study.ask()  # TPE past its startup trials, with pruned trials to rank
    assert 1e-3 <= asked.suggest_float("lr", 1e-3, 1e-1, log=True) <= 1e-1
    assert [t.user_attrs["f1_by_epoch"] for t in study.trials[:2]] == [
        [pytest.approx(0.5 + 0.1 * e - study.trials[0].params["lr"]) for e in (1, 2, 3)],
        [pytest.approx(0.6 - study.trials[1].params["lr"])],
    ]


def test_a_trials_attributes_go_to_the_journal_in_one_write(tmp_path: Path) -> None:
    """The journal records write_trial appends are Optuna's own: another process's storage replays them."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = str(tmp_path / "journal.log")
    storage = JournalStorage(JournalFileBackend(path))
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    trial = study.ask()
    writes: list[int] = []
    append = storage._backend.append_logs
    storage._backend.append_logs = lambda logs: (writes.append(len(logs)), append(logs))[1]  # type: ignore[method-assign]
    attrs = {"energy_source": "nvml-counter", "epochs_run": 3, "energy_estimated": False}
    record_epoch(trial, {"epoch": 3, "f1": 0.8, "energy_j": 30.0}, ["f1", "energy_j"], {}, attrs, ended=True)
    assert writes == [5]  # two objectives' series, three facts: one append of five records
    assert trial.user_attrs["energy_source"] == "nvml-counter"  # what Trial.set_user_attr would have shown
    study.tell(trial, [0.8, 30.0])
    again = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(path))).trials[0]
    assert again.intermediate_values == {}
    assert again.user_attrs == {**attrs, "f1_by_epoch": [None, None, 0.8], "energy_j_by_epoch": [None, None, 30.0]}
    with pytest.raises(RuntimeError, match="finished"):  # as Optuna's own set_user_attr on an ended trial
        write_trial(trial, {"late": 1, "later": 2})


def test_a_result_without_an_epoch_or_a_finite_objective_is_no_point() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    for result in ({"f1": 0.5, "energy_j": 1.0}, {"epoch": 1, "f1": float("nan"), "energy_j": 1.0}):
        record_epoch(trial, result, ["f1", "energy_j"], {})
    assert study.trials[0].intermediate_values == {} and study.trials[0].user_attrs == {}


def test_trial_facts_keep_finite_numbers_and_short_text() -> None:
    result = {"energy_j": 3.5, "energy_source": "nvml-counter", "energy_estimated": False, "time_s": float("nan")}
    result |= {"energy_gpu_j": None, "gpu_model": "x" * 300, "confusion_matrix": [[1]]}
    assert trial_facts(result) == {"energy_j": 3.5, "energy_source": "nvml-counter", "energy_estimated": False}


# --- --optuna-storage: refused before Ray starts (exit 2), the password never shown -------------------------


def _sweep(tmp: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    (tmp / "spec.yaml").write_text(SPEC)
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(tmp / "spec.yaml"), "--storage", str(tmp / "runs")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*cmd, *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_storage_url_with_a_password_is_refused_and_never_printed(tmp_path: Path) -> None:
    r = _sweep(tmp_path, "--optuna-storage", "postgresql://alice:hunter2@db.example/studies")
    assert r.returncode == 2, r.stderr
    assert "--optuna-storage" in r.stderr and "postgresql://***@db.example/studies" in r.stderr
    assert "hunter2" not in r.stdout + r.stderr
    assert not (tmp_path / "runs").exists()


def test_a_storage_that_cannot_be_opened_or_holds_the_name_is_refused(tmp_path: Path) -> None:
    r = _sweep(tmp_path, "--optuna-storage", f"sqlite:///{tmp_path}/no/such/dir/x.db", "--name", "n1")
    assert r.returncode == 2 and "--optuna-storage" in r.stderr, r.stderr
    db = f"sqlite:///{tmp_path}/team.db"
    optuna.create_study(study_name="taken", storage=db)
    r = _sweep(tmp_path, "--optuna-storage", db, "--name", "taken")
    assert r.returncode == 2 and "--name: got 'taken'" in r.stderr, r.stderr
    assert not (tmp_path / "runs" / "taken").exists() and not (tmp_path / "runs" / "n1").exists()  # the run dirs
