"""What the cluster can become, and how many trials fit on it at once.

On an autoscaling cluster the nodes up when the driver starts are not the cluster: ``cluster.yaml``'s head has
``CPU: 0`` and its GPU workers start from zero, so ``ray.cluster_resources()`` shows neither a CPU nor a GPU.
Sizing trials from it would train every trial on the CPU, one at a time, and never ask the autoscaler for a GPU.

Two parts:

- ``discover_node_types``: the one adapter that reads the node types the autoscaler may start (its config file,
  found from the autoscaler's own command line, or Ray's private GCS state); foreign errors end there.
- ``size_trials``: pure. From the nodes up now and those node types, the GPUs per trial, the Ray resources a trial
  asks for and how many trials can run at once; a ``SpecError`` where no node up or startable can run a trial.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_spaces import SpecError

__all__ = [
    "ACCELERATOR_PREFIX",
    "ACCELERATOR_SHARE",
    "BOOTSTRAP_CONFIG",
    "NodeType",
    "NodeTypes",
    "TrialRequest",
    "TrialSizing",
    "discover_node_types",
    "parse_cluster_config",
    "size_trials",
]

log = logging.getLogger(__name__)

ACCELERATOR_PREFIX = "accelerator_type:"  # Ray's resource that marks a node's GPU model (1 per node)
# why 0.001: Ray's own amount for ``accelerator_type=`` (ray._common.utils): it pins the trial to that model
# without using up the node's one unit
ACCELERATOR_SHARE = 0.001
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"  # `ray up` writes the resolved cluster config there on the head
_EPS = 1e-9  # why: 1 // 0.001 is 999.0 in floats; counts are rounded up across this much error


@dataclass(frozen=True)
class NodeType:
    """One kind of node the autoscaler may start."""

    name: str
    resources: Mapping[str, float]  # one node's Ray resources: CPU, GPU, accelerator_type:A10G, memory...
    max_workers: int | None  # worker nodes of this type at most; None: no limit of its own
    head: bool = False  # the head node's type: one node (the head) plus up to max_workers workers


@dataclass(frozen=True)
class NodeTypes:
    """The autoscaler's node types and its cap on worker nodes."""

    types: tuple[NodeType, ...]
    max_workers: int | None  # worker nodes of all types together at most (the head not counted); None: no cap
    source: str  # where they were read (a config file's path, or the GCS), for messages


@dataclass(frozen=True)
class TrialRequest:
    """What the spec asks for each trial (``resources:``)."""

    cpu: float
    gpu: float | str  # GPUs (a fraction shares one), or "auto": one where the cluster has or can start one
    accelerator_type: str | None = None  # a GPU model (A10G, L4, H100): Ray's accelerator_type:<model> resource


@dataclass(frozen=True)
class TrialSizing:
    """The decision: what each trial gets and how many run at once."""

    cpu: float
    gpu: float
    accelerator_type: str | None
    slots: int  # trials that can run at once on the largest the cluster gets (the nodes up, or all it can start)

    def resources(self) -> dict[str, float]:
        """The request for ``tune.with_resources``: ``cpu``, ``gpu`` and, where a model is asked for, Ray's
        ``accelerator_type:<model>`` resource (Tune makes every other key a custom resource of the trial)."""
        res = {"cpu": self.cpu, "gpu": self.gpu}
        if self.accelerator_type:
            res[ACCELERATOR_PREFIX + self.accelerator_type] = ACCELERATOR_SHARE
        return res


# ---- the decision (pure) ----


def size_trials(
    nodes_up: Sequence[Mapping[str, float]],
    node_types: NodeTypes | None,
    request: TrialRequest,
    *,
    n_trials: int,
) -> TrialSizing:
    """GPUs per trial and trials at once, from the nodes up now (their Ray resources) and the node types the
    autoscaler may start (None: no autoscaler, the nodes up are the cluster).

    ``gpu: auto`` is one GPU where any node, up or startable, has one (of the asked model), else none. Trials at
    once: trials packed node by node (a node holds min(CPU // cpu, GPU // gpu, its accelerator's) of them), summed
    over the nodes up now, or over every node type at its ``max_workers`` within the global cap, whichever is
    more. A type without a limit counts ``n_trials`` nodes. SpecError naming the field where no node can run one.
    """
    reachable = [*nodes_up, *_startable(node_types)]
    accel = request.accelerator_type
    if accel:
        _check_accelerator(accel, reachable, node_types)
    gpu = _gpus_per_trial(request, reachable, node_types)
    need = _need(request.cpu, gpu, accel)
    slots = max(sum(_fits(n, need) for n in nodes_up), _slots_at_max(node_types, need, n_trials))
    if slots == 0:
        raise _no_fit(request.cpu, gpu, accel, reachable, node_types)
    return TrialSizing(request.cpu, gpu, accel, slots)


def _need(cpu: float, gpu: float, accel: str | None) -> dict[str, float]:
    need = {"CPU": cpu, "GPU": gpu}
    if accel:
        need[ACCELERATOR_PREFIX + accel] = ACCELERATOR_SHARE
    return {k: v for k, v in need.items() if v > 0}


def _fits(node: Mapping[str, float], need: Mapping[str, float]) -> int:
    """How many trials asking ``need`` one node with ``node``'s resources holds."""
    return min((math.floor(float(node.get(k, 0.0)) / v + _EPS) for k, v in need.items()), default=0)


def _startable(node_types: NodeTypes | None) -> list[Mapping[str, float]]:
    """The resources of every kind of node the cluster can have (the head, and the types it may start)."""
    if node_types is None:
        return []
    workers_allowed = node_types.max_workers != 0
    return [t.resources for t in node_types.types if t.head or (workers_allowed and t.max_workers != 0)]


def _slots_at_max(node_types: NodeTypes | None, need: Mapping[str, float], n_trials: int) -> int:
    """Trials at once with every node type at its maximum; the global cap goes to the types that hold most."""
    if node_types is None:
        return 0
    slots = sum(_fits(t.resources, need) for t in node_types.types if t.head)
    left = math.inf if node_types.max_workers is None else node_types.max_workers
    pools = sorted(((_fits(t.resources, need), t.max_workers) for t in node_types.types), key=lambda p: -p[0])
    for per_node, max_workers in pools:
        nodes = min(n_trials if max_workers is None else max_workers, left)
        if per_node == 0 or nodes <= 0:
            break
        slots += int(nodes) * per_node
        left -= nodes
    return slots


def _where(node_types: NodeTypes | None) -> str:
    return f"nodes up now or node types in {node_types.source}" if node_types else "nodes up now (no autoscaler)"


def _check_accelerator(accel: str, reachable: Iterable[Mapping[str, float]], node_types: NodeTypes | None) -> None:
    models = sorted({k[len(ACCELERATOR_PREFIX) :] for n in reachable for k in n if k.startswith(ACCELERATOR_PREFIX)})
    if accel not in models:
        have = ", ".join(models) if models else "none (no node has an accelerator_type:<model> resource)"
        raise SpecError("resources.accelerator_type", accel, f"a GPU model of the {_where(node_types)}: {have}")


def _gpus_per_trial(request: TrialRequest, reachable: Iterable[Mapping[str, float]], types: NodeTypes | None) -> float:
    model = ACCELERATOR_PREFIX + request.accelerator_type if request.accelerator_type else None
    has_gpu = any(float(n.get("GPU", 0.0)) > 0 and (model is None or model in n) for n in reachable)
    if request.gpu == "auto":
        return 1.0 if has_gpu else 0.0
    gpu = float(request.gpu)
    if gpu > 0 and not has_gpu:
        of = f" of model {request.accelerator_type}" if model else ""
        raise SpecError("resources.gpu", request.gpu, f"0 or auto: none of the {_where(types)} has a GPU{of}")
    return gpu


def _no_fit(
    cpu: float, gpu: float, accel: str | None, reachable: Sequence[Mapping[str, float]], types: NodeTypes | None
) -> SpecError:
    """The field to blame when no node holds one trial: the GPUs if no node has that many, else the CPUs."""
    model = ACCELERATOR_PREFIX + accel if accel else None
    fitting = [n for n in reachable if model is None or model in n]
    with_gpus = [n for n in fitting if float(n.get("GPU", 0.0)) + _EPS >= gpu]
    of = f" of model {accel}" if accel else ""
    if not with_gpus:
        most = max((float(n.get("GPU", 0.0)) for n in fitting), default=0.0)
        return SpecError("resources.gpu", gpu, f"at most {most:g} GPUs per trial (the most any node{of} has)")
    most = max(float(n.get("CPU", 0.0)) for n in with_gpus)
    with_ = f" with {gpu:g} GPU{of}" if gpu > 0 else of
    if most == 0:
        return SpecError("resources.cpu", cpu, f"a cluster with CPUs: none of the {_where(types)}{with_} has one")
    return SpecError("resources.cpu", cpu, f"at most {most:g} CPUs per trial (the most any node{with_} has)")


# ---- discovery (the one adapter over the autoscaler's config and Ray's private state) ----


def parse_cluster_config(config: Mapping[str, Any], source: str) -> NodeTypes:
    """Node types of a cluster config as ``ray up`` resolves it (``available_node_types``, ``head_node_type``,
    ``max_workers``). A type without ``max_workers`` gets the global one, the head's type 0, as Ray does."""
    cap = config.get("max_workers")
    head = config.get("head_node_type")
    types = []
    for name, raw in (config.get("available_node_types") or {}).items():
        resources = {str(k): float(v) for k, v in (raw.get("resources") or {}).items()}
        max_workers = raw.get("max_workers", 0 if name == head else cap)
        types.append(NodeType(str(name), resources, None if max_workers is None else int(max_workers), name == head))
    return NodeTypes(tuple(types), None if cap is None else int(cap), source)


def discover_node_types(gcs_address: str | None) -> NodeTypes | None:
    """The node types the autoscaler of the cluster at ``gcs_address`` may start; None where it has none or they
    cannot be read (a warning says why; the sweep then sizes from the nodes up now).

    In order: the config in the ``--autoscaling-config`` of that cluster's autoscaler process on this node (the
    driver runs on the head under ``ray job submit``); else, where no autoscaler of that cluster runs here,
    ``~/ray_bootstrap_config.yaml`` (``ray up`` writes it on the head); else the cluster config the autoscaler v2
    stores in the GCS (``ray._private.state``, private: ``get_cluster_config`` returns None under autoscaler v1).
    """
    monitor = _monitor(gcs_address)
    if monitor is not None:
        path = _config_arg(*monitor)
    else:
        bootstrap = Path(BOOTSTRAP_CONFIG).expanduser()
        path = bootstrap if bootstrap.is_file() else None
    if path is not None:
        try:
            return _read_config(path)
        except (OSError, ValueError, TypeError, AttributeError) as e:
            log.warning("wattsweep: could not read the autoscaler's node types from %s (%s)", path, e)
    return _from_gcs()


def _read_config(path: Path) -> NodeTypes:
    import yaml  # why here: only an autoscaling cluster needs it

    try:
        config = yaml.safe_load(path.read_text())  # why yaml: ray up writes YAML, AutoscalingCluster JSON
    except yaml.YAMLError as e:
        raise ValueError(str(e)) from None
    if not isinstance(config, Mapping):
        raise ValueError("not a mapping")
    return parse_cluster_config(config, str(path))


def _monitor(gcs_address: str | None) -> tuple[list[str], str] | None:
    """The command line and working directory of this cluster's autoscaler if it runs on this node, else None."""
    import ray  # noqa: F401  # why first: Ray's wheel vendors psutil and puts it on sys.path when imported

    # isort: split
    import psutil

    monitors = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = proc.info.get("cmdline") or []
        names = [os.path.basename(a) for a in cmdline]
        if "monitor.py" in names and (
            any("autoscaler" in a for a, n in zip(cmdline, names, strict=True) if n == "monitor.py")
            or _flag_values(cmdline, "--autoscaling-config")
        ):
            monitors.append((cmdline, proc.info.get("cwd") or "/"))
    if gcs_address is None:
        return monitors[0] if len(monitors) == 1 else None
    # why the port alone as a second choice: the host may be written differently (an IP, a name, localhost)
    port = gcs_address.rpartition(":")[2]
    for same in (lambda a: a == gcs_address, lambda a: a.rpartition(":")[2] == port):
        for monitor in monitors:
            if any(same(a) for a in _flag_values(monitor[0], "--gcs-address")):
                return monitor
    return None


def _flag_values(cmdline: Sequence[str], flag: str) -> list[str]:
    """The values of ``flag`` in a command line, written ``--flag=value`` or ``--flag value``."""
    values = [a[len(flag) + 1 :] for a in cmdline if a.startswith(flag + "=")]
    return values + [b for a, b in itertools.pairwise(cmdline) if a == flag]


def _config_arg(cmdline: Sequence[str], cwd: str) -> Path | None:
    """The ``--autoscaling-config`` of a command line run in ``cwd`` (``~`` expanded, as Ray's monitor does)."""
    values = [v for v in _flag_values(cmdline, "--autoscaling-config") if v]
    return Path(cwd) / Path(values[0]).expanduser() if values else None


def _from_gcs() -> NodeTypes | None:
    try:
        import ray._private.state

        config = ray._private.state.state.get_cluster_config()
        if config is None or not config.node_group_configs:
            return None
        types = tuple(
            NodeType(g.name, {k: float(v) for k, v in g.resources.items()}, None if g.max_count < 0 else g.max_count)
            for g in config.node_group_configs
        )
    except Exception as e:  # why broad: a private API; any failure means "unknown", never a failed sweep
        log.warning("wattsweep: could not read the autoscaler's node types from the GCS (%s)", e)
        return None
    return NodeTypes(types, None, "the autoscaler's cluster config in the GCS")
