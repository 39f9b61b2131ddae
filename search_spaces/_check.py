"""The spec's error type and the small checks every section of a spec uses."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from trainables.config import SEED_MAX, ConfigError

# why: a run name becomes a directory under the storage, an Optuna study name and an object-store prefix; 100
# ASCII characters stay far inside every filesystem's 255-byte name limit, with room for the files under it
NAME_MAX = 100
_STAMP = "-%Y%m%d-%H%M%S"  # the default run name's suffix: "-" and a UTC timestamp, 16 characters
_STAMP_LEN = len(dt.datetime(2000, 1, 1).strftime(_STAMP))
SPEC_NAME_MAX = NAME_MAX - _STAMP_LEN  # why: a spec's name plus the timestamp is the default run name
# why: each trial trains for at least an epoch; past this Optuna's samplers (every trial reads all earlier ones)
# and the run directory's per-trial records are the bottleneck, and a typo (1e12) must not start a sweep
NUM_SAMPLES_MAX = 100_000
# why: Ray keeps resource amounts as fixed-point int64 (1/10,000 units); far below that, no node has more CPUs
RESOURCE_MAX = 100_000
# why: names Windows reserves in every directory (a run copied to or opened from a Windows machine), any case,
# with or without an extension
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10))})


class SpecError(ConfigError):
    """A spec (or a flag that overrides one) is wrong. Exit code 2."""


def _int(field_: str, v: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum or (maximum is not None and v > maximum):
        raise SpecError(field_, v, f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}"))
    return v


def _seed(field_: str, v: Any) -> int:
    """A seed: what numpy and Optuna's samplers accept (``trainables.config.SEED_MAX``)."""
    return _int(field_, v, 0, SEED_MAX)


def _bool(field_: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise SpecError(field_, v, "true or false")
    return v


def _finite(v: Any) -> bool:
    """``v`` is a number whose float is finite (an int past float's range, 10**400, is not)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _num(field_: str, v: Any, *, positive: bool = False, minimum: float | None = None) -> float:
    if not _finite(v):
        raise SpecError(field_, v, "a finite number")
    if positive and v <= 0:
        raise SpecError(field_, v, "a number > 0")
    if minimum is not None and v < minimum:
        raise SpecError(field_, v, f"a number >= {minimum}")
    return float(v)


def _mapping(field_: str, v: Any, allowed_keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise SpecError(field_, v, "a mapping (key: value)")
    if allowed_keys is not None:
        for k in v:
            if k not in allowed_keys:
                raise SpecError(f"{field_}.{k}" if field_ else str(k), v[k], f"one of the keys {list(allowed_keys)}")
    return dict(v)


def _check_name(field_: str, name: Any, max_len: int = NAME_MAX) -> str:
    """The one rule for a run's name (and a spec's): it names a directory under the storage, so it can never
    be ``.``, ``..``, hidden, an option (``-rf``), hold a separator or a control character, or be long."""
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= max_len
        or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in name)
        or not name[0].isalnum()
        or name.split(".")[0].lower() in _RESERVED
    ):
        allowed = (
            f"1 to {max_len} ASCII letters, digits, '-', '_' or '.', starting with a letter or a digit, "
            "and not a name Windows reserves (CON, PRN, AUX, NUL, COM1-9, LPT1-9)"
        )
        raise SpecError(field_, name, allowed)
    return name


def default_run_name(spec_name: str, now: dt.datetime | None = None) -> str:
    """``<spec name>-<UTC timestamp>``: the run name when none is given (it always passes ``_check_name``)."""
    return f"{spec_name}{(now or dt.datetime.now(dt.UTC)).strftime(_STAMP)}"


LOGGERS = ("mlflow", "wandb")  # trackers fed through Ray Tune's own logger callbacks (orchestrator.trackers)
OPTUNA_STORAGE_MAX = 2000  # characters of a storage URL; why: it is stored in the manifest and shown in messages
_SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "credential")


def parse_loggers(field_: str, v: Any) -> tuple[str, ...]:
    """``loggers: [mlflow, wandb]`` (a list, each name once; a single name is a list of one)."""
    names = [v] if isinstance(v, str) else v
    if not isinstance(names, (list, tuple)):
        raise SpecError(field_, v, f"a list of tracker names from {list(LOGGERS)}")
    for name in names:
        if not isinstance(name, str) or name not in LOGGERS:
            raise SpecError(field_, name, f"a tracker name, one of {list(LOGGERS)}")
    if len(set(names)) != len(names):
        raise SpecError(field_, list(names), f"each of {list(LOGGERS)} at most once")
    return tuple(names)


def redact_url(url: str) -> str:
    """``url`` with all before its last ``@`` masked (user and password; why the last: a password may hold ``/``,
    ``?`` or ``@``) and a query that names a secret masked: ``postgresql://***@host/db``, ``mysql://host/db?***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    rest, q, query = rest.partition("?")
    if q and any(w in query.lower() for w in _SECRET_WORDS):
        query = "***"
    return f"{scheme}://{rest}{q}{query}"


def parse_optuna_storage(field_: str, v: Any) -> str:
    """An Optuna RDB storage URL (``sqlite:///PATH``, ``postgresql://USER@HOST/DB``, ``mysql+pymysql://...``) with
    no password in it: it is kept in the run's manifest, so that ``resume`` reopens the same study.

    why refused with a password: the manifest, Tune's saved searcher and every message would hold it. The database
    drivers read it from the environment instead (PGPASSWORD or ~/.pgpass for PostgreSQL; a MySQL option file).
    """
    allowed = "an Optuna storage URL such as sqlite:///PATH or postgresql://USER@HOST/DB"
    if not isinstance(v, str) or not 0 < len(v) <= OPTUNA_STORAGE_MAX or not v.isprintable() or " " in v:
        shown = redact_url(v[:200]) if isinstance(v, str) else v
        raise SpecError(field_, shown, f"{allowed} (at most {OPTUNA_STORAGE_MAX} characters, no spaces)")
    scheme, sep, rest = v.partition("://")
    if not sep or not scheme or not all(c.isascii() and (c.isalnum() or c in "+_") for c in scheme):
        raise SpecError(field_, redact_url(v), allowed)
    userinfo, query = rest.rpartition("@")[0], rest.rpartition("@")[2].partition("?")[2]
    if ":" in userinfo or any(w in query.lower() for w in _SECRET_WORDS):
        raise SpecError(
            field_,
            redact_url(v),
            f"{allowed}, without a password in it: the run's manifest keeps the URL; give the password through "
            "the database driver's environment (PGPASSWORD or ~/.pgpass for PostgreSQL, an option file for MySQL)",
        )
    return v
