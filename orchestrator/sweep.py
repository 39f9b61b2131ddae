"""Build and run the Ray Tune sweep described by a SweepSpec."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import platform
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reports.rundir import TUNE_DIR, RunWriter, is_run_dir
from search_spaces import SpecError, SweepSpec
from trainables.config import ConfigError, DatasetConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class RunError(RuntimeError):
    """A sweep failed at run time (exit code 1)."""


def check_storage(storage: Path | str, name: str) -> Path:
    """The run directory, after checking it can be written and is not already a run. SpecError otherwise.

    For remote storage (a URI: s3://, gs://, file://) it is the local staging directory of ``<storage>/<name>``,
    after a write probe of the URI.
    """
    from orchestrator.storage import is_uri, new_run_target

    if is_uri(storage):
        return new_run_target(str(storage), name)[0]
    storage = Path(storage)
    run_dir = storage / name
    if is_run_dir(run_dir):
        raise SpecError("--name", name, f"a name not used under {str(storage)!r} (pick another --name)")
    try:
        storage.mkdir(parents=True, exist_ok=True)
        probe = storage / f".wattsweep-write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise SpecError("--storage", str(storage), f"a directory this user can write ({e.strerror})") from None
    return run_dir


def _git_rev() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "ray", "optuna", "nvidia-ml-py", "torch-pruning"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def manifest(spec: SweepSpec, run_dir: Path) -> dict[str, Any]:
    """What the run directory records about the sweep (config, seed, versions, git revision)."""
    return {
        "name": spec.name,
        "spec_path": spec.source,
        "spec": dict(spec.raw),
        "description": spec.description,
        "dataset": spec.dataset.to_dict(),
        "objectives": [asdict(o) for o in spec.objectives],
        "num_samples": spec.num_samples,
        "max_epochs": spec.max_epochs,
        "sampler": asdict(spec.sampler),
        "status": "running",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "finished_at": None,
        "git_rev": _git_rev(),
        "versions": _versions(),
        "host": {"hostname": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "carbon": {k: v for k, v in (("grid_g_per_kwh", spec.energy.grid_g_per_kwh), ("pue", spec.energy.pue)) if v},
        "command": sys.argv,
    }


def _init_ray(address: str | None) -> None:
    import ray

    # why: workers must import this project's packages even when it is not pip-installed
    paths = [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # why: checkpointing every epoch of second-long trials trips a warning meant for slow remote storage
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False, configure_logging=True
    )
    if address:
        ray.init(address=address, **kwargs)
    else:
        # why: a local cluster we start and stop ourselves; Ray's usage-stats reporter (a dashboard process
        # that phones home) is left out unless the user asked for it
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # why: "local" always starts a new cluster; None would join one found in RAY_ADDRESS.
        # Prestarted workers are never used: Tune's trial actors carry a runtime env, so Ray starts
        # their workers anew; prestarting one idle Python per core only takes CPU from the sweep's start
        ray.init(
            address="local",
            num_cpus=os.cpu_count() or 1,
            _system_config={"prestart_worker_first_driver": False},
            **kwargs,
        )


def _trial_resources(spec: SweepSpec) -> tuple[dict[str, float], int]:
    """Resources per trial and how many trials can run at once on this cluster."""
    import ray

    total = ray.cluster_resources()
    gpus = float(total.get("GPU", 0.0))
    gpu = (1.0 if gpus >= 1 else 0.0) if spec.resources.gpu == "auto" else float(spec.resources.gpu)
    res = {"cpu": spec.resources.cpu, "gpu": gpu}
    slots = int(total.get("CPU", 1) // spec.resources.cpu)
    if gpu > 0:
        slots = min(slots, int(gpus // gpu))
    return res, max(1, slots)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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


def _init_ray_or_exit(address: str | None, writer: RunWriter | None) -> None:
    try:
        _init_ray(address)
    except Exception as e:
        if writer is not None:
            writer.update_manifest(status="failed")
        if not address:
            raise RunError(f"could not start a local Ray cluster: {e}") from e
        raise SpecError("--address", address, f"a reachable Ray cluster ({e})") from None


def run_sweep(spec: SweepSpec, *, storage: Path | str, address: str | None = None) -> Path:
    """Run the sweep; write <storage>/<name>/ and its report. Returns the (local) report directory.

    ``storage`` may be a URI (s3://, gs://, file://): the run is staged locally and mirrored there.
    """
    from orchestrator.storage import Mirror, is_uri, new_run_target

    mirror = None
    if is_uri(storage):
        run_dir, remote = new_run_target(str(storage), spec.name)
        mirror = Mirror(run_dir, remote)
    else:
        run_dir = check_storage(Path(storage), spec.name).resolve()
    prefetch = _Prefetch(spec)
    _init_ray_or_exit(address, None)  # why: an unreachable cluster must leave nothing behind
    writer = RunWriter(run_dir)
    m = manifest(spec, run_dir)
    if mirror is not None:
        # why: resume downloads into this same directory, which Tune's pickled state (Optuna, recorder) names
        m["storage"] = {"uri": mirror.remote.uri, "local_dir": str(run_dir)}
    writer.write_manifest(m)
    ended = False
    try:
        _fit(spec, run_dir, writer, mirror=mirror, splits=prefetch.splits())
        writer.update_manifest(status="finished", finished_at=_now())
        ended = True
    except KeyboardInterrupt:
        writer.update_manifest(status="interrupted")
        print("interrupted: writing the report of the trials so far", flush=True)
        ended = True
    finally:
        if not ended:
            _stop_ray(mirror)
    return _stop_ray_and_report(run_dir, mirror)


def _stop_ray(mirror: Any = None) -> None:
    import ray

    ray.shutdown()
    if mirror is not None:
        mirror.push_or_warn()  # why: also when the sweep failed, the bucket shows how far it got


def _stop_ray_and_report(run_dir: Path, mirror: Any = None) -> Path:
    """Build the report while Ray shuts down; with remote storage, then copy the run up. RunError if that fails.

    why in parallel: ``ray.shutdown`` mostly waits for Ray's processes to exit (~1.4 s on 2 cores), time in
    which the report (~1 s of CPU) can be drawn; the report reads the run directory only, never Ray.
    """
    from concurrent.futures import ThreadPoolExecutor

    from reports import build_report

    with ThreadPoolExecutor(1, thread_name_prefix="wattsweep-report") as pool:
        future = pool.submit(build_report, run_dir)
        try:
            import ray

            ray.shutdown()
        finally:
            out = future.result()
    if mirror is not None:
        try:
            mirror.push()
        except OSError as e:
            raise RunError(f"could not copy the run to {mirror.remote.uri} ({e}); it is complete in {run_dir}") from e
        print(f"wattsweep: run stored at {mirror.remote.uri}", flush=True)
    return out


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _idle_baseline(spec: SweepSpec) -> dict[str, float]:
    """Idle power of this node's GPUs (and CPU package where RAPL is readable), W; {} where nothing is measurable."""
    from trainables.energy import measure_idle_power

    if spec.energy.idle_baseline_s <= 0:
        return {}
    return measure_idle_power(seconds=spec.energy.idle_baseline_s)


class _Prefetch:
    """Loads the dataset in a thread while Ray starts (``ray.init`` mostly waits on the processes it spawns).

    why: loaded once here and shipped to every trial through Ray's object store, instead of once per
    worker process; on a cluster the worker nodes then need no dataset files. (Importing Tune and Optuna
    here too was measured slower: the imports hold the GIL that ``ray.init`` needs.)
    """

    def __init__(self, spec: SweepSpec) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from trainables.data import load_arrays

        pool = ThreadPoolExecutor(1, thread_name_prefix="wattsweep-prefetch")
        self._future = pool.submit(load_arrays, DatasetConfig.from_mapping(spec.dataset.to_dict()))
        pool.shutdown(wait=False)  # why: the thread ends with its one task; nothing waits for it here

    def splits(self) -> Any:
        """The loaded ``trainables.data.SplitArrays``; RunError if the dataset could not be loaded."""
        try:
            return self._future.result()
        except ConfigError as e:
            raise RunError(f"could not load the dataset: {e}") from e


def _trainable(
    spec: SweepSpec, resources: dict[str, float], idle_power_w: dict[str, float] | None = None, splits: Any = None
) -> Any:
    from ray import tune

    from trainables.ray_trainable import tune_trainable

    options = {
        "max_epochs": spec.max_epochs,
        "num_threads": max(1, int(spec.resources.cpu)),
        "watts_per_core": spec.energy.watts_per_core,
        "idle_power_w": idle_power_w or None,
    }
    return tune.with_resources(
        tune.with_parameters(tune_trainable, dataset=spec.dataset.to_dict(), options=options, splits=splits),
        resources,
    )


def _fit(spec: SweepSpec, run_dir: Path, writer: RunWriter, *, mirror: Any = None, splits: Any = None) -> None:
    from ray import tune

    from orchestrator.budget import EnergyBudget
    from orchestrator.recorder import RunRecorder
    from orchestrator.search import make_scheduler, make_search
    from orchestrator.storage import MirrorCallback
    from orchestrator.tblogger import ScalarTBXLoggerCallback

    resources, slots = _trial_resources(spec)
    idle = _idle_baseline(spec)
    # why: the report's bill counts idle slot time; the idle baseline makes dynamic_energy_j
    writer.update_manifest(slots=slots, resources=resources, idle_power_w=idle)
    recorder = RunRecorder(
        writer, num_samples=spec.num_samples, objectives=[(o.metric, o.direction) for o in spec.objectives]
    )
    print(
        f"wattsweep: {spec.num_samples} trials of {spec.name!r}, {slots} at a time "
        f"({resources['cpu']:g} CPU, {resources['gpu']:g} GPU each); run dir {run_dir}",
        flush=True,
    )
    search, scheduler = make_search(spec, run_dir), make_scheduler(spec)
    budget = None
    if spec.energy.budget_j:
        budget = EnergyBudget(spec.energy.budget_j, getattr(scheduler, "milestones", ()))
        search.budget = budget
    tuner = tune.Tuner(
        _trainable(spec, resources, idle, splits),
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=scheduler,
            num_samples=spec.num_samples,
            max_concurrent_trials=slots,
            trial_dirname_creator=_trial_dirname,
            # why: without it every trial is a new actor, i.e. a new worker process that imports torch, loads
            # the data and warms up the FLOPs counter again (~5 s on 2 busy cores, as long as a short trial);
            # a reused actor keeps all of that (every trial of a sweep asks for the same resources)
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            # why: on remote storage Tune writes checkpoints straight to <uri>/<name>/tune from every node
            storage_path=mirror.remote.uri if mirror is not None else str(run_dir),
            callbacks=[recorder, ScalarTBXLoggerCallback()] + ([MirrorCallback(mirror)] if mirror is not None else []),
            stop=budget,
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )
    tuner.fit()


def load_run_spec(run_dir: Path, *, tune_remote: bool = False) -> SweepSpec:
    """The spec a run was started with (CLI overrides applied), from its manifest. SpecError if not a run.

    ``tune_remote``: Tune's directory is on remote storage (checked there), not under ``run_dir``.
    """
    from reports.rundir import MANIFEST
    from search_spaces import parse_spec

    if not is_run_dir(run_dir) or not (tune_remote or (run_dir / TUNE_DIR / "tuner.pkl").is_file()):
        raise SpecError("RUN_DIR", str(run_dir), "a wattsweep run directory (with wattsweep.json and tune/tuner.pkl)")
    m = json.loads((run_dir / MANIFEST).read_text())
    spec = parse_spec(m["spec"], source=m.get("spec_path") or str(run_dir))
    return spec.with_overrides(
        name=m["name"], num_samples=m["num_samples"], max_epochs=m.get("max_epochs"), seed=m["sampler"]["seed"]
    )


def resume_sweep(run_dir: Path | str, *, address: str | None = None) -> Path:
    """Continue a sweep whose driver died: finished trials are kept, unfinished ones resume from checkpoints.

    ``run_dir`` may be the run's URI on remote storage (s3://BUCKET/PREFIX/NAME): it is downloaded first.
    """
    from ray import tune

    from orchestrator.storage import fetch_run, is_uri

    mirror = None
    if is_uri(run_dir):
        run_dir, mirror = fetch_run(str(run_dir))
        tune_path = mirror.remote.child(TUNE_DIR).uri
    else:
        run_dir = Path(run_dir).resolve()
        tune_path = str(run_dir / TUNE_DIR)
    spec = load_run_spec(run_dir, tune_remote=mirror is not None)
    writer = RunWriter(run_dir)
    prefetch = _Prefetch(spec)
    _init_ray_or_exit(address, writer)
    try:
        resources, _ = _trial_resources(spec)
        idle = json.loads((run_dir / "wattsweep.json").read_text()).get("idle_power_w") or {}
        print(f"wattsweep: resuming {spec.name!r} from {run_dir}", flush=True)
        writer.update_manifest(status="running")
        tuner = tune.Tuner.restore(
            tune_path,
            _trainable(spec, resources, idle, prefetch.splits()),
            resume_unfinished=True,
            resume_errored=False,
        )
        tuner.fit()
        writer.update_manifest(status="finished", finished_at=_now())
    except BaseException:
        _stop_ray(mirror)
        raise
    return _stop_ray_and_report(run_dir, mirror)
