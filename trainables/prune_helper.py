"""Gradual pruning for your own trainable: any ``nn.Module``, your own training loop.

The built-in trainable's pruner (``trainables.pruning.Pruner``) behind keyword
options instead of a trial config::

    pruner = GradualPruner(model, x_train[:1], ratio=0.5, epochs=20, method="structured")
    optimizer = torch.optim.Adam(model.parameters())
    for epoch in range(1, 21):
        train_one_epoch(model, optimizer)
        model, structure_changed = pruner.step(model, epoch, optimizer)
    model = pruner.finalize(model)

Structured pruning (``torch_pruning``) follows the model's dependencies: residual
additions, depthwise convs, squeeze-and-excitation products, the next layer's
inputs. Tested on torchvision's ``resnet18`` and ``mobilenet_v3_small`` as they
are built. The layer kept dense by default is the last conv / linear layer the
model registers (``classifier_layer``); pass ``ignored_layers`` when that is not
the output layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trainables.config import ConfigError
from trainables.pruning import Pruner, PruneSchedule

__all__ = ["GradualPruner"]

# why: a bad value is reported under the keyword the caller passed, not the plan field behind it
_KEYWORDS = {"prune_ratio": "ratio", "prune_method": "method", "prune_every": "every", "prune_schedule": "schedule"}


class GradualPruner:
    """Prunes ``model`` step by step during training, to ``ratio`` at the last step.

    Build it on the dense model before the first epoch; call ``step`` after each
    finished epoch and ``finalize`` once at the end.

    Args:
        model: the dense model, on any device; channels-last models stay channels-last.
        example_input: one batch of inputs the model accepts (one sample is enough);
            structured pruning traces a forward pass on it to find the dependencies.
        ratio: final fraction pruned, in [0, 1). ``"unstructured"``: of the prunable
            weights (set to zero by masks). ``"structured"``: of the channels / hidden
            units of every prunable layer group (removed; the weight count and FLOPs
            then drop by more, about ``1 - (1 - ratio)^2``). 0 prunes nothing.
        epochs: epochs the run trains in all (>= 1).
        method: ``"unstructured"`` (L1 magnitude, global) or ``"structured"``.
        every: epochs between pruning steps (>= 1). Steps come after epochs
            ``every, 2*every, ...`` below ``epochs``, so at least one epoch of
            fine-tuning follows the last; ``steps`` lists them.
        schedule: ``"cubic"`` (Zhu & Gupta 2017: large steps first) or ``"linear"``.
        calibration: training inputs to re-estimate batch-norm running statistics
            on after each step (up to ``RECALIBRATION_SAMPLES`` of them, from
            ``trainables.pruning_recovery``); None skips it.
        bn_recalibrate: False skips the re-estimation even with ``calibration``.
        batch_size: samples per forward pass while re-estimating (>= 1).
        ignored_layers: modules of ``model`` kept dense, with their submodules;
            default the last conv / linear layer registered (the classifier). Its
            outputs must stay; structured pruning still shrinks its inputs.

    Raises:
        ValueError: a bad option (``ConfigError``, naming the keyword, the value
            and what is allowed), or ``ignored_layers`` not in the model.
    """

    def __init__(
        self,
        model: nn.Module,
        example_input: torch.Tensor,
        *,
        ratio: float,
        epochs: int,
        method: str = "unstructured",
        every: int = 5,
        schedule: str = "cubic",
        calibration: torch.Tensor | None = None,
        bn_recalibrate: bool = True,
        batch_size: int = 64,
        ignored_layers: Sequence[nn.Module] | None = None,
    ) -> None:
        try:
            self.plan = PruneSchedule(
                prune_ratio=ratio,
                prune_method=method,
                prune_every=every,
                prune_schedule=schedule,
                epochs=epochs,
                bn_recalibrate=bn_recalibrate,
                batch_size=batch_size,
            )
        except ConfigError as e:
            raise ConfigError(_KEYWORDS.get(e.field, e.field), e.value, e.allowed) from None
        self._model = model
        self._pruner = Pruner(model, self.plan, example_input, calibration=calibration, ignored_layers=ignored_layers)

    @property
    def steps(self) -> list[int]:
        """The epochs (1-based, counted when finished) after which ``step`` prunes; empty when ``ratio == 0``."""
        return list(self._pruner.epochs)

    def step(
        self, model: nn.Module, epoch: int, optimizer: torch.optim.Optimizer | None = None
    ) -> tuple[nn.Module, bool]:
        """Call after each finished epoch (``epoch`` 1-based); prunes when ``epoch`` is in ``steps``.

        Returns ``(model, structure_changed)``. ``structure_changed`` is True after
        a structured step: the pruned layers got new, smaller parameters, so count
        FLOPs again, and rebuild any optimizer or scheduler not passed here. The
        ``optimizer`` passed is updated in place to hold the new parameters, each
        with the state (e.g. Adam moments) of its surviving weights. Unstructured
        steps keep the parameters (as ``weight_orig`` plus a ``weight_mask``
        buffer) and return False.

        Steps missed are applied at once. To resume after epoch ``e`` from a
        checkpoint: build the dense model, its optimizer and a new
        ``GradualPruner`` as at the start, call ``step(model, e, optimizer)``,
        then load both state dicts.

        ``model`` must be the model this pruner was built on (or a wrapper of it,
        such as ``torch.compile``'s).
        """
        if not any(m is self._model for m in model.modules()):
            raise ValueError(
                f"step needs the model this pruner was built on, but got another {type(model).__name__}; "
                "build a new GradualPruner on it (to resume, before its first step)."
            )
        return self._pruner.step(model, epoch, optimizer)

    def sparsity(self, model: nn.Module) -> float:
        """Fraction, in [0, 1], of the dense model's prunable weights now zero (masked) or removed (structured)."""
        return self._pruner.sparsity(model)

    def finalize(self, model: nn.Module) -> nn.Module:
        """After the last epoch: unstructured masks made permanent (plain ``weight`` again); no-op for structured."""
        return self._pruner.finalize(model)
