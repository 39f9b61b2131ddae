"""Adapter from the trainable contract to Ray Tune: config in, tune.report out, checkpoints both ways."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rundir.layout import FINAL_MODEL
from trainables.contract import FINAL_MODEL_KEY, TrialPlan
from trainables.metrics import NODE_ID

if TYPE_CHECKING:
    from trainables.data import SplitArrays

CHECKPOINT_FILE = "trial_state.pt"
# Fault injection for testing the sweep's failure handling: "key=value[,key=value]" makes every
# attempt of a matching trial raise after its first reported epoch. Unset in normal use.
INJECT_FAILURE_ENV = "WATTSWEEP_INJECT_FAILURE"


class InjectedFailure(RuntimeError):
    """Raised by a trial that WATTSWEEP_INJECT_FAILURE selects."""


def _failure_selected(config: Mapping[str, Any]) -> bool:
    rule = os.environ.get(INJECT_FAILURE_ENV, "")
    if not rule:
        return False
    pairs = [item.partition("=") for item in rule.split(",")]
    return all(str(config.get(k.strip())) == v.strip() for k, _, v in pairs)


def tune_trainable(config: dict[str, Any], *, plan: TrialPlan, splits: SplitArrays | None = None) -> None:
    """Ray Tune function trainable: runs ``plan.trainable`` under the contract. ``config``: the trial's config.

    ``splits``: the spec's dataset loaded once by the driver (passed through Ray's object store by
    ``tune.with_parameters``); None loads ``plan.dataset`` in this worker, if the plan names one.
    """
    import ray
    import torch
    from ray import tune  # why: only the Ray path needs Ray; `trial` runs without it

    # why here: Tune pickles this function by reference in the driver, which then imports this module;
    # importing torch and the contract at module level would cost the driver ~1.5 s it never uses
    from trainables.contract import run_contract
    from trainables.loader import load_trainable

    fn = load_trainable(plan.trainable)
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            # why weights_only: a checkpoint may come from a run someone else wrote (resume of a received run);
            # state dicts, tensors, numbers, strings and containers of them load, arbitrary pickles do not
            resume = torch.load(os.path.join(d, CHECKPOINT_FILE), weights_only=True, map_location="cpu")

    inject = _failure_selected(config)
    node_id = ray.get_runtime_context().get_node_id()

    def sink(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        metrics = {**metrics, NODE_ID: node_id}
        if inject and metrics["epoch"] >= 2:
            raise InjectedFailure(f"{INJECT_FAILURE_ENV} selected this trial ({os.environ[INJECT_FAILURE_ENV]})")
        if state is None:
            tune.report(metrics)
            return
        final = state.pop(FINAL_MODEL_KEY, None)
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, os.path.join(d, CHECKPOINT_FILE))
            if final is not None:
                save_final_model(final, os.path.join(d, FINAL_MODEL))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    run_contract(fn, config, plan, sink, resume=resume, data=splits)


def save_final_model(final: Mapping[str, Any], path: str) -> None:
    """Save a complete trial's final model (``{"model": module, "example": tensor}``) whole, for ``export``.

    A model that cannot be pickled (its class defined in ``__main__`` or inside a function) is left out with a
    warning: the trial stays complete, and ``export`` says what to change. Nothing half-written is left.
    """
    import sys

    import torch

    try:
        # why clone: an example sliced from the training set (x[:1]) is a view, and torch.save writes its whole storage
        torch.save({"model": final["model"], "example": final["example"].detach().cpu().clone()}, path)
    except Exception as e:  # why: pickling raises PicklingError, AttributeError, TypeError...; never fail the trial
        if os.path.exists(path):
            os.remove(path)
        print(
            f"wattsweep: warning: the final model was not saved (export needs an importable class): {e}",
            file=sys.stderr,
        )
