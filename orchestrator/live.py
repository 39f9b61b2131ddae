"""The sweep's progress in the terminal: a live panel on a terminal, plain lines anywhere else.

On a terminal (stdout a TTY, ``CI`` unset, ``TERM`` not ``dumb``) a small panel at the bottom is redrawn in
place: trials complete / stopped / failed / running / pending, each running trial's epoch, the energy spent
(labelled estimated when it is) and against the sweep's energy budget, the elapsed time, an estimate of what
remains, and the current Pareto front. The recorder's one line per finished trial scrolls above it. Anywhere
else (CI, ``ray job`` logs, a pipe) nothing is redrawn: after each finished trial's line one plain progress
line says the same in text. ``NO_COLOR`` turns the panel's bold off.

The rules are the run's own: a trial's end state is ``rundir.end_state`` and the front is
``reports.pareto.pareto_front_mask`` over the complete trials, as in the report.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from ray.tune import Callback
from ray.tune.experiment import Trial

from rundir import end_state
from trainables import metrics as M

REDRAW_EVERY_S = 0.5  # why: the clock and epochs move; more often only costs the driver's CPU
MAX_RUNNING_SHOWN = 8  # running trials listed by name; more are counted
MAX_FRONT_SHOWN = 5  # front points listed, cheapest first
_CLEAR = "\x1b[{n}F\x1b[J"  # up n lines to column 1, then clear to the end of the screen


def live_terminal(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """True when ``stream`` is a terminal a panel can be redrawn on (not CI, not ``TERM=dumb``)."""
    env = os.environ if environ is None else environ
    if env.get("CI", "").lower() not in ("", "0", "false", "no") or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def clock(seconds: float) -> str:
    """``seconds`` as m:ss or h:mm:ss."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class Progress:
    """What the panel shows, fed by the sweep's Tune events; the pure part of the live view."""

    num_samples: int
    objectives: Sequence[tuple[str, str]]
    budget_j: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    states: dict[str, str] = field(default_factory=dict)  # trial id -> running / complete / stopped / failed
    epoch: dict[str, int] = field(default_factory=dict)
    budget_epochs: dict[str, int] = field(default_factory=dict)
    energy_j: dict[str, float] = field(default_factory=dict)  # each trial's cumulative energy, latest report
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    estimated: bool = False

    def start(self, tid: str, budget: int) -> None:
        self.states[tid] = "running"
        self.budget_epochs.setdefault(tid, budget)

    def result(self, tid: str, result: dict[str, Any]) -> None:
        self.states.setdefault(tid, "running")
        self.epoch[tid] = max(self.epoch.get(tid, 0), int(result.get(M.EPOCH, 0)))
        if M.BUDGET_EPOCHS in result:
            self.budget_epochs[tid] = int(result[M.BUDGET_EPOCHS])
        if isinstance(result.get(M.ENERGY_J), int | float):
            self.energy_j[tid] = float(result[M.ENERGY_J])  # why latest, not summed: energy_j is cumulative
        self.estimated = self.estimated or bool(result.get(M.ENERGY_ESTIMATED))
        self.last[tid] = result

    def end(self, tid: str, *, error: bool) -> str:
        state = end_state(error=error, epochs_run=self.epoch.get(tid, 0), budget_epochs=self.budget_epochs.get(tid, 0))
        self.states[tid] = state
        return state

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)

    @property
    def spent_j(self) -> float:
        """The sweep's energy so far: every trial's latest cumulative energy_j, summed (the energy budget's sum)."""
        return sum(self.energy_j.values())

    def remaining_s(self, now: float) -> float | None:
        """Seconds left, estimated from the pace so far: trials done (running ones by their share of epochs) per
        second, over the trials still to do. None before anything is done. Early stopping makes it pessimistic."""
        running = [t for t, s in self.states.items() if s == "running"]
        done: float = len(self.states) - len(running)
        done += sum(min(1.0, self.epoch.get(t, 0) / max(1, self.budget_epochs.get(t, 0))) for t in running)
        elapsed = now - self.started_at
        if done <= 0 or elapsed <= 0:
            return None
        return elapsed / done * max(0.0, self.num_samples - done)

    def front(self) -> list[tuple[str, dict[str, Any]]]:
        """(trial id, last result) of the complete trials on the Pareto front, cheapest first."""
        from reports.pareto import pareto_front_mask  # why lazy: numpy and the report layer, only when drawn

        rows = [
            (t, self.last[t])
            for t, s in self.states.items()
            if s == "complete"
            and t in self.last
            and all(_finite(self.last[t].get(metric)) for metric, _ in self.objectives)
        ]
        if not rows:
            return []
        import numpy as np

        pts = np.array([[float(r[metric]) for metric, _ in self.objectives] for _, r in rows])
        mask = pareto_front_mask(pts, [d for _, d in self.objectives])
        on = [row for row, keep in zip(rows, mask, strict=True) if keep]
        return sorted(on, key=lambda row: float(row[1].get(M.ENERGY_J, math.inf)))


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _energy_text(p: Progress) -> str:
    text = f"{p.spent_j:.1f} J spent" + (" (estimated)" if p.estimated else "")
    if p.budget_j:
        text += f" of the {p.budget_j:g} J budget ({p.spent_j / p.budget_j:.0%})"
    return text


def _front_text(p: Progress) -> str:
    front = p.front()
    if not front:
        return "none yet (a trial is on it once it completes its budget)"
    names = [metric for metric, _ in p.objectives]
    acc = next((metric for metric, d in p.objectives if d == "max"), names[0])
    shown = ", ".join(
        f"{r.get(acc, float('nan')):.3f} @ {r.get(M.ENERGY_J, float('nan')):.1f} J" for _, r in front[:MAX_FRONT_SHOWN]
    )
    return f"{len(front)} config(s): {shown}" + (" ..." if len(front) > MAX_FRONT_SHOWN else "")


def _counts(p: Progress) -> str:
    pending = max(0, p.num_samples - len(p.states))
    return (
        f"{p.count('complete')} complete, {p.count('stopped')} stopped, {p.count('failed')} failed, "
        f"{p.count('running')} running, {pending} pending (of {p.num_samples})"
    )


def _time_text(p: Progress, now: float) -> str:
    left = p.remaining_s(now)
    return f"{clock(now - p.started_at)} elapsed" + ("" if left is None else f", ~{clock(left)} left (estimate)")


def panel_lines(p: Progress, now: float) -> list[str]:
    """The live panel, one string per line (no colour, no width limit)."""
    running = sorted(t for t, s in p.states.items() if s == "running")
    epochs = [f"{t} epoch {p.epoch.get(t, 0)}/{p.budget_epochs.get(t, '?')}" for t in running[:MAX_RUNNING_SHOWN]]
    if len(running) > MAX_RUNNING_SHOWN:
        epochs.append(f"+{len(running) - MAX_RUNNING_SHOWN} more")
    return [
        f"trials   {_counts(p)}",
        f"running  {', '.join(epochs) if epochs else '-'}",
        f"energy   {_energy_text(p)}",
        f"time     {_time_text(p, now)}",
        f"front    {_front_text(p)}",
    ]


def progress_line(p: Progress, now: float) -> str:
    """The plain fallback's one line after each finished trial."""
    return f"    progress: {_counts(p)}; {_energy_text(p)}; {_time_text(p, now)}"


class _Above:
    """A text stream whose lines are printed above the live panel (the recorder's per-trial lines)."""

    def __init__(self, view: LiveView) -> None:
        self.view = view
        self._buf = ""

    def write(self, text: str) -> int:
        self._buf += text
        if "\n" in self._buf:
            lines, self._buf = self._buf.rsplit("\n", 1)
            self.view.print_above(lines + "\n")
        return len(text)

    def flush(self) -> None:
        pass


class LiveView(Callback):
    """The sweep's progress display (a Tune callback in the driver): live panel or plain lines, see the module.

    ``above``: hand it to the recorder as its ``out``, so its lines go above the panel.
    """

    def __init__(
        self,
        *,
        num_samples: int,
        objectives: Sequence[tuple[str, str]],
        budget_j: float | None = None,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self.progress = Progress(num_samples, list(objectives), budget_j)
        self._setup(stream, live)

    def _setup(self, stream: TextIO | None, live: bool | None) -> None:
        self.stream = stream or sys.stdout
        self.live = live_terminal(self.stream) if live is None else live
        self.bold = self.live and "NO_COLOR" not in os.environ
        self.above = cast(TextIO, _Above(self))  # why cast: print() needs only write and flush
        self._lock = threading.Lock()
        self._drawn = 0  # lines of the panel now on screen
        self._drawn_at = 0.0

    # why: Tune pickles its callbacks into the run (tuner.pkl); a stream and a lock do not pickle
    def __getstate__(self) -> dict[str, Any]:
        return {"progress": self.progress}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.progress = state["progress"]
        self.progress.started_at = time.monotonic()  # why: a resumed sweep's clock starts again
        self._setup(None, None)

    # drawing ---------------------------------------------------------------------
    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(_CLEAR.format(n=self._drawn))
            self._drawn = 0

    def _draw(self) -> None:
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        # why cut to the width: a wrapped line would make the next clear miss a line
        lines = [line[:width] for line in panel_lines(self.progress, time.monotonic())]
        if self.bold:  # the label column
            lines = [f"\x1b[1m{line[:9]}\x1b[0m{line[9:]}" for line in lines]
        self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)
        self._drawn_at = time.monotonic()

    def redraw(self, *, force: bool = False) -> None:
        """Redraw the panel (live only), at most every REDRAW_EVERY_S unless ``force``."""
        if not self.live or (not force and time.monotonic() - self._drawn_at < REDRAW_EVERY_S):
            return
        with self._lock:
            self._clear()
            self._draw()

    def print_above(self, text: str) -> None:
        """Print ``text`` (whole lines) above the panel; plain mode prints it as it is."""
        with self._lock:
            if self.live:
                self._clear()
            self.stream.write(text)
            if self.live:
                self._draw()
            else:
                self.stream.flush()

    # Tune hooks -------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.progress.start(trial.trial_id, int(trial.config.get("epochs", 0)))
        self.redraw(force=True)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        self.progress.result(trial.trial_id, result)
        self.redraw()

    def _ended(self, trial: Trial, *, error: bool) -> None:
        self.progress.end(trial.trial_id, error=error)
        if self.live:
            self.redraw(force=True)
        else:
            self.print_above(progress_line(self.progress, time.monotonic()) + "\n")

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._ended(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._ended(trial, error=True)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self.redraw()  # why: the clock moves between results

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.redraw(force=True)  # the final state stays on screen
