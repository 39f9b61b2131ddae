"""Finding a user's trainable from ``package.module:function``, and checking it fits the contract.

The spec loader calls ``load_trainable`` in the driver, before Ray starts, so that a typo exits 2 with
the field named; the worker calls it again to get the function (Ray ships the working directory to
the cluster with ``ray job submit --working-dir .``, so the same reference imports there).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

from trainables.config import ConfigError

BUILTIN = "trainables.train:train"  # the built-in ResNet / FFNN trainable: the spec's default ``trainable:``
FIELD = "trainable"
EXPECTED = "'package.module:function' importable from the working directory, a function train(config, ctx)"
EXPECTED_COST = "'package.module:function' importable from the working directory, a function cost(config) -> float"


def load_trainable(ref: str | Callable[..., Any], *, field: str = FIELD) -> Callable[..., Any]:
    """The function ``ref`` names (or ``ref`` itself), checked to take ``(config, ctx)``. ConfigError otherwise."""
    fn = ref if callable(ref) else _import(ref, field, EXPECTED)
    check_signature(fn, ref, field, n_args=2, expected=EXPECTED)
    return fn


def load_cost(ref: str | Callable[..., Any], *, field: str = "cost") -> Callable[..., Any]:
    """A user's cost function ``cost(config) -> float`` (relative training cost, for the cheap start)."""
    fn = ref if callable(ref) else _import(ref, field, EXPECTED_COST)
    check_signature(fn, ref, field, n_args=1, expected=EXPECTED_COST)
    return fn


def _import(ref: Any, field: str, expected: str) -> Callable[..., Any]:
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ConfigError(field, ref, expected)
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(field, ref, expected)
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # why: `python -m orchestrator` has it; a console script or a Ray worker may not
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(field, ref, f"{expected} (no module named {e.name!r})") from None
    except Exception as e:  # why: the user's module may fail in any way while it is imported
        raise ConfigError(field, ref, f"{expected} (importing {module_name!r} raised {type(e).__name__}: {e})") from e
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(field, ref, f"{expected} (module {module_name!r} has no attribute {attr!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(field, ref, f"{expected} ({attr!r} is a {type(obj).__name__}, not callable)")
    return obj


def check_signature(fn: Callable[..., Any], ref: Any, field: str, *, n_args: int, expected: str) -> None:
    """``fn`` can be called with ``n_args`` positional arguments."""
    try:
        inspect.signature(fn).bind(*([object()] * n_args))
    except TypeError:
        raise ConfigError(field, reference(ref), f"{expected} (its signature is {_signature(fn)})") from None
    except ValueError:
        return  # why: some callables (builtins) have no signature to inspect; the call itself will tell


def _signature(fn: Callable[..., Any]) -> str:
    try:
        return f"{getattr(fn, '__name__', 'function')}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return "unknown"


def reference(fn: str | Callable[..., Any]) -> str:
    """``package.module:qualname`` of a function (what the manifest records), or the string itself."""
    if isinstance(fn, str):
        return fn
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
