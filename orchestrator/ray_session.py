"""The Ray cluster a sweep runs on: start a local one or join one, size the trial slots, stop it."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from rundir import RunWriter
from search_spaces import SpecError, SweepSpec

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class RunError(RuntimeError):
    """A sweep failed at run time (exit code 1)."""


class _TokenAuthNotice(logging.Filter):
    """Drops Ray's notice that token authentication is on (only that one; every other record passes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


_TOKEN_AUTH_NOTICE = _TokenAuthNotice()  # why one instance: addFilter ignores a filter it already has


def init_ray(address: str | None) -> None:
    """Join the cluster at ``address`` (auto, HOST:PORT, ray://...), or start a local one with a slot per core."""
    import ray

    # why: workers must import this project's packages even when it is not pip-installed
    paths = [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # why: checkpointing every epoch of second-long trials trips a warning meant for slow remote storage
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # why: the sweep picks Tune's loggers itself (sweep._tune_loggers); Tune would add TensorBoard's
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False, configure_logging=True
    )
    if address:
        ray.init(address=address, **kwargs)
    else:
        # why: a local cluster we start and stop ourselves; Ray's usage-stats reporter (a dashboard process
        # that phones home) is left out unless the user asked for it
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # why: Ray turns token authentication on for every new local cluster and says so at WARNING level on each
        # start, a line the user of a sweep cannot act on (wattsweep starts and stops the cluster); auth stays on
        logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_TOKEN_AUTH_NOTICE)
        # why: "local" always starts a new cluster; None would join one found in RAY_ADDRESS.
        # Prestarted workers are never used: Tune's trial actors carry a runtime env, so Ray starts
        # their workers anew; prestarting one idle Python per core only takes CPU from the sweep's start
        ray.init(
            address="local",
            num_cpus=os.cpu_count() or 1,
            _system_config={"prestart_worker_first_driver": False},
            **kwargs,
        )


def trial_resources(spec: SweepSpec) -> tuple[dict[str, float], int]:
    """Resources per trial (``cpu``, ``gpu`` and, with ``resources.accelerator_type``, Ray's
    ``accelerator_type:<model>``: the dict ``tune.with_resources`` takes) and how many trials can run at once.

    Sized from the nodes up now and from the node types the cluster's autoscaler may start, whichever holds more
    (``orchestrator.cluster_shape``): a CPU-less head with GPU workers from zero gets one GPU per trial and as many
    trials at once as the GPU workers can hold. SpecError (exit 2) where no node, up or startable, can run a trial
    as the spec asks: an accelerator model it has not, a GPU where it has none, more CPUs or GPUs than a node has.
    """
    import ray

    from orchestrator.cluster_shape import TrialRequest, discover_node_types, size_trials

    nodes_up = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    node_types = discover_node_types(ray.get_runtime_context().gcs_address)
    r = spec.resources
    sizing = size_trials(
        nodes_up, node_types, TrialRequest(r.cpu, r.gpu, r.accelerator_type), n_trials=spec.num_samples
    )
    return sizing.resources(), sizing.slots


def check_address(address: str | None, *, timeout_s: float = 10.0) -> None:
    """Refuse an unreachable host:port before Ray tries (Ray itself may wait minutes). SpecError."""
    if not address or address in ("auto", "local") or address.startswith("ray://"):
        target = address[len("ray://") :] if address and address.startswith("ray://") else None
        if not target:
            return
    else:
        target = address
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise SpecError("--address", address, "auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise SpecError("--address", address, f"a reachable Ray cluster address ({e})") from None


# glibc's mallopt parameter for the number of malloc arenas (malloc.h: M_ARENA_MAX)
_M_ARENA_MAX = -8
DRIVER_MALLOC_ARENAS = 2


def cap_malloc_arenas(arenas: int = DRIVER_MALLOC_ARENAS) -> bool:
    """Cap the malloc arenas of this process (the sweep's driver) at ``arenas``, before Ray starts its threads.

    why: glibc gives each new thread its own arena (up to 8 per core) and Ray's driver runs dozens of threads (gRPC,
    Tune's executor); memory freed in one arena is not reused by another, so a long sweep's driver grew by more
    than what it held. A user's ``MALLOC_ARENA_MAX`` wins. True where the cap was set (glibc only).
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # why: not glibc (musl has no mallopt)
        return False


def init_ray_or_exit(address: str | None, writer: RunWriter | None) -> None:
    """``init_ray``; a cluster that cannot be joined is a bad ``--address`` (SpecError), a local one that cannot
    start a RunError. ``writer``: the run (resume) to mark failed first."""
    cap_malloc_arenas()
    try:
        init_ray(address)
    except Exception as e:
        if writer is not None:
            writer.update_manifest(status="failed")
        if not address:
            raise RunError(f"could not start a local Ray cluster: {e}") from e
        raise SpecError("--address", address, f"a reachable Ray cluster ({e})") from None


def stop_ray(mirror: Any = None) -> None:
    """Shut Ray down; with remote storage, copy what the run has so far up (a warning if that fails)."""
    import ray

    ray.shutdown()
    if mirror is not None:
        mirror.push_or_warn()  # why: also when the sweep failed, the bucket shows how far it got


def stop_ray_and_report(run_dir: Path, mirror: Any = None) -> Path:
    """Build the report while Ray shuts down; with remote storage, then copy the run up. RunError if that fails.

    why in parallel: ``ray.shutdown`` mostly waits for Ray's processes to exit (~1.4 s on 2 cores), time in
    which the report (~1 s of CPU, plus ~0.5 s importing pandas and matplotlib) can be drawn; the report reads the
    run directory only, never Ray.
    """
    from concurrent.futures import ThreadPoolExecutor

    def build(run_dir: Path) -> Path:
        from reports import build_report  # why here: its import (pandas, matplotlib) also overlaps the shutdown

        return build_report(run_dir)

    with ThreadPoolExecutor(1, thread_name_prefix="wattsweep-report") as pool:
        future = pool.submit(build, run_dir)
        try:
            import ray

            ray.shutdown()
        finally:
            out = future.result()
    if mirror is not None:
        try:
            mirror.push()
        except OSError as e:
            where = mirror.remote.display_uri
            raise RunError(f"could not copy the run to {where} ({e}); it is complete in {run_dir}") from e
        print(f"wattsweep: run stored at {mirror.remote.display_uri}", flush=True)
    return out
