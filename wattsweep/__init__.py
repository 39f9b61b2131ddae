"""wattsweep: find the configurations that give the most accuracy for the energy they cost.

The public face over ``orchestrator``, ``trainables``, ``search_spaces`` and ``reports``::

    import wattsweep

    def train(config, ctx):                      # your own PyTorch code
        ...
        ctx.report({"accuracy": acc}, state={"model": model.state_dict()})

    result = wattsweep.sweep(train, space={"lr": wattsweep.loguniform(1e-4, 1e-1)}, fixed={"epochs": 5})
    result.front, result.run_dir, result.study
    wattsweep.export(result.run_dir, trials="front")  # ONNX, TorchScript, int8, each with a model card

Importing this package imports neither torch nor Ray (Ray re-imports modules in every worker);
``GradualPruner`` loads torch when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from search_spaces import SpecError
from trainables.contract import Context, TrialContractError
from wattsweep._api import SweepResult, choice, export, integer, loguniform, sweep, uniform

if TYPE_CHECKING:
    from trainables.prune_helper import GradualPruner


def __getattr__(name: str) -> Any:
    if name == "GradualPruner":  # why lazy: it imports torch and torch_pruning
        from trainables.prune_helper import GradualPruner

        return GradualPruner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Context",
    "GradualPruner",
    "SpecError",
    "SweepResult",
    "TrialContractError",
    "choice",
    "export",
    "integer",
    "loguniform",
    "sweep",
    "uniform",
]
