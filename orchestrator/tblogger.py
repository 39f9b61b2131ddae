"""Tune's TensorBoard logger, fed only the numbers a trial reports.

why: Tune logs every result key to TensorBoard and warns, once per trial, about every value that is
not a number or a numeric array. A trial's last result carries lists of strings (the energy meter's
fallback reasons), a confusion matrix and a power trace: those warnings drowned the sweep's own
progress lines. Everything is in the run directory anyway; TensorBoard gets the scalars.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import TYPE_CHECKING, Any

from ray.tune.logger import TBXLoggerCallback
from ray.tune.utils import flatten_dict

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = ["ScalarTBXLoggerCallback", "scalars_only"]


def scalars_only(result: dict[str, Any]) -> dict[str, Any]:
    """The finite real numbers of ``result``, nested dicts flattened with ``/`` (booleans count as numbers)."""
    flat = flatten_dict(result, delimiter="/")
    return {k: v for k, v in flat.items() if isinstance(v, Real) and math.isfinite(float(v))}


class ScalarTBXLoggerCallback(TBXLoggerCallback):
    """``TBXLoggerCallback`` that passes on only the scalars of each result (Tune adds no default one beside it)."""

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        kept = scalars_only({k: v for k, v in result.items() if k != "config"})
        super().log_trial_result(iteration, trial, kept)
