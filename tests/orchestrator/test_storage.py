"""--storage on remote storage: URI checks, and a real sweep into a real S3 protocol server.

The S3 server is moto's (``ThreadedMotoServer`` on 127.0.0.1): the test double at the external-service
boundary. wattsweep, Ray Tune and the Ray workers talk to it through pyarrow's real S3 client, pointed
there by ``AWS_ENDPOINT_URL_S3``. The sweep runs once (module fixture); resume and report then run from
the bucket alone, with the driver's local copy deleted.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import moto.settings
import optuna
import pyarrow.fs as pafs
import pytest
from moto.server import ThreadedMotoServer

from orchestrator.storage import Mirror, MirrorCallback, check_remote, is_uri, parse_uri, staging_dir
from rundir import optuna_storage
from search_spaces import SpecError

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "wattsweep-test"
NAME = "e2e"
SECRET = "wattsweep-test-secret-key"

SPEC = """
name: storage_spec
dataset: {name: digits}
fixed: {model: resnet, depth: 8, epochs: 2, optimizer: adam, lr_decay: cosine, batch_size: 64, prune_every: 1}
space:
  width: {kind: choice, values: [4, 8], default: 8}
  lr: {kind: loguniform, low: 1.0e-3, high: 1.0e-2, default: 3.0e-3}
sampler: {kind: random, seed: 3}
num_samples: 3
"""


# unit: URIs ---------------------------------------------------------------------
def test_is_uri() -> None:
    assert is_uri("s3://b/p") and is_uri("file:///tmp/x")
    assert not is_uri("./runs") and not is_uri(Path("/tmp/runs"))


@pytest.mark.parametrize("uri", ["ftp://host/runs", "http://host/runs", "s3://", "S4://bucket"])
def test_bad_uri_names_storage_and_what_is_allowed(uri: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_uri(uri)
    msg = str(e.value)
    assert "--storage" in msg and uri in msg and "s3://BUCKET/PREFIX" in msg


def test_file_uri_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    uri = f"file://{tmp_path}/file/runs"
    with pytest.raises(SpecError) as e:
        check_remote(uri, "x")
    assert "--storage" in str(e.value) and uri in str(e.value) and "can write" in str(e.value)


def test_file_uri_probe_leaves_nothing(tmp_path: Path) -> None:
    run = check_remote(f"file://{tmp_path}/runs", "x")
    assert run.uri == f"file://{tmp_path}/runs/x"
    assert list((tmp_path / "runs").iterdir()) == []  # the probe object was deleted


def test_staging_dir_differs_per_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTSWEEP_CACHE", str(tmp_path))
    a = staging_dir(parse_uri(f"file://{tmp_path}/a").child("n"))
    b = staging_dir(parse_uri(f"file://{tmp_path}/b").child("n"))
    assert a != b and a.parent == b.parent == tmp_path / "runs"


def test_mirror_uploads_only_what_changed_and_never_tune(tmp_path: Path) -> None:
    local = tmp_path / "local"
    (local / "trials" / "t1").mkdir(parents=True)
    (local / "tune").mkdir()
    (local / "wattsweep.json").write_text("{}")
    (local / "trials" / "t1" / "epochs.jsonl").write_text('{"epoch": 1}\n')
    (local / "tune" / "tuner.pkl").write_bytes(b"tune's own")
    (local / "wattsweep.json.tmp").write_text("half")
    mirror = Mirror(local, parse_uri(f"file://{tmp_path}/remote/run"))
    assert mirror.push() == 2
    assert mirror.push() == 0
    with open(local / "trials" / "t1" / "epochs.jsonl", "a") as f:
        f.write('{"epoch": 2}\n')
    assert mirror.push() == 1
    remote = tmp_path / "remote" / "run"
    assert (remote / "trials" / "t1" / "epochs.jsonl").read_text().count("epoch") == 2
    assert not (remote / "tune").exists() and not (remote / "wattsweep.json.tmp").exists()


def test_callback_mirrors_whenever_tune_saves_its_state(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "optuna_journal.log").write_bytes(b"v1")
    callback = MirrorCallback(Mirror(local, parse_uri(f"file://{tmp_path}/remote")))
    assert callback.get_state() is None  # why: None, so Tune writes no callback-state file
    assert (tmp_path / "remote" / "optuna_journal.log").read_bytes() == b"v1"
    (local / "optuna_journal.log").write_bytes(b"v2, longer")
    callback.on_experiment_end(trials=[])
    assert (tmp_path / "remote" / "optuna_journal.log").read_bytes() == b"v2, longer"


# S3 (moto) ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    """A real S3-protocol server on 127.0.0.1 with one bucket; the environment that points clients at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",  # why: never wait for an EC2 metadata service that is not there
    }
    fs = pafs.S3FileSystem(
        access_key="testing",
        secret_key=SECRET,
        region="us-east-1",
        endpoint_override=f"http://{host}:{port}",
        allow_bucket_creation=True,
    )
    fs.create_dir(BUCKET)
    yield env
    server.stop()


@pytest.fixture
def s3(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> pafs.FileSystem:
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    return pafs.FileSystem.from_uri(f"s3://{BUCKET}")[0]


def test_bucket_that_does_not_exist(s3: pafs.FileSystem) -> None:
    with pytest.raises(SpecError) as e:
        check_remote("s3://no-such-bucket/runs", "x")
    msg = str(e.value)
    assert "--storage" in msg and "s3://no-such-bucket/runs" in msg and "bucket does not exist" in msg


def test_credentials_refused(s3: pafs.FileSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    # why: moto checks credentials against its (empty) IAM once this count of unchecked calls is used up
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    with pytest.raises(SpecError) as e:
        check_remote(f"s3://{BUCKET}/runs", "x")
    assert "--storage" in str(e.value) and "credentials missing or refused" in str(e.value)


def test_probe_leaves_nothing_in_the_bucket(s3: pafs.FileSystem) -> None:
    check_remote(f"s3://{BUCKET}/probe-only", "x")
    assert s3.get_file_info(pafs.FileSelector(f"{BUCKET}/probe-only", allow_not_found=True)) == []


def cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def sweep(
    s3_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("s3sweep")
    (tmp / "spec.yaml").write_text(SPEC)
    env = {**s3_env, "WATTSWEEP_CACHE": str(tmp / "cache")}
    r = cli(
        "sweep",
        str(tmp / "spec.yaml"),
        "--num-samples",
        "3",
        "--max-epochs",
        "2",
        "--storage",
        f"s3://{BUCKET}/runs",
        "--name",
        NAME,
        env=env,
    )
    return env, r


def _keys(fs: pafs.FileSystem, prefix: str) -> set[str]:
    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True))
    return {i.path[len(prefix) + 1 :] for i in infos if i.type == pafs.FileType.File}


def _read(fs: pafs.FileSystem, key: str) -> bytes:
    with fs.open_input_stream(key) as f:
        return bytes(f.read())


def _trials_csv(fs: pafs.FileSystem) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_read(fs, f"{BUCKET}/runs/{NAME}/report/trials.csv").decode())))


def test_sweep_into_s3_stores_the_whole_run(
    sweep: tuple[dict[str, str], subprocess.CompletedProcess[str]], s3: pafs.FileSystem
) -> None:
    _, r = sweep
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"report: s3://{BUCKET}/runs/{NAME}/report/index.html" in r.stdout
    keys = _keys(s3, f"{BUCKET}/runs/{NAME}")
    for k in ("wattsweep.json", "optuna_journal.log", "report/index.html", "report/trials.csv", "tune/tuner.pkl"):
        assert k in keys, (k, sorted(keys))
    assert SECRET.encode() not in _read(s3, f"{BUCKET}/runs/{NAME}/tune/tuner.pkl")  # Tune pickles our callback
    manifest = json.loads(_read(s3, f"{BUCKET}/runs/{NAME}/wattsweep.json"))
    assert manifest["status"] == "finished"
    assert manifest["storage"]["uri"] == f"s3://{BUCKET}/runs/{NAME}"
    trials = _trials_csv(s3)
    assert len(trials) == 3 and all(t["state"] == "complete" for t in trials)
    for t in trials:
        tid = t["trial_id"]
        assert {f"trials/{tid}/config.json", f"trials/{tid}/state.json", f"trials/{tid}/epochs.jsonl"} <= keys
        epochs = _read(s3, f"{BUCKET}/runs/{NAME}/trials/{tid}/epochs.jsonl").decode().splitlines()
        assert [json.loads(e)["epoch"] for e in epochs] == [1, 2]
        # Tune's checkpoints were written to the bucket by the Ray workers themselves
        assert any(k.startswith(f"tune/trial_{tid}/checkpoint_") and k.endswith("trial_state.pt") for k in keys), tid


def test_resume_and_report_from_the_bucket_alone(
    sweep: tuple[dict[str, str], subprocess.CompletedProcess[str]], s3: pafs.FileSystem, tmp_path: Path
) -> None:
    env, r = sweep
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads(_read(s3, f"{BUCKET}/runs/{NAME}/wattsweep.json"))
    local = Path(manifest["storage"]["local_dir"])
    shutil.rmtree(local)  # why: a new driver (another machine, or a lost disk) has only the bucket
    s3.delete_dir_contents(f"{BUCKET}/runs/{NAME}/report")
    # the driver died after its last trial, before it could mark the run finished (a finished run is not resumed)
    with s3.open_output_stream(f"{BUCKET}/runs/{NAME}/wattsweep.json") as f:
        f.write(json.dumps({**manifest, "status": "running", "finished_at": None}).encode())

    r2 = cli("resume", f"s3://{BUCKET}/runs/{NAME}", env=env)
    assert r2.returncode == 0, r2.stdout[-3000:] + r2.stderr[-3000:]
    assert (local / "optuna_journal.log").is_file()  # downloaded where Tune's pickled state expects it
    trials = _trials_csv(s3)  # the report is back in the bucket
    assert len(trials) == 3 and all(t["state"] == "complete" for t in trials)
    study = optuna.load_study(study_name=NAME, storage=optuna_storage(local))
    assert len(study.trials) == 3  # nothing re-run, nothing added
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)

    r_again = cli("resume", f"s3://{BUCKET}/runs/{NAME}", env=env)
    assert r_again.returncode == 0 and "nothing to resume" in r_again.stdout, r_again.stderr[-3000:]

    s3.delete_dir_contents(f"{BUCKET}/runs/{NAME}/report")
    r3 = cli("report", f"s3://{BUCKET}/runs/{NAME}", env=env)
    assert r3.returncode == 0, r3.stderr[-3000:]
    assert f"report: s3://{BUCKET}/runs/{NAME}/report/index.html" in r3.stdout
    assert len(_trials_csv(s3)) == 3


def test_name_already_in_the_bucket(
    sweep: tuple[dict[str, str], subprocess.CompletedProcess[str]], s3: pafs.FileSystem
) -> None:
    assert sweep[1].returncode == 0
    with pytest.raises(SpecError) as e:
        check_remote(f"s3://{BUCKET}/runs", NAME)
    assert "--name" in str(e.value) and NAME in str(e.value)


def test_cli_bad_bucket_exits_2_before_anything_starts(s3_env: dict[str, str], tmp_path: Path) -> None:
    env = {**s3_env, "WATTSWEEP_CACHE": str(tmp_path / "cache")}
    r = cli("sweep", "--storage", "s3://no-such-bucket/runs", "--name", "x", "--num-samples", "1", env=env, timeout=120)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "--storage" in r.stderr and "s3://no-such-bucket/runs" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "cache").exists()  # nothing staged, Ray never started


def test_cli_resume_of_a_uri_that_is_not_a_run_exits_2(s3_env: dict[str, str]) -> None:
    for command in ("resume", "report"):
        r = cli(command, f"s3://{BUCKET}/not-a-run", env=s3_env, timeout=120)
        assert r.returncode == 2, r.stderr[-3000:]
        assert "RUN_DIR" in r.stderr and f"s3://{BUCKET}/not-a-run" in r.stderr and "Traceback" not in r.stderr
