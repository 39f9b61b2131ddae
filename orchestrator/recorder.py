"""A Tune callback in the driver that writes the run directory and prints progress."""

from __future__ import annotations

import math
import posixpath
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import pyarrow.fs
from ray.tune import Callback
from ray.tune.experiment import Trial

from rundir import RunWriter, end_state
from trainables import metrics as M

ORPHANED = "orphaned: started just before the driver died, after Tune's last snapshot; never resumed"
CHECKPOINT_PREFIX = "checkpoint_"  # Tune's name for a trial's checkpoint directories: checkpoint_000012
# Keys Tune adds to every result (ray.tune.result's auto-filled keys and bookkeeping): not the trial's metrics.
# why a list here: Tune has no public "user metrics only" view of a result; anything else the trial reported
# (the contract's metrics and the user's own) is recorded.
_TUNE_KEYS = frozenset(
    {
        "config", "date", "done", "experiment_id", "experiment_tag", "hostname", "iterations_since_restore",
        "node_ip", "pid", "should_checkpoint", "time_since_restore", "time_this_iter_s", "time_total_s",
        "timestamp", "timesteps_since_restore", "timesteps_total", "training_iteration", "trial_id",
        "episodes_total", "checkpoint_dir_name",
    }
)  # fmt: skip


def _trial_metrics(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in _TUNE_KEYS}


class RunRecorder(Callback):
    """Writes every trial's config, epochs and end state; prints one line per finished trial.

    why: the report reads this plain format without Ray, also for unfinished runs,
    and it lives in the driver so it works the same on a cluster.
    """

    def __init__(
        self,
        writer: RunWriter,
        *,
        num_samples: int,
        objectives: list[tuple[str, str]],
        full_config: Callable[[Mapping[str, Any]], dict[str, Any]] = dict,
        out: TextIO | None = None,
    ) -> None:
        self.writer = writer
        self.full_config = full_config  # a trial's config as recorded (SweepSpec.full_config)
        self.num_samples = num_samples
        self.objectives = objectives
        self.out = out
        self._last_epoch: dict[str, int] = {}
        self._budget: dict[str, int] = {}
        # why summaries (_summary), not results: kept for every trial of the sweep and pickled into Tune's
        # snapshots; the run directory holds the whole results
        self._finished: dict[str, dict[str, Any]] = {}  # complete trials' final summaries, for the front
        self._last: dict[str, dict[str, Any]] = {}  # running trials' last summaries, for their end line
        self._ended_ids: set[str] = set()
        # why kept: the front of _finished, updated as trials complete (front(S + x) = front(front(S) + x)), so
        # that each trial's end line costs O(front), not O(trials) (a sweep of n trials: O(n^2) before)
        self._front_rows: list[dict[str, Any]] | None = None
        self._source_seen = False
        self._loaded = False
        self._report_warmed = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        # why: Tune unpickles the recorder on resume with the first driver's path; the run may have moved since
        self.__dict__.update(state)
        self.__dict__.setdefault("_front_rows", None)  # why: a snapshot written before the front was kept
        from orchestrator.relocate import current

        here = current()
        if here is not None:
            self.writer = RunWriter(here)

    def _ensure_loaded(self, trials: list[Trial]) -> None:
        """Pick up what an earlier driver of this run wrote (resume), once.

        A trial recorded as running that Tune does not know (``trials``) was started just before the
        earlier driver died, after Tune's last snapshot of the experiment: Tune will never end it, and
        the searcher has already closed it (``HonestOptunaSearch.restore``), so it is recorded as failed.
        """
        if self._loaded:
            return
        self._loaded = True
        from rundir import read_run

        for trial in trials:
            if trial.status == Trial.PENDING:
                _repoint_lost_checkpoint(trial)
        known = {t.trial_id for t in trials}
        for t in read_run(self.writer.run_dir).trials:
            if t.state == "running" and t.trial_id not in known:
                t.state = "failed"
                self.writer.set_state(
                    t.trial_id,
                    "failed",
                    epochs_run=len(t.epochs),
                    budget_epochs=t.budget_epochs or 0,
                    error=ORPHANED,
                )
            last = max((int(e.get(M.EPOCH, 0)) for e in t.epochs), default=0)
            self._last_epoch[t.trial_id] = last
            if t.budget_epochs:
                self._budget[t.trial_id] = t.budget_epochs
            if t.state in ("complete", "stopped", "failed"):
                self._ended_ids.add(t.trial_id)
            if t.state == "complete" and t.epochs:
                self._finish(t.trial_id, self._summary(t.final))

    # Tune hooks -----------------------------------------------------------------
    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        # why: the first step of a resumed sweep sees exactly the trials Tune restored from its snapshot,
        # before it asks the searcher for new ones or restores any trial from its checkpoint
        self._ensure_loaded(trials)

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._ensure_loaded(trials)
        budget = int(trial.config.get("epochs", 0))
        self._budget.setdefault(trial.trial_id, budget)
        # why: record every trial key (defaults included), so report columns are never blank
        self.writer.start_trial(trial.trial_id, self.full_config(trial.config), budget)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        self._ensure_loaded(trials)
        epoch = int(result.get(M.EPOCH, 0))
        tid = trial.trial_id
        if epoch <= self._last_epoch.get(tid, 0):
            return  # why: a trial retried from its checkpoint may repeat an epoch already written
        self._last_epoch[tid] = epoch
        self._budget[tid] = int(result.get(M.BUDGET_EPOCHS, self._budget.get(tid, 0)))
        self.writer.append_epoch(tid, _trial_metrics(result))
        self._last[tid] = self._summary(result)
        self.writer.set_state(tid, "running", epochs_run=epoch, budget_epochs=self._budget[tid])
        if not self._source_seen and M.ENERGY_SOURCE in result:
            self._source_seen = True
            self.writer.update_manifest(
                energy_source=result[M.ENERGY_SOURCE], energy_estimated=bool(result.get(M.ENERGY_ESTIMATED))
            )
        if epoch >= self._budget[tid]:
            self._finish(tid, self._last[tid])

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._ensure_loaded(trials)
        tid = trial.trial_id
        epochs_run, budget = self._last_epoch.get(tid, 0), self._budget.get(tid, 0)
        state = end_state(error=False, epochs_run=epochs_run, budget_epochs=budget)
        self.writer.set_state(tid, state, epochs_run=epochs_run, budget_epochs=budget)
        self._print_end(trial, state)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._ensure_loaded(trials)
        tid = trial.trial_id
        error = _error_text(trial)
        self.writer.set_state(
            tid, "failed", epochs_run=self._last_epoch.get(tid, 0), budget_epochs=self._budget.get(tid, 0), error=error
        )
        if self._finished.pop(tid, None) is not None:
            self._front_rows = None  # why: a front member may have left; computed again when next read
        self._print_end(trial, "failed", error.splitlines()[-1] if error else "")

    # progress -------------------------------------------------------------------
    def _print_end(self, trial: Trial, state: str, why: str = "") -> None:
        self._ended_ids.add(trial.trial_id)  # why: a set, so a trial re-ended after a resume counts once
        last = self._last.pop(trial.trial_id, None) or self._finished.get(trial.trial_id) or {}
        head = f"[{len(self._ended_ids)}/{self.num_samples}] trial {trial.trial_id} {state}"
        if last:
            est = " (estimated)" if last.get(M.ENERGY_ESTIMATED) else ""
            head += (
                f" after {last.get(M.EPOCH)}/{last.get(M.BUDGET_EPOCHS)} epochs: "
                f"accuracy {last.get(M.ACCURACY, float('nan')):.3f}, energy {last.get(M.ENERGY_J, 0):.1f} J{est}"
            )
        if why:
            head += f"; {why[:160]}"
        print(head, file=self.out or sys.stdout, flush=True)
        front = self._front()
        if front:
            best = ", ".join(
                f"{f[M.ACCURACY]:.3f} @ {f[M.ENERGY_J]:.1f} J" for f in sorted(front, key=lambda r: r[M.ENERGY_J])[:5]
            )
            print(f"    front so far: {len(front)} config(s): {best}", file=self.out or sys.stdout, flush=True)
        if len(self._budget) >= self.num_samples:
            self._warm_report_imports()

    def _warm_report_imports(self) -> None:
        """Import the report's builder (pandas, matplotlib, ~0.5 s of CPU) in a thread, once.

        why: called when a trial ends and every trial has been started, i.e. when a trial slot has nothing left to
        run; the sweep's report needs the import right after the last trial, where it would add to the wall time.
        """
        if self._report_warmed:
            return
        self._report_warmed = True
        import threading

        def warm() -> None:
            import reports.build  # noqa: F401

        threading.Thread(target=warm, name="wattsweep-report-import", daemon=True).start()

    def _summary(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """What the end lines and the front read of a result: the objectives, accuracy, energy, epochs."""
        keys = [*(m for m, _ in self.objectives), M.EPOCH, M.BUDGET_EPOCHS, M.ACCURACY, M.ENERGY_J, M.ENERGY_ESTIMATED]
        return {k: metrics[k] for k in keys if k in metrics}

    def _finish(self, tid: str, summary: dict[str, Any]) -> None:
        """``summary`` is trial ``tid``'s final one (it completed its budget)."""
        if tid in self._finished:
            self._front_rows = None  # why: a replaced summary may have been on the front
        self._finished[tid] = summary
        if self._front_rows is not None:
            self._front_rows = self._front_of([*self._front_rows, summary])

    def _front(self) -> list[dict[str, Any]]:
        if self._front_rows is None:
            self._front_rows = self._front_of(list(self._finished.values()))
        return self._front_rows

    def _front_of(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from reports.pareto import pareto_front_mask  # why: lazy; the report layer owns the Pareto code

        rows = [
            r
            for r in rows
            if all(isinstance(r.get(m), (int, float)) and math.isfinite(r[m]) for m, _ in self.objectives)
        ]
        if not rows:
            return []
        import numpy as np

        pts = np.array([[float(r[m]) for m, _ in self.objectives] for r in rows])
        mask = pareto_front_mask(pts, [d for _, d in self.objectives])
        return [r for r, keep in zip(rows, mask, strict=True) if keep]


def _repoint_lost_checkpoint(trial: Trial) -> str | None:
    """Point a restored trial whose recorded checkpoint is gone at the next one Tune kept. Returns its path.

    why: with ``num_to_keep`` Tune deletes a trial's previous checkpoint the moment it registers a new one,
    but writes the experiment snapshot that names the new one only later (at the end of the step, copied
    asynchronously, and skipped while an earlier copy still runs). A driver killed in between leaves a
    snapshot naming a deleted checkpoint, and Tune fails that trial on resume ("does not exist on storage
    anymore") after all its retries. The oldest surviving newer checkpoint is the one whose registration
    deleted it: a registered one, so complete (a newer one may be half-written by the killed worker). The
    run directory already holds its epochs (the recorder writes an epoch before Tune registers its
    checkpoint), so resuming there re-runs nothing and skips nothing.
    """
    manager = trial.run_metadata.checkpoint_manager
    lost = manager.latest_checkpoint_result if manager is not None else None
    if manager is None or lost is None or lost.checkpoint is None or lost.checkpoint.filesystem is None:
        return None
    fs, path = lost.checkpoint.filesystem, lost.checkpoint.path
    if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        return None
    parent, name = posixpath.split(path)
    index = _checkpoint_index(name)
    if index is None:
        return None
    kept = [
        (_checkpoint_index(info.base_name), info.path)
        for info in fs.get_file_info(pyarrow.fs.FileSelector(parent, allow_not_found=True))
        if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith(CHECKPOINT_PREFIX)
    ]
    newer = sorted((i, p) for i, p in kept if i is not None and i > index)
    if not newer:
        return None  # why: nothing to resume from; Tune fails the trial and says why
    found_index, found_path = newer[0]
    metrics = dict(lost.metrics)
    if isinstance(metrics.get("training_iteration"), int):
        # why: every report of our trainable carries a checkpoint, so indices count reports
        metrics["training_iteration"] += found_index - index
    found = type(lost)(checkpoint=type(lost.checkpoint)(found_path, filesystem=fs), metrics=metrics)
    # why: register_checkpoint() would try to delete the lost one and raise; swap it in place instead
    manager._checkpoint_results = [found if r is lost else r for r in manager._checkpoint_results]
    manager._latest_checkpoint_result = found
    return found_path


def _checkpoint_index(name: str) -> int | None:
    tail = name[len(CHECKPOINT_PREFIX) :] if name.startswith(CHECKPOINT_PREFIX) else ""
    return int(tail) if tail.isdigit() else None


def _error_text(trial: Trial) -> str:
    path = getattr(trial, "error_file", None)
    try:
        if path:
            with open(path) as f:
                return f.read()[-4000:]
    except OSError:
        pass
    return str(getattr(trial, "error_msg", "") or "trial failed")
