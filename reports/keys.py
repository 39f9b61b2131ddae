"""Which trainable a run used and which config keys it searched, as the run's manifest says.

The manifest's ``trainable`` is the trainable's ``"module:function"`` (``BUILTIN_TRAINABLE`` for the
built-in; runs made before it was recorded name it, if at all, in the raw spec's ``trainable``). Its
``spec`` is the sweep's raw spec: ``spec["space"]`` maps each searched key to its range
(``{kind: choice | int | uniform | loguniform, ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from trainables.loader import BUILTIN

BUILTIN_TRAINABLE = BUILTIN  # why imported, not copied: one fact, one place (trainables.loader imports no torch)


def _spec(manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
    spec = manifest.get("spec")
    return spec if isinstance(spec, Mapping) else None


def custom_trainable(manifest: Mapping[str, Any]) -> str | None:
    """The user's trainable (``"module:function"``) the run trained, or None for the built-in one.

    A manifest that names no trainable is the built-in's (runs made before custom trainables).
    """
    spec = _spec(manifest)
    name = manifest.get("trainable") or (spec.get("trainable") if spec is not None else None)
    return None if name is None or name == BUILTIN_TRAINABLE else str(name)


def spec_space(manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The spec's ``space`` (searched key -> its range), {} when the spec searches nothing, None without a spec."""
    spec = _spec(manifest)
    if spec is None:
        return None
    space = spec.get("space")
    return space if isinstance(space, Mapping) else {}


@dataclass(frozen=True)
class SearchedKey:
    """One searched config key and how to put it on an axis."""

    name: str  # the config key
    column: str  # its trials-table column (``config_<name>`` when the name clashes with a report column)
    categorical: bool | None  # True: searched as a choice; False: a numeric range; None: the manifest does not say
    log: bool = False  # searched on a log scale (loguniform)


@dataclass(frozen=True)
class SearchSpace:
    """The run's searched keys, and where the list came from."""

    keys: tuple[SearchedKey, ...]
    from_spec: bool  # False: the manifest has no spec; the keys are the config keys that vary across trials


def _searched(name: str, column: str, raw: Any) -> SearchedKey:
    kind = raw.get("kind") if isinstance(raw, Mapping) else ("choice" if isinstance(raw, list) else None)
    categorical = None if kind is None else kind == "choice"
    return SearchedKey(name, column, categorical, kind == "loguniform")


def _varies(values: pd.Series) -> bool:
    return values.dropna().astype(str).nunique() > 1


def searched_keys(manifest: Mapping[str, Any], trials: pd.DataFrame, columns: Mapping[str, str]) -> SearchSpace:
    """The searched keys: the spec's ``space`` keys, else (no spec) the config columns whose values vary.

    ``columns`` maps each config key to its column in ``trials``.
    """
    space = spec_space(manifest)
    if space is not None:
        keys = tuple(_searched(str(k), columns.get(str(k), str(k)), v) for k, v in space.items())
        return SearchSpace(keys, from_spec=True)
    varying = (SearchedKey(k, c, None) for k, c in columns.items() if c in trials.columns and _varies(trials[c]))
    return SearchSpace(tuple(varying), from_spec=False)
