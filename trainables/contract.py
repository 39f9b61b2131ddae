"""The public trainable contract: ``train(config, ctx)``, and the one path every trial runs through.

A user's function receives the trial's config (a plain dict of the spec's ``fixed:`` and ``space:`` keys)
and a ``Context``. It trains on whatever it likes and calls ``ctx.report(metrics, state=...)`` once per
finished epoch. wattsweep does the rest around it::

    def train(config, ctx):
        model = Net(config["width"]).to(ctx.device)
        opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
        if ctx.checkpoint:                          # a retried or resumed trial gets its last state back
            model.load_state_dict(ctx.checkpoint["model"])
            opt.load_state_dict(ctx.checkpoint["opt"])
        ctx.watch(model, example_input)             # optional: params, FLOPs, sparsity, inference energy, export
        for epoch in range(ctx.start_epoch + 1, ctx.epochs + 1):
            ...                                     # the user's own loop
            ctx.report({"accuracy": acc, "loss": loss}, state={"model": model.state_dict(), "opt": opt.state_dict()})

What wattsweep adds to each report (the metric contract, ``trainables.metrics``): ``epoch`` (counted
here), the energy of the trial so far (``energy_j``, ``dynamic_energy_j``, ``energy_source``,
``energy_estimated``; the meter window is closed after a CUDA synchronise), ``time_s``, ``budget_epochs``,
and with ``watch``: ``params``, ``flops``, ``effective_flops``, ``sparsity`` (every epoch), layer FLOPs and
inference energy per 1,000 samples (last epoch). A report that lacks an objective, or holds a non-finite
one, fails the trial (``TrialContractError``), which Tune retries from its last checkpoint.

Nothing here imports Ray: ``trainables.ray_trainable`` connects a ``Sink`` to Tune; the CLI's ``trial``
command connects one that prints.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from trainables import metrics as M
from trainables.config import DatasetConfig

if TYPE_CHECKING:
    import torch

    from trainables.data import SplitArrays, Splits
    from trainables.energy import BaseMeter, EnergyReading

__all__ = ["FINAL_MODEL_KEY", "Context", "Sink", "TrialContractError", "TrialPlan", "run_contract"]

# Metrics only wattsweep writes: a user report naming one of these is refused (it would falsify the measurement).
_COMPONENT_J = {c: j for c, j, _ in M.ENERGY_COMPONENTS}
_COMPONENT_SOURCE = {c: src for c, _, src in M.ENERGY_COMPONENTS}
# cumulative over a trial's attempts (checkpointed)
_COUNTERS = (M.ENERGY_J, M.DYNAMIC_ENERGY_J, M.TIME_S, *_COMPONENT_J.values())
# Metrics only wattsweep writes: a user report naming one of these is refused (it would falsify the measurement).
MEASURED: frozenset[str] = frozenset(
    {
        M.EPOCH,
        M.ENERGY_SOURCE,
        M.ENERGY_ESTIMATED,
        M.BUDGET_EPOCHS,
        M.ENERGY_ATTRIBUTION,
        M.GPU_MODEL,
        *_COUNTERS,
        *_COMPONENT_SOURCE.values(),
    }
)


def _counters(reading: EnergyReading) -> dict[str, float]:
    """The cumulative numbers of one reading, by metric name (a component the meter has not: absent)."""
    out = {M.ENERGY_J: reading.energy_j, M.DYNAMIC_ENERGY_J: reading.dynamic_energy_j, M.TIME_S: reading.time_s}
    out.update({_COMPONENT_J[c]: j for c, j in reading.components.items() if c in _COMPONENT_J})
    return out


_STATE_KEY, _USER_KEY = "wattsweep", "user"  # the checkpoint: wattsweep's counters beside the user's state
# the last epoch's checkpoint also holds {"model": the watched model, "example": its example input} under this key;
# a sink stores it apart from the state (a pickled module, which torch.load(weights_only=True) refuses)
FINAL_MODEL_KEY = "final_model"


class TrialContractError(RuntimeError):
    """A trainable broke the contract (missing or non-finite objective, a measured name, no report at all)."""


@dataclass(frozen=True)
class TrialPlan:
    """Everything a trial needs besides its config, decided once by the driver and shipped unchanged.

    ``trainable`` is ``"package.module:function"`` (imported in the worker) or the function itself
    (the Python API; Ray pickles it).
    """

    trainable: str | Callable[..., Any]
    objectives: tuple[tuple[str, str], ...] = ((M.ACCURACY, "max"), (M.ENERGY_J, "min"))
    dataset: DatasetConfig | None = None  # loaded for the trainable as ``ctx.data``; None = the user loads data
    max_epochs: int | None = None  # --max-epochs: caps every trial's ``epochs``
    default_epochs: int | None = None  # budget of a config without an ``epochs`` key (the built-in's default)
    seed: int = 0  # a config without a ``seed`` key uses this
    num_threads: int | None = None  # torch intra-op threads (the trial's CPUs)
    watts_per_core: float | None = None  # the estimate backend's setting
    idle_power_w: Mapping[str, float] = field(default_factory=dict)  # idle baseline, W, by GPU UUID / cpu-*
    idle_host: str | None = None  # the node (hostname) idle_power_w was measured on: the driver's
    idle_baseline_s: float = 0.0  # a trial on another node measures that node's idle this long, once per sweep
    sweep_key: str = ""  # names this sweep's per-node files (the node's idle baseline)
    # the GPUs Ray gives each trial (resources.gpu); below 1 the trial shares a device and the meter splits its energy
    gpus_per_trial: float = 0.0
    checkpoint: bool = True  # hand the user's state to the sink every epoch

    @property
    def gpu_fraction(self) -> float:
        """This trial's share of its GPU for the meter, in (0, 1]: 1 with whole GPUs (or none)."""
        return self.gpus_per_trial if 0 < self.gpus_per_trial < 1 else 1.0

    def seed_for(self, config: Mapping[str, Any]) -> int:
        """The trial's seed: its ``seed`` key, else the sweep's."""
        return int(config.get("seed", self.seed))

    def budget(self, config: Mapping[str, Any]) -> int:
        """The trial's epoch budget: its ``epochs`` key, capped by ``max_epochs``. Decided here only."""
        epochs = int(config.get("epochs", self.default_epochs or 0))
        if epochs < 1:
            raise TrialContractError(f"the config has no epoch budget: 'epochs' = {config.get('epochs')!r}")
        return min(epochs, self.max_epochs) if self.max_epochs else epochs


class Sink(Protocol):
    """Where reports go: ``(metrics, checkpoint state or None)``. Tune in a sweep, a printer for ``trial``."""

    def __call__(self, metrics: dict[str, Any], state: dict[str, Any] | None) -> None: ...


class Context:
    """What wattsweep hands a trainable: device, seed, budget, the state to resume from, and ``report``.

    Attributes: ``config`` (the trial's config), ``device`` (the ``torch.device`` Ray assigned: the GPU
    the trial sees, else CPU; a config key ``device: cpu`` forces CPU), ``seed`` (torch, numpy and
    ``random`` are seeded with it before the trainable starts), ``epochs`` (the budget: report at most this
    many epochs), ``start_epoch`` (epochs already done by an earlier attempt; 0 on a fresh trial),
    ``checkpoint`` (the ``state`` last handed to ``report``, or None), ``data`` (the spec's dataset as
    ``trainables.data.Splits`` on CPU, or None when the spec names no dataset).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        plan: TrialPlan,
        meter: BaseMeter,
        sink: Sink,
        *,
        device: torch.device,
        resume: Mapping[str, Any] | None = None,
        data: Splits | None = None,
    ) -> None:
        from trainables.watch import ModelWatch

        self.config = dict(config)
        self.plan = plan
        self.device = device
        self.seed = plan.seed_for(config)
        self.epochs = plan.budget(config)
        self.data = data
        self._meter, self._sink = meter, sink
        counters = dict((resume or {}).get(_STATE_KEY, {}))
        self.start_epoch = int(counters.get(M.EPOCH, 0))
        self.checkpoint: Any = (resume or {}).get(_USER_KEY)
        self._offset = {k: float(counters.get(k, 0.0)) for k in _COUNTERS}
        self._unbilled = dict.fromkeys(_COUNTERS, 0.0)  # wattsweep's own work inside the window (FLOP counts)
        self._epoch = self.start_epoch
        self._watch = ModelWatch()

    @property
    def reports(self) -> int:
        """Epochs reported so far by this attempt."""
        return self._epoch - self.start_epoch

    def watch(self, model: torch.nn.Module, example_input: torch.Tensor) -> None:
        """Hand over the model and one example input (batch of 1) so that wattsweep records its parameters,
        FLOPs (dense and effective, i.e. after pruning), sparsity and, at the last epoch, layer FLOPs and the
        energy and latency of 1,000 single-sample inferences. Call again after replacing the model object.

        The model watched at the last epoch is also what ``python -m orchestrator export`` exports: wattsweep saves
        it whole (``torch.save`` of the module, with ``example_input``) beside the complete trial's final
        checkpoint, so a structurally pruned model is kept as the smaller network it became. Its class must be
        importable (defined in a module, not in ``__main__`` or inside a function) for that file to be written and
        read back. A trial that never calls ``watch`` can be swept but not exported."""
        self._unbilled_call(self._watch.set, model, example_input)

    def _unbilled_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run wattsweep's own measuring work (counting FLOPs) outside the trial's bill: its energy and time are
        subtracted from what the trial reports. why: the first FLOP count in a process costs seconds of warm-up,
        which would otherwise land on whichever trial a worker runs first."""
        before = _counters(self._meter.read())
        try:
            return fn(*args)
        finally:
            after = _counters(self._meter.read())
            for k, v in after.items():
                self._unbilled[k] += v - before.get(k, 0.0)

    def report(self, metrics: Mapping[str, Any] | None = None, *, state: Mapping[str, Any] | None = None) -> None:
        """End one epoch: close its energy window, add the contract's metrics, check the objectives, hand
        ``metrics`` and ``state`` to Tune. ``state``: what ``torch.load(weights_only=True)`` reads back (state
        dicts, tensors, numbers, strings and containers of them); it comes back as ``ctx.checkpoint``.

        ``metrics``: the user's own numbers for this epoch (``accuracy`` is the validation accuracy the default
        objectives read; any other name may be an objective). Names wattsweep measures (``epoch``, ``energy_j``,
        ``time_s``, ...) are refused.
        """
        user = dict(metrics or {})
        taken = sorted(MEASURED & user.keys())
        if taken:
            raise TrialContractError(f"metrics {taken} are measured by wattsweep; report your own names")
        if self._epoch >= self.epochs:
            raise TrialContractError(f"report() called after the trial's last epoch ({self.epochs})")
        self._epoch += 1
        last = self._epoch == self.epochs
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)  # why: the window must hold the epoch's queued GPU work
        # why before the reading: what the watch costs is subtracted from this reading, so it must be inside it
        watched = self._unbilled_call(self._watch.epoch_metrics)
        reading = self._meter.read()
        measured = _counters(reading)
        out: dict[str, Any] = {**watched, **user}
        # why None for a component the meter has not: every epoch record holds every contract name
        out.update({k: self._offset[k] + measured[k] - self._unbilled[k] if k in measured else None for k in _COUNTERS})
        out.update({src: reading.component_sources.get(c) for c, src in _COMPONENT_SOURCE.items()})
        out.update(
            {
                M.EPOCH: self._epoch,
                M.ENERGY_SOURCE: reading.source,
                M.ENERGY_ESTIMATED: reading.estimated,
                M.ENERGY_ATTRIBUTION: reading.attribution_label,
                M.GPU_MODEL: self._meter.gpu_model,
                M.BUDGET_EPOCHS: self.epochs,
            }
        )
        if last:
            out[M.POWER_TRACE] = self._meter.trace()
            out[M.ENERGY_PROVENANCE] = self._meter.provenance()
            out.update(self._watch.final_metrics(self._meter))
            # why: nothing is measured after the last epoch; a meter left open while the checkpoint is stored keeps
            # the trial on a shared GPU's ledger, billed part of the other trials' energy it never reports
            self._meter.stop()
        check_objectives(out, self.plan.objectives, last=last)
        self._sink(out, self._checkpoint(out, state, last=last) if self.plan.checkpoint else None)

    def _checkpoint(self, out: Mapping[str, Any], state: Mapping[str, Any] | None, *, last: bool) -> dict[str, Any]:
        counters = {k: out[k] for k in (M.EPOCH, *_COUNTERS) if out[k] is not None}
        checkpoint = {_STATE_KEY: counters, _USER_KEY: dict(state) if state is not None else None}
        if last and self._watch.model is not None:
            # why: the final model as it ended (a structurally pruned one is a smaller network that its config
            # cannot rebuild), for `export`; the sink stores it beside the state, only at a complete trial's end
            checkpoint[FINAL_MODEL_KEY] = {"model": self._watch.model, "example": self._watch.example}
        return checkpoint


def check_objectives(metrics: Mapping[str, Any], objectives: tuple[tuple[str, str], ...], *, last: bool) -> None:
    """Every objective present and finite. Metrics that exist only at the last epoch are checked there."""
    for name, _ in objectives:
        if name not in metrics:
            if name in M.FINAL_METRICS and not last:
                continue
            reported = ", ".join(sorted(k for k in metrics if k not in MEASURED)) or "nothing of its own"
            hint = " (hand over the model with ctx.watch)" if name in _WATCHED else ""
            raise TrialContractError(f"objective {name!r} was never reported{hint}; the trial reported: {reported}")
        value = metrics[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TrialContractError(f"objective {name!r} is not a finite number: {value!r}")


_WATCHED = frozenset({M.PARAMS, M.FLOPS, M.EFFECTIVE_FLOPS, M.SPARSITY, M.INFER_ENERGY_J_PER_1K, M.INFER_LATENCY_MS})


def pick_device(config: Mapping[str, Any]) -> torch.device:
    """The GPU the trial sees (Ray sets ``CUDA_VISIBLE_DEVICES``), else CPU; a config key ``device`` (auto, cpu,
    cuda) decides where it is given."""
    import torch

    wanted = config.get("device", "auto")
    if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available() else 0)
    return torch.device("cpu")


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _node_idle(plan: TrialPlan) -> dict[str, float]:
    """The idle baseline of the node this trial runs on: the driver's where it is the driver's node, else this
    node's own, measured by the sweep's first trial here (before its meter opens, so unbilled)."""
    import socket

    if plan.idle_host is None or socket.gethostname() == plan.idle_host or plan.idle_baseline_s <= 0:
        return dict(plan.idle_power_w)
    from trainables.energy import measure_idle_power
    from trainables.energy._node_idle import node_idle_power

    watts, _ = node_idle_power(plan.sweep_key, plan.idle_baseline_s, lambda s: measure_idle_power(seconds=s))
    return watts


@contextlib.contextmanager
def _open_meter(device: torch.device, plan: TrialPlan) -> Iterator[BaseMeter]:
    from trainables.energy import make_meter
    from trainables.energy._factory import next_meter
    from trainables.energy._fallback import FallbackMeter
    from trainables.watch import idle_power_for

    # why share_cpu: trials run side by side on a machine; with RAPL each bills its share of the package, once
    # why the plan's GPUs too: a trial that holds a GPU is billed for it, wherever its own code computes
    kind = "cuda" if device.type == "cuda" or plan.gpus_per_trial > 0 else "cpu"
    meter = make_meter(kind, watts_per_core=plan.watts_per_core, gpu_fraction=plan.gpu_fraction, share_cpu=True)
    idle = _node_idle(plan)

    def with_idle(m: BaseMeter) -> BaseMeter:
        for part in getattr(m, "parts", [m]):  # why per part: a GPU and its host each have their own idle power
            part.idle_power_w = idle_power_for(part, idle)
        return m

    def take_over(failed: BaseMeter) -> BaseMeter:
        return with_idle(next_meter(failed, watts_per_core=plan.watts_per_core, share_cpu=True))

    # why: a meter that fails mid-trial (a GPU lost, NVML gone) hands over to the next source; the trial goes on
    meter = with_idle(meter) if meter.estimated else FallbackMeter(with_idle(meter), take_over)
    meter.start()
    try:
        yield meter
    finally:
        meter.stop()  # why: a trial that raises must not leave the meter's sampler thread in a reused actor


def run_contract(
    fn: Callable[[dict[str, Any], Context], Any],
    config: Mapping[str, Any],
    plan: TrialPlan,
    sink: Sink,
    *,
    resume: Mapping[str, Any] | None = None,
    data: SplitArrays | Splits | None = None,
) -> Context:
    """Run one trial of ``fn`` under the contract; returns its context (``ctx.reports``: epochs reported)."""
    import torch

    if plan.num_threads:
        torch.set_num_threads(plan.num_threads)
    # why: the first optimizer step in a process imports torch._dynamo (~0.9 s of CPU here); that is the worker's
    # start-up, not the trial's work, and inside the meter it would land on whichever trial a worker runs first
    import torch._dynamo

    device = pick_device(config)
    splits = _splits(plan, data)
    _seed_everything(plan.seed_for(config))
    with _open_meter(device, plan) as meter:
        ctx = Context(config, plan, meter, sink, device=device, resume=resume, data=splits)
        if ctx.start_epoch >= ctx.epochs:
            return ctx  # why: a resumed trial whose last epoch was already reported has nothing left to run
        fn(dict(config), ctx)
    if ctx.reports == 0:
        raise TrialContractError("the trainable returned without reporting any epoch (call ctx.report once per epoch)")
    return ctx


def _splits(plan: TrialPlan, data: SplitArrays | Splits | None) -> Splits | None:
    if data is not None:
        return data.to_splits() if hasattr(data, "to_splits") else data
    if plan.dataset is None:
        return None
    from trainables.data import cached_splits

    return cached_splits(plan.dataset)
