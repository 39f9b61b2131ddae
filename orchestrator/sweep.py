"""Build and run the Ray Tune sweep described by a SweepSpec."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from orchestrator.manifest import manifest, now
from orchestrator.ray_session import (
    RunError,
    check_address,
    init_ray_or_exit,
    stop_ray,
    stop_ray_and_report,
    trial_resources,
)
from orchestrator.tune_driver import lean_tune_driver
from rundir import MANIFEST, REPORT_DIR, TUNE_DIR, RunWriter, is_run_dir
from rundir.trust import is_mine, mark_as_mine
from rundir.writer import RunLock, RunLockedError
from search_spaces import SpecError, SweepSpec
from trainables.config import ConfigError, TrialConfig
from trainables.contract import TrialPlan

__all__ = ["RunError", "check_address", "check_data", "check_storage", "load_run_spec", "resume_sweep", "run_sweep"]


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


def check_data(spec: SweepSpec) -> None:
    """Fail fast (SpecError naming the path or column) when the spec's dataset cannot be loaded."""
    from trainables.data import check_dataset

    if spec.dataset is None:
        return  # why: a custom trainable without a spec dataset loads its own data
    try:
        check_dataset(spec.dataset)
    except ConfigError as e:
        raise SpecError(e.field, e.value, e.allowed) from None


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
    _check_integrations(spec)
    prefetch = _Prefetch(spec)
    init_ray_or_exit(address, None)  # why: an unreachable cluster must leave nothing behind
    try:
        # why before the manifest: a size no node can hold (SpecError, exit 2) must leave nothing behind either
        sized = trial_resources(spec)
    except BaseException:
        stop_ray(mirror)
        raise
    writer = RunWriter(run_dir)
    lock = _lock_or_exit(run_dir, mirror)
    m = manifest(spec, run_dir)
    if mirror is not None:
        # why: resume downloads into this same directory, which Tune's pickled state (Optuna, recorder) names
        m = m.with_changes(storage={"uri": mirror.remote.display_uri, "local_dir": str(run_dir)})
    writer.write_manifest(m)
    mark_as_mine(run_dir, m.to_dict())  # why: resume unpickles this run's state; it must know the run is ours
    try:
        _fit(spec, run_dir, writer, sized, mirror=mirror, splits=prefetch.splits())
        writer.update_manifest(status="finished", finished_at=now())
    except KeyboardInterrupt:
        writer.update_manifest(status="interrupted")
        print("interrupted: writing the report of the trials so far", flush=True)
    except BaseException:
        writer.update_manifest(status="failed")  # why: a run must never say "running" after its driver ended
        stop_ray(mirror)
        lock.release()
        raise
    try:
        return stop_ray_and_report(run_dir, mirror)
    finally:
        lock.release()


def _check_integrations(spec: SweepSpec) -> None:
    """Before Ray starts (exit 2, nothing written): the trackers asked for are installed, and the Optuna storage
    URL opens and holds no study of this name yet."""
    from orchestrator.trackers import check_trackers

    check_trackers(spec)
    if spec.optuna_storage:
        from orchestrator.optuna_study import open_storage

        open_storage(spec.optuna_storage, spec.name)


def _lock_or_exit(run_dir: Path, mirror: Any = None) -> RunLock:
    """This driver's lock on the run directory; a second driver on it is a bad RUN_DIR (exit 2)."""
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except RunLockedError as e:
        stop_ray(mirror)
        raise SpecError("RUN_DIR", str(run_dir), f"a run no other driver is running ({e})") from None
    return lock


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

        self._future = None
        if spec.dataset is None:
            return  # why: a custom trainable without a spec dataset loads its own data
        pool = ThreadPoolExecutor(1, thread_name_prefix="wattsweep-prefetch")
        self._future = pool.submit(load_arrays, spec.dataset)
        pool.shutdown(wait=False)  # why: the thread ends with its one task; nothing waits for it here

    def splits(self) -> Any:
        """The loaded ``trainables.data.SplitArrays`` (None without a dataset); RunError if it could not load."""
        if self._future is None:
            return None
        try:
            return self._future.result()
        except ConfigError as e:
            raise RunError(f"could not load the dataset: {e}") from e


def trial_plan(
    spec: SweepSpec, idle_power_w: dict[str, float] | None = None, resources: dict[str, float] | None = None
) -> TrialPlan:
    """The one typed plan every trial of this sweep runs by, decided here once (shipped unchanged to workers).

    ``resources``: what each trial gets (``trial_resources``); its GPU share reaches the meter.
    """
    return TrialPlan(
        trainable=spec.trainable,
        objectives=tuple((o.metric, o.direction) for o in spec.objectives),
        dataset=spec.dataset,
        max_epochs=spec.max_epochs,
        default_epochs=TrialConfig.epochs if spec.is_builtin else None,
        seed=spec.sampler.seed,
        num_threads=max(1, int(spec.resources.cpu)),
        watts_per_core=spec.energy.watts_per_core,
        idle_power_w=dict(idle_power_w or {}),
        idle_host=socket.gethostname(),  # why always: a node that found nothing to measure is still measured
        idle_baseline_s=spec.energy.idle_baseline_s,
        sweep_key=spec.name,
        gpus_per_trial=float((resources or {}).get("gpu", 0.0)),
    )


def _trainable(
    spec: SweepSpec, resources: dict[str, float], idle_power_w: dict[str, float] | None = None, splits: Any = None
) -> Any:
    from ray import tune

    from trainables.ray_trainable import tune_trainable

    plan = trial_plan(spec, idle_power_w, resources)
    return tune.with_resources(tune.with_parameters(tune_trainable, plan=plan, splits=splits), resources)


def _tune_loggers(spec: SweepSpec) -> list[Any]:
    """Tune's per-trial result logs (result.json, progress.csv: what Tune's ExperimentAnalysis reads), and
    TensorBoard event files only when the spec asks (``tensorboard: true`` / ``--tensorboard``).

    why not TensorBoard by default: the run directory and the report already hold every number, and
    tensorboardX imports torch into the driver (~1.3 s of CPU on 2 cores, before the first trial can start);
    ``init_ray`` sets TUNE_DISABLE_AUTO_CALLBACK_LOGGERS so that Tune does not add it on its own.
    """
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    loggers: list[Any] = [CSVLoggerCallback(), JsonLoggerCallback()]
    if spec.tensorboard:
        from orchestrator.tblogger import ScalarTBXLoggerCallback

        loggers.append(ScalarTBXLoggerCallback())
    return loggers


def _fit(
    spec: SweepSpec,
    run_dir: Path,
    writer: RunWriter,
    sized: tuple[dict[str, float], int],
    *,
    mirror: Any = None,
    splits: Any = None,
) -> None:
    from ray import tune

    from orchestrator.budget import EnergyBudget
    from orchestrator.failures import USER_RETRIES, NodeLossIsFree
    from orchestrator.limiter import follow_cluster
    from orchestrator.live import LiveView
    from orchestrator.recorder import RunRecorder
    from orchestrator.search import make_scheduler, make_search
    from orchestrator.storage import MirrorCallback
    from orchestrator.trackers import tracker_callbacks

    resources, slots = sized
    idle = _idle_baseline(spec)
    # why: the report's bill counts idle slot time; the idle baseline makes dynamic_energy_j
    writer.update_manifest(slots=slots, resources=resources, idle_power_w=idle)
    # why before the recorder: on a terminal the recorder's lines go above the live panel (orchestrator.live)
    live = LiveView(
        num_samples=spec.num_samples,
        objectives=[(o.metric, o.direction) for o in spec.objectives],
        budget_j=spec.energy.budget_j,
    )
    recorder = RunRecorder(
        writer,
        num_samples=spec.num_samples,
        objectives=[(o.metric, o.direction) for o in spec.objectives],
        full_config=spec.full_config,
        out=live.above,
    )
    print(
        f"wattsweep: {spec.num_samples} trials of {spec.name!r}, {slots} at a time "
        f"({resources['cpu']:g} CPU, {resources['gpu']:g} GPU each); run dir {run_dir}",
        flush=True,
    )
    shape = (splits.input_shape, splits.num_classes) if splits is not None else None
    search, scheduler = make_search(spec, run_dir, shape), make_scheduler(spec)
    budget = None
    if spec.energy.budget_j:
        budget = EnergyBudget(spec.energy.budget_j, getattr(scheduler, "milestones", ()))
        search.budget = budget
    tuner = tune.Tuner(
        _trainable(spec, resources, idle, splits),
        tune_config=tune.TuneConfig(
            # why not max_concurrent_trials: that is fixed at the start; this follows nodes that join or leave
            search_alg=follow_cluster(search, spec, slots),
            scheduler=scheduler,
            num_samples=spec.num_samples,
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
            callbacks=[recorder, live, NodeLossIsFree(), *_tune_loggers(spec), *tracker_callbacks(spec, run_dir)]
            + ([MirrorCallback(mirror)] if mirror is not None else []),
            stop=budget,
            # why USER_RETRIES with NodeLossIsFree: a trial's own failures count, its node's do not
            failure_config=tune.FailureConfig(max_failures=USER_RETRIES),
            # why num_to_keep=1, no score attribute: Tune keeps each trial's latest checkpoint, for a complete trial its
            # last epoch's, which holds final_model.pt (what `export` reads); a stopped trial keeps nothing extra.
            # tests/export pins it (test_a_complete_trial_keeps_its_final_state_a_stopped_one_nothing_extra)
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )
    with lean_tune_driver(o.metric for o in spec.objectives):
        tuner.fit()


def load_run_spec(run_dir: Path, *, tune_remote: bool = False) -> SweepSpec:
    """The spec a run was started with (CLI overrides applied), from its manifest. SpecError if not a run.

    ``tune_remote``: Tune's directory is on remote storage (checked there), not under ``run_dir``.
    """
    from rundir.manifest import RunManifest
    from search_spaces import parse_spec

    if not is_run_dir(run_dir) or not (tune_remote or (run_dir / TUNE_DIR / "tuner.pkl").is_file()):
        raise SpecError("RUN_DIR", str(run_dir), "a wattsweep run directory (with wattsweep.json and tune/tuner.pkl)")
    try:
        m = RunManifest.from_dict(json.loads((run_dir / MANIFEST).read_text()))
    except (OSError, ValueError) as e:
        raise SpecError("RUN_DIR", str(run_dir), f"a run whose {MANIFEST} can be read ({e})") from None
    spec = parse_spec(m.spec, source=str(m.facts.get("spec_path") or run_dir))
    # why every override: the resumed sweep runs by the settings the first driver used (energy budget, TensorBoard)
    return spec.with_overrides(**m.overrides)


def resume_sweep(run_dir: Path | str, *, address: str | None = None, trust: bool = False) -> Path:
    """Continue a sweep whose driver died: finished trials are kept, unfinished ones resume from checkpoints.

    ``run_dir`` may be the run's URI on remote storage (s3://BUCKET/PREFIX/NAME): it is downloaded first.
    ``trust``: resume a run this user did not create here (``rundir.trust``: resuming unpickles its state).
    """
    from ray import tune

    from orchestrator.relocate import repoint_saved_search, resuming_at
    from orchestrator.storage import fetch_run, is_uri

    mirror = None
    if is_uri(run_dir):
        run_dir, mirror = fetch_run(str(run_dir))
        tune_path = mirror.remote.child(TUNE_DIR).uri
    else:
        run_dir = Path(run_dir).resolve()
        tune_path = str(run_dir / TUNE_DIR)
    spec = load_run_spec(run_dir, tune_remote=mirror is not None)
    from orchestrator.trackers import check_trackers

    check_trackers(spec)  # why: Tune unpickles the run's tracker callbacks; a missing tracker must be exit 2, named
    if not trust and not is_mine(run_dir, json.loads((run_dir / MANIFEST).read_text())):
        raise SpecError(
            "RUN_DIR",
            str(run_dir),
            "a run this user created on this machine (resume unpickles Tune's saved state, which can run code); "
            "add --trust to resume one you trust from elsewhere",
        )
    lock = _lock_or_exit(run_dir)
    status = json.loads((run_dir / MANIFEST).read_text()).get("status")
    if status == "finished":
        # why: resuming a finished run must change nothing (not its finished_at, nor the bill's wall time)
        lock.release()
        print(f"wattsweep: {spec.name!r} already finished; nothing to resume (report: {run_dir / REPORT_DIR})")
        return run_dir / REPORT_DIR
    writer = RunWriter(run_dir)
    prefetch = _Prefetch(spec)
    try:
        init_ray_or_exit(address, writer)
    except BaseException:
        lock.release()
        raise
    try:
        resources, _ = trial_resources(spec)
        idle = json.loads((run_dir / MANIFEST).read_text()).get("idle_power_w") or {}
        print(f"wattsweep: resuming {spec.name!r} from {run_dir}", flush=True)
        writer.update_manifest(status="running")
        if mirror is None:
            repoint_saved_search(run_dir / TUNE_DIR, run_dir)
        with resuming_at(run_dir):  # why: what Tune restores must write here, wherever the run was first written
            tuner = tune.Tuner.restore(
                tune_path,
                _trainable(spec, resources, idle, prefetch.splits()),
                resume_unfinished=True,
                resume_errored=False,
            )
            with lean_tune_driver(o.metric for o in spec.objectives):
                tuner.fit()
        writer.update_manifest(status="finished", finished_at=now())
    except KeyboardInterrupt:
        writer.update_manifest(status="interrupted")
        print("interrupted: writing the report of the trials so far", flush=True)
    except BaseException:
        writer.update_manifest(status="failed")  # why: a run must never say "running" after its driver ended
        stop_ray(mirror)
        lock.release()
        raise
    try:
        return stop_ray_and_report(run_dir, mirror)
    finally:
        lock.release()
