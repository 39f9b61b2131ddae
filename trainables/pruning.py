"""Pruning during training: the schedule, the two methods, and sparsity counts.

- ``unstructured``: global L1-magnitude pruning of individual weights
  (``torch.nn.utils.prune.global_unstructured``); the tensors keep their shape,
  masks zero the pruned entries. ``prune_ratio`` is the final fraction of
  prunable weights that are zero.
- ``structured``: channel (conv) / hidden-unit (linear) pruning with
  ``torch_pruning``, which follows the dependencies (residual additions, 1x1
  projection shortcuts, batch norms, the next layer's inputs) and physically
  shrinks the layers. ``prune_ratio`` is the final fraction of channels / units
  removed from every prunable layer group; the weight count then drops by more,
  roughly ``1 - (1 - r)^2`` for a conv between two pruned convs.

"Prunable" layers are all conv and linear layers except the final classifier,
which stays dense: its outputs are the classes (they cannot be removed), it is
tiny (64 x 10 weights in the default ResNet) so pruning it saves next to
nothing, and each of its weights carries class evidence straight to a logit
with no later layer to compensate. Zhu & Gupta (2017) and most pruning work
leave it dense too. Its input features still shrink with structured pruning.
A model whose classifier is not its last conv / linear layer names the layers
to keep dense itself (``ignored_layers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune

from trainables.config import check_value
from trainables.flops import NonzeroCounts, effective_weight, nonzero_counts
from trainables.pruning_recovery import OptimizerCarry, recalibrate_batchnorm

__all__ = [
    "PruneSchedule",
    "Pruner",
    "PruningPlan",
    "classifier_layer",
    "nonzero_params",
    "prunable_layers",
    "prunable_weights",
    "pruning_epochs",
    "sparsity",
    "target_sparsity",
]

_LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


# --- schedule ---------------------------------------------------------------


class PruningPlan(Protocol):
    """What the pruner and the schedule read: ``TrialConfig`` and ``PruneSchedule`` both provide it."""

    @property
    def prune_ratio(self) -> float: ...
    @property
    def prune_method(self) -> str: ...
    @property
    def prune_every(self) -> int: ...
    @property
    def prune_schedule(self) -> str: ...
    @property
    def epochs(self) -> int: ...
    @property
    def bn_recalibrate(self) -> bool: ...
    @property
    def batch_size(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class PruneSchedule:
    """A pruning plan on its own, for trainables without a ``TrialConfig`` (same fields, same rules).

    A bad value raises ``ConfigError`` (a ``ValueError``) naming the field, the
    value and what is allowed; values are stored in their canonical type
    (``prune_ratio=0`` becomes ``0.0``).
    """

    prune_ratio: float  # final fraction removed, in [0, 1): of prunable weights, or of each layer group's channels
    prune_method: str  # "unstructured" (masks, shapes kept) or "structured" (channels removed, layers shrink)
    prune_every: int  # epochs between pruning steps, >= 1
    prune_schedule: str  # "cubic" (Zhu & Gupta 2017: fast first, then slower) or "linear"
    epochs: int  # epochs the run trains in all, >= 1; the last step leaves at least one to fine-tune when it can
    bn_recalibrate: bool = True  # re-estimate batch-norm statistics on calibration samples after each step
    batch_size: int = 64  # samples per forward pass while recalibrating batch norms, >= 1

    def __post_init__(self) -> None:
        for f in fields(self):
            # why: one set of rules for these keys, the trial config's, so the two kinds of plan cannot drift
            object.__setattr__(self, f.name, check_value(f.name, getattr(self, f.name)))


def pruning_epochs(cfg: PruningPlan) -> list[int]:
    """Epochs (1-based, counted when finished) after which a pruning step happens.

    Steps at ``prune_every, 2*prune_every, ...`` up to the last multiple that is
    ``<= epochs - 1``, so at least one epoch of fine-tuning follows the last step.
    A trial too short for that (``epochs <= prune_every``) prunes once, to the full
    ratio, after epoch ``max(1, epochs - 1)``; with ``epochs == 1`` that is after
    the only epoch, with no fine-tuning. Empty when ``prune_ratio == 0``.
    """
    if cfg.prune_ratio == 0.0:
        return []
    steps = list(range(cfg.prune_every, cfg.epochs, cfg.prune_every))
    # why: a short trial (or an early-stopped search budget) must still reach prune_ratio
    return steps or [max(1, cfg.epochs - 1)]


def _step_targets(cfg: PruningPlan) -> list[float]:
    """Cumulative sparsity after each pruning step k = 1..K."""
    n_steps = len(pruning_epochs(cfg))
    targets = []
    for k in range(1, n_steps + 1):
        frac = k / n_steps
        # why: Zhu & Gupta (2017) prune fast while the network is redundant, then slow down
        ramp = 1.0 - (1.0 - frac) ** 3 if cfg.prune_schedule == "cubic" else frac
        targets.append(cfg.prune_ratio * ramp)
    return targets


def target_sparsity(epoch: int, cfg: PruningPlan) -> float:
    """Sparsity the schedule asks for after ``epoch`` finished epochs (1-based).

    Over the K steps of ``pruning_epochs(cfg)``, step k reaches
    ``s_k = prune_ratio * (1 - (1 - k/K)^3)`` (cubic, Zhu & Gupta 2017) or
    ``prune_ratio * k/K`` (linear); between steps the last step's value holds,
    before the first step it is 0. The last step reaches ``prune_ratio`` exactly.
    """
    done = [s for s, e in zip(_step_targets(cfg), pruning_epochs(cfg), strict=True) if e <= epoch]
    return done[-1] if done else 0.0


# --- counting ----------------------------------------------------------------


def classifier_layer(model: nn.Module) -> nn.Module:
    """The final classifier: the last conv / linear layer registered (``head`` / the last ``Linear`` of ours)."""
    layers = [m for m in model.modules() if isinstance(m, _LAYER_TYPES)]
    if not layers:
        raise ValueError(f"model has no conv or linear layer to prune: {type(model).__name__}")
    return layers[-1]


def prunable_layers(model: nn.Module, ignored: Sequence[nn.Module] | None = None) -> list[nn.Module]:
    """Conv and linear layers the pruner may touch: all but those in ``ignored`` (default: the final classifier).

    A module in ``ignored`` keeps all its submodules dense too (pass a whole head).
    """
    keep = [classifier_layer(model)] if ignored is None else ignored
    dense = {id(m) for layer in keep for m in layer.modules()}
    return [m for m in model.modules() if isinstance(m, _LAYER_TYPES) and id(m) not in dense]


def prunable_weights(model: nn.Module, ignored: Sequence[nn.Module] | None = None) -> int:
    """Number of weight entries in the prunable layers, at their current shapes (zeros included)."""
    return sum(effective_weight(m).numel() for m in prunable_layers(model, ignored))


def nonzero_params(model: nn.Module) -> int:
    """Non-zero entries over all parameters (biases and norms included), pruning masks applied."""
    return nonzero_counts(model).params


def sparsity(
    model: nn.Module,
    dense_params: int | None = None,
    *,
    ignored: Sequence[nn.Module] | None = None,
    counts: NonzeroCounts | None = None,
) -> float:
    """Fraction of prunable weights (conv / linear weights but the ignored ones) that are zero or removed.

    ``dense_params``: the number of prunable weights of the dense model
    (``prunable_weights`` before pruning, kept as ``Pruner.dense_weights``); with
    it, removed weights (structured pruning) count as well as zeroed ones. Without
    it, only the zeros of the current tensors count. ``ignored``: as in ``prunable_layers`` (default the classifier).
    ``counts``: the model's ``nonzero_counts`` now, when the caller has it.
    """
    counts = counts if counts is not None else nonzero_counts(model)
    layers = [counts.weight(m) for m in prunable_layers(model, ignored)]
    nonzero = sum(n for n, _ in layers)
    total = dense_params if dense_params is not None else sum(size for _, size in layers)
    if total <= 0:
        raise ValueError(f"dense_params must be > 0, but got {total=}.")
    return 1.0 - nonzero / total


# --- the pruner ---------------------------------------------------------------


def _is_channels_last(model: nn.Module) -> bool:
    for p in model.parameters():
        # why: a 4-D tensor with one channel or 1x1 kernels is both formats; look for one that is not
        if p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous():
            return True
    return False


def _check_ignored(model: nn.Module, ignored: Sequence[nn.Module]) -> list[nn.Module]:
    inside = {id(m) for m in model.modules()}
    if outside := [type(m).__name__ for m in ignored if id(m) not in inside]:
        raise ValueError(f"ignored_layers must be modules of the model, but got {outside=}.")
    return list(ignored)


class Pruner:
    """Prunes a model during training on the schedule of ``target_sparsity``.

    Build it on the dense model before the first epoch; call ``step`` after every
    finished epoch and ``finalize`` once at the end. The model may live on any
    device (``example`` is moved to it); channels-last models stay channels-last.
    ``cfg``: a ``TrialConfig`` or a ``PruneSchedule``. ``ignored_layers``: modules
    (with their submodules) kept dense; default the final classifier
    (``classifier_layer``). Structured pruning still shrinks their inputs.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: PruningPlan,
        example: torch.Tensor,
        *,
        calibration: torch.Tensor | None = None,
        ignored_layers: Sequence[nn.Module] | None = None,
    ) -> None:
        self.cfg = cfg
        self.epochs = pruning_epochs(cfg)
        self.ignored_layers = None if ignored_layers is None else _check_ignored(model, ignored_layers)
        self.dense_weights = prunable_weights(model, self.ignored_layers)  # for sparsity(model, pruner.dense_weights)
        if cfg.prune_ratio > 0.0 and self.dense_weights == 0:
            raise ValueError("ignored_layers must leave a conv or linear layer to prune, but every one is in it.")
        self.steps_done = 0
        # why: training samples to re-estimate batch-norm statistics on after each step (cfg.bn_recalibrate)
        self._calibration = calibration if cfg.bn_recalibrate else None
        self._tp: Any = None
        if cfg.prune_ratio > 0.0 and cfg.prune_method == "structured":
            self._tp = self._build_structured(model, example)

    def _build_structured(self, model: nn.Module, example: torch.Tensor) -> Any:
        targets = [0.0, *_step_targets(self.cfg)]
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()  # why: the tracing forward must not move batch-norm running statistics
        try:
            # why: torch_pruning traces the autograd graph, so gradients must be on for its forward
            with torch.enable_grad():
                return tp.pruner.BasePruner(
                    model,
                    example.to(device),
                    importance=tp.importance.GroupMagnitudeImportance(p=1),  # group L1 norm
                    pruning_ratio=self.cfg.prune_ratio,
                    iterative_steps=len(targets) - 1,
                    iterative_pruning_ratio_scheduler=lambda _ratio, _steps: targets,
                    ignored_layers=[classifier_layer(model)] if self.ignored_layers is None else self.ignored_layers,
                    global_pruning=False,  # why: every layer group loses the same fraction: ratio = channels removed
                )
        finally:
            model.train(was_training)

    def step(
        self, model: nn.Module, epoch: int, optimizer: torch.optim.Optimizer | None = None
    ) -> tuple[nn.Module, bool]:
        """Call after each finished epoch (1-based); prunes when the schedule says so.

        Returns ``(model, structure_changed)``. ``structure_changed`` is True after
        a structured step: parameters were replaced by smaller ones, so FLOPs must
        be recounted, and an optimizer not passed here must be rebuilt. One passed
        as ``optimizer`` is updated in place: it then holds the new parameters, each
        with the state (Adam moments, step count) of the weights that survived.
        Unstructured steps keep the parameter objects (``weight`` becomes
        ``weight_orig`` plus a mask buffer), so the optimizer stays valid and False
        is returned. After any step, with ``cfg.bn_recalibrate`` and ``calibration``
        given, batch-norm running statistics are re-estimated on ``calibration``.
        Steps missed are applied at once; so resuming from a checkpoint taken after
        epoch e is ``step(fresh_dense_model, e, fresh_optimizer)`` then both
        ``load_state_dict``.
        """
        due = sum(1 for e in self.epochs if e <= epoch)
        if due <= self.steps_done:
            return model, False
        channels_last = _is_channels_last(model)
        if channels_last:
            # why: global_unstructured flattens weights and masks with view(-1), which channels-last refuses
            model.to(memory_format=torch.contiguous_format)
        if self._tp is not None:
            changed = pruned = self._step_structured(model, due, optimizer)
        else:
            pruned, changed = self._prune_unstructured(model, target_sparsity(epoch, self.cfg)), False
        self.steps_done = due
        if channels_last:
            model.to(memory_format=torch.channels_last)  # why: .to keeps the Parameter objects the optimizer holds
        if pruned and self._calibration is not None:
            recalibrate_batchnorm(model, self._calibration, batch_size=self.cfg.batch_size)
        return model, changed

    def _step_structured(self, model: nn.Module, due: int, optimizer: torch.optim.Optimizer | None) -> bool:
        before = [id(p) for p in model.parameters()]
        carry = OptimizerCarry()
        if optimizer is not None:
            carry.take(model, optimizer)
        while self._tp.current_step < due:
            for group in self._tp.step(interactive=True):
                carry.slice(group)  # why: before the group's channels are gone, their indices still apply
                group.prune()
        if optimizer is not None:
            carry.apply(optimizer)
        # why: a step whose ratio rounds to the channel counts already there replaces nothing
        return [id(p) for p in model.parameters()] != before

    def _prune_unstructured(self, model: nn.Module, target: float) -> bool:
        """Prune to ``target`` sparsity; True when weights were pruned."""
        layers = prunable_layers(model, self.ignored_layers)
        total = sum(effective_weight(m).numel() for m in layers)
        masks = [m.get_buffer("weight_mask") for m in layers if hasattr(m, "weight_mask")]
        pruned = sum(int((mask == 0).sum().item()) for mask in masks)
        # why: an int amount is a count of weights still unpruned; global_unstructured ranks only those
        amount = round(target * total) - pruned
        if amount <= 0:
            return False
        prune.global_unstructured(
            [(m, "weight") for m in layers],
            pruning_method=prune.L1Unstructured,
            # why: rank the current weights; module.weight is only refreshed by the next forward
            importance_scores={(m, "weight"): effective_weight(m).abs() for m in layers},
            amount=amount,
        )
        return True

    def sparsity(self, model: nn.Module) -> float:
        """``sparsity(model, self.dense_weights)``: zeroed and removed prunable weights over the dense count."""
        return sparsity(model, self.dense_weights, ignored=self.ignored_layers)

    def finalize(self, model: nn.Module) -> nn.Module:
        """Make unstructured masks permanent (plain ``weight`` parameters again); a no-op for structured."""
        for module in model.modules():
            if hasattr(module, "weight_mask"):
                prune.remove(module, "weight")
        return model
