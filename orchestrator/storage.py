"""Remote result storage (``--storage s3://...``): the one adapter over ``pyarrow.fs``.

A run on remote storage lives in two places:

- ``<uri>/<name>/tune``: Ray Tune's experiment directory, written by Tune itself straight from every node
  (checkpoints included). why: a trial retried on another node, or a sweep resumed by a new driver, finds
  its checkpoints there.
- ``<uri>/<name>/`` (the rest: manifest, trial records, the Optuna study, report/): written by the driver in a
  local staging directory and mirrored up. why: the Optuna study (a journal file, appended under a file lock)
  cannot live on an object store.

pyarrow and cloud errors are turned into ``SpecError`` (bad ``--storage``, exit 2) here and nowhere else;
every remote call runs with a time limit, since a missing network or credentials chain can hang for minutes.

Nothing from the bucket is trusted: an object key that is not a plain relative path is skipped, nothing is
written through a link, and the local directory comes from the cache and the run's name, never from the
manifest. A URI with credentials in it (``s3://KEY:SECRET@...``) is refused: Tune pickles its storage path
into tune/tuner.pkl, in the bucket; every message goes through ``redact`` all the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow
import pyarrow.fs as pafs
from ray.tune import Callback

from rundir import MANIFEST, TUNE_DIR, is_run_dir
from rundir.layout import LOCK
from search_spaces import SpecError

SCHEMES = ("s3", "gs", "gcs", "file")
ALLOWED = "a local directory, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or file:///ABSOLUTE/PATH"
TIMEOUT_S = 60.0  # a remote call that takes longer is refused (no network, or no credentials)
_T = TypeVar("_T")
CREDENTIALS_FROM = (
    "the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS), "
    "which every node of the cluster needs too"
)
# why up to the last '@' of the word: AWS secret keys hold '/', which no URI parser expects in a password
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)\S*@")
_SECRET_PARAM = re.compile(r"(?i)([?&][^=&\s]*(?:key|secret|token|password|credential|signature)[^=&\s]*=)[^&\s#'\"]*")


def redact(text: str) -> str:
    """``text`` with the credentials of every URI in it masked (``s3://***@bucket/...``, ``?secret_key=***``).

    Every URI and every foreign error text that goes into a message passes through here.
    """
    return _SECRET_PARAM.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


def is_uri(text: str | os.PathLike[str]) -> bool:
    """True when ``text`` names remote storage (it has a scheme), False for a plain local path."""
    return "://" in str(text)


@dataclass(frozen=True)
class RemoteDir:
    """A directory on a pyarrow filesystem: ``uri`` as the user writes it, ``path`` as the filesystem does."""

    uri: str
    fs: pafs.FileSystem
    path: str

    @property
    def display_uri(self) -> str:
        """The URI to print, raise or record (in the manifest): ``uri`` with any credentials masked."""
        return redact(self.uri)

    def child(self, *parts: str) -> RemoteDir:
        return RemoteDir("/".join([self.uri, *parts]), self.fs, "/".join([self.path, *parts]))


def _bounded(fn: Callable[[], _T], field: str, value: str, allowed: str, timeout_s: float = TIMEOUT_S) -> _T:
    """Run ``fn`` with a time limit; its pyarrow/cloud errors become a SpecError naming ``field``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # why: re-raised below in the caller's thread
            box["error"] = e

    # why: a daemon thread, so a call stuck on a dead network cannot keep the process from exiting 2
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout_s)
    value = redact(value)
    if t.is_alive():
        raise SpecError(field, value, f"{allowed}, answering within {timeout_s:g} s (no network or credentials?)")
    err = box.get("error")
    if isinstance(err, SpecError):
        raise err
    if isinstance(err, (OSError, ValueError, pyarrow.ArrowException)):
        text = redact(str(err).strip())
        raise SpecError(field, value, f"{allowed} ({_hint(text)}{text[:300]})") from None
    if err is not None:
        raise err
    return box["value"]


def _hint(message: str) -> str:
    m = message.upper()
    if "NO_SUCH_BUCKET" in m or ("NOT FOUND" in m and "BUCKET" in m):
        return "the bucket does not exist: "
    if any(k in m for k in ("ACCESS_DENIED", "INVALID_ACCESS_KEY", "SIGNATURE", "CREDENTIALS", "FORBIDDEN")):
        return (
            "credentials missing or refused; writing needs s3:PutObject, s3:GetObject, s3:DeleteObject, s3:ListBucket: "
        )
    return ""


def parse_uri(text: str, *, field: str = "--storage") -> RemoteDir:
    """The remote directory ``text`` names. SpecError for an unknown scheme, credentials in the URI, or a URI
    pyarrow cannot open."""
    scheme = text.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise SpecError(field, redact(text), ALLOWED)
    if redact(text) != text:
        raise SpecError(
            field, redact(text), f"{ALLOWED}, without credentials in it: give them through {CREDENTIALS_FROM}"
        )

    def resolve() -> RemoteDir:
        fs, path = pafs.FileSystem.from_uri(text)
        path = path.rstrip("/")
        if scheme != "file" and not path:
            raise SpecError(field, text, f"{ALLOWED} (a bucket is needed)")
        return RemoteDir(text.rstrip("/"), fs, path)

    return _bounded(resolve, field, text, ALLOWED)


def _exists(d: RemoteDir, rel: str) -> bool:
    return d.fs.get_file_info(f"{d.path}/{rel}").type == pafs.FileType.File


def check_remote(storage: str, name: str) -> RemoteDir:
    """The run's remote directory ``<storage>/<name>``, after a write probe (put and delete a small object).

    SpecError naming --storage if it cannot be written, naming --name if a run of that name is already there.
    """
    root = parse_uri(storage)
    run = root.child(name)

    def probe() -> None:
        if _exists(run, MANIFEST):
            raise SpecError("--name", name, f"a name not used under {redact(storage)!r} (pick another --name)")
        if root.fs.type_name == "local":
            root.fs.create_dir(root.path, recursive=True)
        key = f"{root.path}/.wattsweep-write-probe-{os.getpid()}"
        with root.fs.open_output_stream(key) as f:
            f.write(b"ok")
        root.fs.delete_file(key)

    _bounded(probe, "--storage", storage, f"{ALLOWED} that this user can write")
    return run


def run_name(remote: RemoteDir, *, field: str = "RUN_DIR") -> str:
    """The run's name: the last segment of its path. SpecError naming ``field`` unless it is one a sweep could
    have (letters, digits, '-', '_', '.'; not '.' or '..'), so it is safe as a local directory's name."""
    name = remote.path.rsplit("/", 1)[-1]
    if name in ("", ".", "..") or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in name):
        raise SpecError(field, remote.display_uri, "a URI that ends in a run's name (letters, digits, '-', '_', '.')")
    return name


def staging_dir(remote: RemoteDir, *, field: str = "RUN_DIR") -> Path:
    """Where the driver keeps a remote run's files: ``$WATTSWEEP_CACHE`` (default ~/.cache/wattsweep)/runs/NAME-HASH.

    Made from the local cache and the run's name only (see run_name, which checks it).
    why the hash of the URI: two buckets with a run of the same name never share a directory.
    """
    name = run_name(remote, field=field)
    root = Path(os.environ.get("WATTSWEEP_CACHE") or Path.home() / ".cache" / "wattsweep")
    digest = hashlib.sha256(remote.uri.encode()).hexdigest()[:12]
    return root / "runs" / f"{name}-{digest}"


def _skip(rel: str) -> bool:
    # why: tune/ is Tune's own (written to the URI directly); *.tmp are half-written atomic writes; the lock
    # names this machine's driver and means nothing anywhere else
    return rel in (TUNE_DIR, LOCK) or rel.startswith(TUNE_DIR + "/") or rel.endswith(".tmp")


class Mirror:
    """Copies a local run directory's files (not tune/) to its remote directory; only what changed since."""

    def __init__(self, local: Path, remote: RemoteDir) -> None:
        self.local = local
        self.remote = remote
        self._sent: dict[str, tuple[int, int]] = {}  # relative path -> (mtime ns, size) last uploaded

    def push(self, *, under: str = "") -> int:
        """Upload new and changed files (only those under ``under``, if given). Returns how many.

        OSError (pyarrow's) on failure.
        """
        n = 0
        for p in sorted((self.local / under).rglob("*")):
            rel = p.relative_to(self.local).as_posix()
            # why not a link: one planted in a received run (to ~/.aws/credentials, say) would upload its target
            if p.is_symlink() or not p.is_file() or _skip(rel):
                continue
            st = p.stat()
            sig = (st.st_mtime_ns, st.st_size)
            if self._sent.get(rel) == sig:
                continue
            dest = f"{self.remote.path}/{rel}"
            if self.remote.fs.type_name == "local":
                self.remote.fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
            with self.remote.fs.open_output_stream(dest) as f:
                f.write(p.read_bytes())
            self._sent[rel] = sig
            n += 1
        return n

    def push_or_warn(self) -> None:
        """push(), printing a warning instead of failing: the next push retries."""
        try:
            self.push()
        except (OSError, pyarrow.ArrowException) as e:
            where = self.remote.display_uri
            print(
                f"wattsweep: warning: could not copy the run to {where}: {redact(str(e))}", file=sys.stderr, flush=True
            )


class MirrorCallback(Callback):
    """Mirrors the run directory up each time Tune snapshots its experiment state, and at the end.

    why: Tune calls ``get_state`` just before it uploads its snapshot, so the records and the Optuna study
    in the bucket are never older than the Tune state a resume restores (every copy is incremental).
    """

    def __init__(self, mirror: Mirror) -> None:
        self.mirror = mirror

    def get_state(self) -> dict[str, Any] | None:
        self.mirror.push_or_warn()
        return None  # why: nothing to restore; None keeps Tune from writing a callback-state file

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.mirror.push_or_warn()


def read_remote_manifest(run: RemoteDir, *, field: str = "RUN_DIR") -> dict[str, Any]:
    """The manifest of a remote run. SpecError unless ``run`` holds wattsweep.json and tune/tuner.pkl."""
    allowed = "a wattsweep run (with wattsweep.json and tune/tuner.pkl)"

    def read() -> dict[str, Any]:
        if not (_exists(run, MANIFEST) and _exists(run, f"{TUNE_DIR}/tuner.pkl")):
            raise SpecError(field, run.display_uri, allowed)
        with run.fs.open_input_stream(f"{run.path}/{MANIFEST}") as f:
            return json.loads(f.read())

    return _bounded(read, field, run.uri, allowed)


def _relative_key(key: str, prefix: str) -> str | None:
    """``key`` relative to ``prefix`` when that is a plain relative path (non-empty segments, none '.' or '..',
    no backslash, no NUL); None for any other key. why: an object store holds any string as a key."""
    if not key.startswith(prefix + "/"):
        return None
    rel = key[len(prefix) + 1 :]
    parts = rel.split("/")
    if "\\" in rel or "\0" in rel or any(p in ("", ".", "..") for p in parts):
        return None
    return rel


def _write_inside(local: Path, rel: str, data: bytes) -> None:
    """Write ``data`` to ``local/rel`` as a new file; a link in the way (the file, or a folder on its path) is
    replaced by a real folder or file, never followed. ``rel`` is a plain relative path (see _relative_key)."""
    here = local
    for part in rel.split("/")[:-1]:
        here = here / part
        if here.is_symlink():
            here.unlink()
        here.mkdir(exist_ok=True)
    dest = here / rel.rsplit("/", 1)[-1]
    if dest.is_symlink() or dest.is_file():
        dest.unlink()  # why unlink, not truncate: a hard link would carry the write to the file it shares
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def download(run: RemoteDir, local: Path, *, field: str = "RUN_DIR") -> None:
    """Copy a remote run's files (not tune/) into ``local``. SpecError naming ``field`` on failure.

    An object whose key is not a plain relative path under the run (``..``, an absolute path, a backslash)
    is skipped with a warning: nothing is written outside ``local``.
    """

    def fetch() -> None:
        local.mkdir(parents=True, exist_ok=True)
        for info in run.fs.get_file_info(pafs.FileSelector(run.path, recursive=True)):
            if info.type != pafs.FileType.File:
                continue
            rel = _relative_key(info.path, run.path)
            if rel is None:
                print(
                    f"wattsweep: warning: skipped the object {redact(info.path)!r}: not a plain path", file=sys.stderr
                )
                continue
            if _skip(rel) or rel.startswith("."):
                continue
            with run.fs.open_input_stream(info.path) as f:
                _write_inside(local, rel, f.read())

    _bounded(fetch, field, run.uri, "a wattsweep run this user can read", timeout_s=10 * TIMEOUT_S)


def new_run_target(storage: str, name: str) -> tuple[Path, RemoteDir]:
    """(local staging directory, remote directory) of a new run on remote storage, both checked. SpecError."""
    remote = check_remote(storage, name)
    local = staging_dir(remote, field="--name")
    if is_run_dir(local):
        raise SpecError("--name", name, f"a name whose staging directory {str(local)!r} is free (move that run away)")
    return local, remote


def fetch_run(uri: str) -> tuple[Path, Mirror]:
    """(local directory, Mirror) of a run on remote storage, its files (not tune/) downloaded. SpecError.

    The local directory is ``staging_dir`` (the local cache and the run's name): the one the sweep staged in
    when the cache is the same. The manifest, read from the bucket, never chooses it; its ``storage.local_dir``
    is only compared, and a note printed when it differs. why that is enough: a resume points what Tune
    restores at the directory it resumes in (orchestrator.relocate), whatever path was pickled.
    """
    remote = parse_uri(uri, field="RUN_DIR")
    shown = remote.display_uri
    local = staging_dir(remote)
    m = read_remote_manifest(remote)
    recorded = (m.get("storage") or {}).get("local_dir")
    if recorded is not None and os.path.abspath(str(recorded)) != os.path.abspath(local):
        print(f"wattsweep: note: {shown} was staged in {str(recorded)!r}; this driver uses {str(local)!r}", flush=True)
    if is_run_dir(local):
        if json.loads((local / MANIFEST).read_text()).get("created_at") != m.get("created_at"):
            raise SpecError("RUN_DIR", shown, f"a run whose staging directory {str(local)!r} is free (move it away)")
        # why: the bucket is only ever written from this directory, so the local copy is at least as new
        print(f"wattsweep: using the local copy of {shown} in {local}", flush=True)
    else:
        try:
            local.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpecError(
                "RUN_DIR", shown, f"a run whose staging directory {str(local)!r} can be made ({e})"
            ) from None
        download(remote, local)
    return local, Mirror(local, remote)


def report_remote(uri: str) -> str:
    """Build the report of a run on remote storage and upload it to ``<uri>/report``. Returns its index URI.

    The run's records are read from a temporary copy; only report/ is written back (a running driver
    owns the rest). SpecError if ``uri`` is not a run.
    """
    import tempfile

    from reports import build_report

    remote = parse_uri(uri, field="RUN_DIR")
    if not _bounded(lambda: _exists(remote, MANIFEST), "RUN_DIR", uri, "a wattsweep run"):
        raise SpecError("RUN_DIR", remote.display_uri, "a wattsweep run (with wattsweep.json)")
    with tempfile.TemporaryDirectory(prefix="wattsweep-report-") as tmp:
        local = Path(tmp) / run_name(remote)
        download(remote, local)
        out = build_report(local)
        _bounded(lambda: Mirror(local, remote).push(under=out.name), "RUN_DIR", uri, "a run this user can write")
    return remote.child(out.name, "index.html").display_uri
