"""The spec's error type and the small checks every section of a spec uses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from trainables.config import ConfigError


class SpecError(ConfigError):
    """A spec (or a flag that overrides one) is wrong. Exit code 2."""


def _int(field_: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise SpecError(field_, v, f"an integer >= {minimum}")
    return v


def _bool(field_: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise SpecError(field_, v, "true or false")
    return v


def _num(field_: str, v: Any, *, positive: bool = False, minimum: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
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


def _check_name(field_: str, name: Any) -> str:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise SpecError(field_, name, "a non-empty name of letters, digits, '-', '_' or '.'")
    return name
