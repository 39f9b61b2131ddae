"""Nothing let in from remote storage (issue 16): object keys cannot write outside the run's local directory,
a manifest cannot choose that directory, and credentials in a URI never reach a message, the manifest or the
bucket. No network: a file:// remote, or a stand-in filesystem that lists the keys a hostile bucket could hold.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

import orchestrator.storage as storage
from orchestrator.storage import (
    Mirror,
    RemoteDir,
    _bounded,
    check_remote,
    download,
    fetch_run,
    parse_uri,
    report_remote,
    staging_dir,
)
from search_spaces import SpecError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # why '/' and '+': real AWS secret keys hold them
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


class BucketStandIn:
    """The two calls download() makes, over a dict of key -> bytes (keys as a hostile bucket may spell them)."""

    type_name = "s3"

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_file_info(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return [pafs.FileInfo(k, type=pafs.FileType.File) for k in self.objects if k.startswith(selector.base_dir)]

    def open_input_stream(self, key: str) -> pa.BufferReader:
        return pa.BufferReader(self.objects[key])


# object keys ----------------------------------------------------------------------
def test_download_writes_no_key_outside_the_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    local, outside = tmp_path / "cache" / "run", tmp_path / "outside"
    outside.mkdir()
    hostile = [
        "../../outside/dotdot.txt",
        "trials/../../../outside/middle.txt",
        f"{outside}/absolute.txt",  # the key "run//abs/path": an absolute path once the prefix is cut
        "..\\..\\outside\\backslash.txt",
        "trials\\t1\\state.json",
        "./dot.txt",
        "trials//empty-segment.txt",
    ]
    objects = {f"bucket/run/{k}": b"evil" for k in hostile}
    objects |= {"bucket/run/wattsweep.json": b"{}", "bucket/run/trials/t1/state.json": b'{"state": "complete"}'}
    download(RemoteDir("s3://bucket/run", BucketStandIn(objects), "bucket/run"), local)  # type: ignore[arg-type]

    assert list(outside.iterdir()) == []
    written = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert written == ["trials/t1/state.json", "wattsweep.json"]
    assert (local / "trials" / "t1" / "state.json").read_bytes() == b'{"state": "complete"}'
    err = capsys.readouterr().err
    assert err.count("skipped the object") == len(hostile), err


def test_download_does_not_write_through_a_link_in_the_local_directory(tmp_path: Path) -> None:
    local, outside = tmp_path / "run", tmp_path / "outside"
    outside.mkdir()
    local.mkdir()
    (local / "trials").symlink_to(outside, target_is_directory=True)  # left by an earlier run or planted
    (local / "wattsweep.json").symlink_to(outside / "victim.json")
    objects = {"bucket/run/trials/t1/state.json": b"{}", "bucket/run/wattsweep.json": b"{}"}
    download(RemoteDir("s3://bucket/run", BucketStandIn(objects), "bucket/run"), local)  # type: ignore[arg-type]
    assert list(outside.iterdir()) == []
    assert not (local / "wattsweep.json").is_symlink() and (local / "wattsweep.json").read_bytes() == b"{}"


# the manifest cannot choose the local directory ----------------------------------------
def _remote_run(root: Path, manifest: dict[str, object]) -> str:
    (root / "tune").mkdir(parents=True)
    (root / "tune" / "tuner.pkl").write_bytes(b"tune")
    (root / "wattsweep.json").write_text(json.dumps(manifest))
    (root / "trials" / "t1").mkdir(parents=True)
    (root / "trials" / "t1" / "state.json").write_text("{}")
    return f"file://{root}"


@pytest.mark.parametrize("chosen", ["chosen-by-the-bucket", "cache/runs/../../chosen-by-the-bucket"])
def test_fetch_run_ignores_the_manifests_local_dir(
    chosen: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WATTSWEEP_CACHE", str(tmp_path / "cache"))
    uri = _remote_run(tmp_path / "bucket" / "e2e", {"name": "e2e", "storage": {"local_dir": str(tmp_path / chosen)}})
    local, _ = fetch_run(uri)
    assert not (tmp_path / "chosen-by-the-bucket").exists()
    assert local == staging_dir(parse_uri(uri)) and local.parent == tmp_path / "cache" / "runs"
    assert (local / "trials" / "t1" / "state.json").is_file()
    assert "was staged in" in capsys.readouterr().out


def test_fetch_run_stages_under_the_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTSWEEP_CACHE", str(tmp_path / "cache"))
    uri = f"file://{tmp_path}/bucket/e2e"
    expected = staging_dir(parse_uri(uri))
    # the manifest a sweep writes names that same directory; one without storage.local_dir is fine too
    for recorded in ({"local_dir": str(expected)}, {}):
        _remote_run(tmp_path / "bucket" / "e2e", {"name": "e2e", "storage": recorded, "created_at": str(recorded)})
        local, _ = fetch_run(uri)
        assert local == expected and local.parent == tmp_path / "cache" / "runs"
        assert (local / "trials" / "t1" / "state.json").is_file()
        for p in (tmp_path / "bucket", local):
            shutil.rmtree(p)


@pytest.mark.parametrize("name", ["..", "."])
def test_staging_dir_refuses_a_run_name_that_is_not_a_name(name: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        staging_dir(RemoteDir(f"s3://bucket/{name}", pafs.LocalFileSystem(), f"bucket/{name}"))
    assert "RUN_DIR" in str(e.value)


# credentials in a URI ---------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    [
        f"s3://{KEY_ID}:{SECRET}@bucket/runs",
        f"gs://user:{SECRET}@bucket/runs",
        f"s3://bucket/runs?region=us-east-1&secret_key={SECRET}",
    ],
)
def test_redact_hides_every_credential(uri: str) -> None:
    shown = storage.redact(uri)
    assert SECRET not in shown and KEY_ID not in shown and "bucket" in shown and "***" in shown
    assert storage.redact(f"could not open {uri!r}: denied") == f"could not open {shown!r}: denied"
    assert storage.redact("s3://bucket/runs/e2e") == "s3://bucket/runs/e2e"


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://{KEY_ID}:{SECRET}@bucket/runs?region=us-east-1",
        f"gs://user:{SECRET}@bucket/runs",
        f"s3://bucket/runs?region=us-east-1&access_key={KEY_ID}",
    ],
)
def test_credentials_in_a_uri_are_refused_without_being_shown(uri: str, tmp_path: Path) -> None:
    # why refused, not only hidden: Tune pickles its storage path (and pyarrow a filesystem's keys) into
    # tune/tuner.pkl, which goes to the bucket; only the environment's credential chain keeps them out
    for call in (lambda: parse_uri(uri), lambda: check_remote(uri, "e2e"), lambda: report_remote(uri + "/e2e")):
        with pytest.raises(SpecError) as e:
            call()
        msg = str(e.value)
        assert SECRET not in msg and KEY_ID not in msg, msg
        assert "AWS_ACCESS_KEY_ID" in msg


def test_errors_from_the_filesystem_are_redacted() -> None:
    uri = f"s3://{KEY_ID}:{SECRET}@bucket/runs"

    def fails() -> None:
        raise OSError(f"When resolving region for bucket in {uri}: access denied")

    with pytest.raises(SpecError) as e:
        _bounded(fails, "--storage", uri, "a bucket")
    assert SECRET not in str(e.value) and KEY_ID not in str(e.value) and "access denied" in str(e.value)


def test_remote_dir_offers_a_uri_to_show_and_record(tmp_path: Path) -> None:
    run = check_remote(f"file://{tmp_path}/runs", "e2e")
    assert run.display_uri == run.uri == f"file://{tmp_path}/runs/e2e"


def test_mirror_does_not_upload_what_a_link_points_to(tmp_path: Path) -> None:
    local, secret = tmp_path / "run", tmp_path / "home" / "credentials"
    (local / "report").mkdir(parents=True)
    secret.parent.mkdir()
    secret.write_text(SECRET)
    (local / "wattsweep.json").write_text("{}")
    (local / "report" / "index.html").symlink_to(secret)  # planted in a run received from someone else
    Mirror(local, parse_uri(f"file://{tmp_path}/bucket/run")).push()
    uploaded = [p for p in (tmp_path / "bucket").rglob("*") if p.is_file()]
    assert [p.name for p in uploaded] == ["wattsweep.json"]
    assert all(SECRET not in p.read_text() for p in uploaded)


@pytest.mark.parametrize("command", ["sweep", "resume", "report"])
def test_cli_with_credentials_in_the_uri_exits_2_without_showing_them(command: str, tmp_path: Path) -> None:
    uri = f"s3://{KEY_ID}:{SECRET}@bucket/runs?region=us-east-1"
    args = ["--storage", uri, "--name", "x", "--num-samples", "1"] if command == "sweep" else [uri + "/x"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WATTSWEEP_CACHE": str(tmp_path / "cache")}
    r = subprocess.run(
        [sys.executable, "-m", "orchestrator", command, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr[-3000:]
    assert SECRET not in r.stdout + r.stderr and KEY_ID not in r.stdout + r.stderr
    assert "***@bucket" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "cache").exists()
