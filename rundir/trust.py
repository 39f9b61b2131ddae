"""Whose run is this? ``resume`` unpickles Tune's saved state, and unpickling runs code.

A run directory received from someone else (a bucket, a shared disk, an archive) must not be resumed by accident:
its ``tune/`` files could do anything the resuming user can. When a sweep creates a run, it writes
``wattsweep.owner``: an HMAC of the run's name and creation time under a key only this user on this machine holds
(``$XDG_CONFIG_HOME/wattsweep/run-key``, created with mode 0600 on first use). ``resume`` checks it; a run that
fails the check is resumed only when the user says they trust it (``--trust``). Reading a run (``report``) parses
JSON only and needs no trust.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

OWNER = "wattsweep.owner"


def key_file() -> Path:
    """Where this user's run key lives."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "wattsweep" / "run-key"


def _key() -> bytes:
    path = key_file()
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def _mark(manifest: Mapping[str, Any]) -> str:
    message = f"{manifest.get('name')}\n{manifest.get('created_at')}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def mark_as_mine(run_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> None:
    """Record that this user created the run (at its creation, by the sweep)."""
    (Path(run_dir) / OWNER).write_text(_mark(manifest) + "\n")


def is_mine(run_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> bool:
    """True when this user (on this machine) created the run: its owner mark verifies under this user's key."""
    try:
        mark = (Path(run_dir) / OWNER).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(mark, _mark(manifest))
