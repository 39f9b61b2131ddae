"""Issue 17, items 1-3 on one real sweep: MLflow and W&B through Ray Tune's own callbacks, the study in a storage URL.

One single-objective sweep (a user's MLP on digits, f1 max) runs once (module fixture) with ``loggers: [mlflow,
wandb]`` in its spec, MLflow pointed at a real file store through MLflow's own environment variables and W&B in its
default offline mode (no network), the Optuna study in a SQLite URL (``--optuna-storage``), and the grid set for
the run (``--grid-intensity``). What each tool holds is read back with the tool itself (``mlflow.search_runs``, the
W&B run files) and compared with the run directory.
"""

from __future__ import annotations

import glob
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from orchestrator.sweep import load_run_spec
from orchestrator.trackers import check_trackers, epoch_record, tracker_callbacks
from rundir import optuna_storage, read_run
from search_spaces import SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[2]
NAME = "tracked"
GRID = 123.0
SPEC = """
name: tracked_spec
trainable: tests.fixtures.custom_trainable:train
fixed: {epochs: 2}
space:
  hidden: {kind: int, low: 8, high: 32, step: 8}
  act: {kind: choice, values: [relu, tanh]}
  lr: {kind: loguniform, low: 1.0e-3, high: 3.0e-2}
objectives:
  - {metric: f1, direction: max}
sampler: {kind: random, seed: 0}
num_samples: 2
loggers: [mlflow, wandb]
energy: {idle_baseline_s: 0}
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # why no importorskip: mlflow and wandb are in requirements-dev.txt; a missing install must fail, not skip
    tmp = tmp_path_factory.mktemp("trackers")
    (tmp / "spec.yaml").write_text(SPEC)
    mlruns, db = tmp / "mlruns", f"sqlite:///{tmp / 'team.db'}"
    # why the env: MLflow's own settings; 3.x refuses a new file store unless told it is wanted
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": mlruns.as_uri()}
    env |= {"MLFLOW_ALLOW_FILE_STORE": "true", "WANDB_SILENT": "true"}
    env.pop("WANDB_MODE", None)  # the default must be offline
    env.pop("WANDB_API_KEY", None)
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(tmp / "spec.yaml"), "--storage", str(tmp / "runs")]
    cmd += ["--name", NAME, "--optuna-storage", db, "--grid-intensity", str(GRID)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (tmp / "sweep.log").write_text(r.stdout + r.stderr)  # why: what the trackers said, for a failing check below
    run_dir = tmp / "runs" / NAME
    return {
        "run_dir": run_dir,
        "mlruns": mlruns,
        "db": db,
        "epochs": {t.trial_id: t.epochs for t in read_run(run_dir).trials},
    }


def test_mlflow_has_one_run_per_trial_with_config_epochs_and_energy(
    sweep: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(sweep["mlruns"].as_uri())
    runs = mlflow.search_runs(experiment_names=[NAME])
    client = mlflow.MlflowClient()
    assert len(runs) == len(sweep["epochs"]) == 2
    for _, run in runs.iterrows():
        trial_id = run["tags.trial_name"].rpartition("_")[2]
        epochs = sweep["epochs"][trial_id]
        last = epochs[-1]
        assert run["status"] == "FINISHED"
        assert {"params.hidden", "params.act", "params.lr", "params.epochs"} <= set(run.index)
        for metric in ("f1", "energy_j", "energy_cpu_j", "time_s"):
            assert run[f"metrics.{metric}"] == pytest.approx(last[metric]), metric
        history = client.get_metric_history(run["run_id"], "f1")
        assert [(h.step, h.value) for h in history] == [(e["epoch"], pytest.approx(e["f1"])) for e in epochs]
        assert run["tags.energy_source"] == last["energy_source"]
        assert run["tags.wattsweep_run"] == NAME


def _wandb_records(path: str) -> Iterator[Any]:
    """The records of a W&B run file (LevelDB's log format after a 7-byte W&B header; wandb 0.31 ships no
    Python reader of its own). Records' payloads are wandb's own protobuf ``Record``s."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = Path(path).read_bytes(), 32768
    assert data[:4] == b":W&B", data[:7]
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a record header is padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        buf = chunk if kind in (1, 2) else buf + chunk  # FULL, FIRST start a record; MIDDLE, LAST continue it
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)  # why: wandb writes a key either way


def test_wandb_offline_run_files_hold_config_epochs_and_energy(sweep: dict[str, Any]) -> None:
    for trial_id, epochs in sweep["epochs"].items():
        (path,) = glob.glob(str(sweep["run_dir"] / "wandb" / f"offline-run-*-{trial_id}" / f"run-{trial_id}.wandb"))
        config: dict[str, str] = {}
        history: list[dict[str, str]] = []
        project = group = None
        for record in _wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                project, group = record.run.project, record.run.run_group
                config |= {_key(i): i.value_json for i in record.run.config.update}
            elif kind == "config":
                config |= {_key(i): i.value_json for i in record.config.update}
            elif kind == "history":
                history.append({_key(i): i.value_json for i in record.history.item})
        log = (sweep["run_dir"].parents[1] / "sweep.log").read_text()
        assert (project, group) == ("wattsweep", NAME), (Path(path).stat().st_size, log[-3000:])
        assert {"hidden", "act", "lr", "epochs"} <= set(config)
        assert config["energy_source"] == f'"{epochs[-1]["energy_source"]}"'
        assert [int(h["epoch"]) for h in history] == [e["epoch"] for e in epochs]
        assert [int(h["_step"]) for h in history] == [e["epoch"] for e in epochs]  # W&B's step is the epoch
        for h, e in zip(history, epochs, strict=True):
            for metric in ("f1", "energy_j", "energy_cpu_j"):
                assert float(h[metric]) == pytest.approx(e[metric]), metric


def test_the_study_is_in_the_storage_url_with_every_epoch(sweep: dict[str, Any]) -> None:
    assert not (sweep["run_dir"] / "optuna_journal.log").exists()
    assert optuna_storage(sweep["run_dir"]) == sweep["db"]  # what wattsweep.SweepResult.study opens
    study = optuna.load_study(study_name=NAME, storage=sweep["db"])
    assert study.metric_names == ["f1"]
    assert len(study.trials) == 2
    for t in study.trials:
        epochs = sweep["epochs"][t.user_attrs["tune_trial_id"]]
        # one objective: Trial.report, so the dashboard's learning-curve chart draws it
        assert t.intermediate_values == {e["epoch"]: pytest.approx(e["f1"]) for e in epochs}
        assert t.state == optuna.trial.TrialState.COMPLETE


def test_resume_restores_the_new_settings(sweep: dict[str, Any]) -> None:
    spec = load_run_spec(sweep["run_dir"])
    assert spec.loggers == ("mlflow", "wandb")
    assert spec.optuna_storage == sweep["db"]
    assert spec.energy.grid_g_per_kwh == GRID


def test_the_run_records_the_grid_set_for_it(sweep: dict[str, Any]) -> None:
    import json

    carbon = json.loads((sweep["run_dir"] / "wattsweep.json").read_text())["carbon"]
    assert carbon["grid_g_per_kwh"] == GRID and carbon["grid_estimated"] is False
    assert "--grid-intensity" in carbon["grid_source"]


# --- without a sweep ------------------------------------------------------------------------------------------


def _spec(**keys: Any) -> Any:
    return parse_spec({"name": "s", **keys})


def test_trackers_are_off_by_default(tmp_path: Path) -> None:
    assert _spec().loggers == ()
    assert tracker_callbacks(_spec(), tmp_path) == []


def test_mlflow_defaults_to_a_store_in_the_run_and_wandb_to_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_MODE", "WANDB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    mlflow_cb, wandb_cb = tracker_callbacks(_spec(loggers=["mlflow", "wandb"]), tmp_path)
    assert mlflow_cb.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert mlflow_cb.experiment_name == "s"
    assert wandb_cb.kwargs["mode"] == "offline" and wandb_cb.kwargs["dir"] == str(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:token@mlflow.example")
    (mlflow_cb,) = tracker_callbacks(_spec(loggers=["mlflow"]), tmp_path)
    assert mlflow_cb.tracking_uri is None  # MLflow reads it from the environment; Tune never pickles it


def test_a_tracker_that_is_not_installed_is_refused_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(SpecError) as info:
        check_trackers(_spec(loggers=["wandb"]))
    assert info.value.field == "loggers" and "pip install wandb" in str(info.value)


def test_epoch_record_splits_numbers_from_text_and_drops_lists() -> None:
    result = {"epoch": 2, "f1": 0.5, "energy_j": 3.0, "energy_source": "rapl", "energy_estimated": False}
    result |= {"confusion_matrix": [[1, 2]], "config": {"lr": 0.1}, "energy_provenance": {"backend": "rapl"}}
    numbers, text = epoch_record(result)
    assert numbers == {"epoch": 2, "f1": 0.5, "energy_j": 3.0, "energy_estimated": False}
    assert text == {"energy_source": "rapl"}


def test_resume_refuses_a_run_whose_tracker_is_no_longer_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from orchestrator.sweep import resume_sweep
    from rundir import RunWriter
    from rundir.manifest import RunManifest

    run_dir = tmp_path / "r"
    RunWriter(run_dir).write_manifest(RunManifest(name="r", spec={"name": "r", "loggers": ["wandb"]}))
    (run_dir / "tune").mkdir()
    (run_dir / "tune" / "tuner.pkl").write_bytes(b"")  # never read: the check comes first
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(SpecError) as info:
        resume_sweep(run_dir)
    assert info.value.field == "loggers" and info.value.value == "wandb"


def test_tracker_callbacks_follow_a_moved_or_copied_run_when_it_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray.cloudpickle as cloudpickle

    from orchestrator.relocate import resuming_at

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = parse_spec({"name": "t", "loggers": ["mlflow", "wandb"]})
    old, new = tmp_path / "first" / "r", tmp_path / "moved" / "r"
    saved = cloudpickle.dumps(tracker_callbacks(spec, old))  # as Tune pickles them into tuner.pkl
    with resuming_at(new):
        mlflow_cb, wandb_cb = cloudpickle.loads(saved)
    assert mlflow_cb.tracking_uri == f"sqlite:///{new.resolve() / 'mlflow.db'}"
    assert wandb_cb.kwargs["dir"] == str(new) and {mlflow_cb.run_dir, wandb_cb.run_dir} == {str(new)}
    unmoved = cloudpickle.loads(saved)  # outside a resume nothing changes
    assert unmoved[0].tracking_uri == f"sqlite:///{old.resolve() / 'mlflow.db'}"
    # a store the user named (MLFLOW_TRACKING_URI) is not the run's: it is never repointed
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    with resuming_at(new):
        theirs = cloudpickle.loads(cloudpickle.dumps(tracker_callbacks(spec, old)))[0]
    assert theirs.tracking_uri is None
