"""The sweep's live view: a panel redrawn in place on a terminal, plain lines anywhere else.

The live panel is checked on a real pseudo-terminal (``os.openpty``): the bytes that reach it are replayed on a
small screen model that knows the panel's only control sequences, and the screen must end with the recorder's
lines above exactly one panel. One real sweep runs on a pseudo-terminal; the rest feeds the view Tune's own
``Trial`` objects and results shaped like the trainable contract's.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ray.tune.experiment import Trial

from orchestrator.live import LiveView, Progress, clock, live_terminal, panel_lines, progress_line
from orchestrator.recorder import RunRecorder
from rundir import RunWriter

ROOT = Path(__file__).resolve().parents[2]
OBJECTIVES = [("accuracy", "max"), ("energy_j", "min")]
_SEQ = re.compile(r"\x1b\[(\d*)([A-Za-z])")


def screen(raw: str) -> list[str]:
    """The terminal's lines after ``raw``: text, newlines, carriage returns, 'n lines up' (F) and 'clear below' (J);
    colour (m) is dropped. Anything else the panel should never send fails the test."""
    lines, row, col, i = [""], 0, 0, 0
    while i < len(raw):
        ch = raw[i]
        seq = _SEQ.match(raw, i)
        if seq:
            n, op = int(seq.group(1) or 1), seq.group(2)
            if op == "F":
                row, col = max(0, row - n), 0
            elif op == "J":
                del lines[row + 1 :]
                lines[row] = lines[row][:col]
            else:
                assert op == "m", f"unexpected control sequence {seq.group(0)!r}"
            i = seq.end()
            continue
        if ch == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif ch == "\r":
            col = 0
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + ch + line[col + 1 :]
            col += 1
        i += 1
    return lines


def result(epoch: int, acc: float, energy: float, budget: int = 3) -> dict[str, Any]:
    """One epoch's result as Tune hands it to callbacks: the contract's metrics plus Tune's own keys."""
    return {
        "epoch": epoch,
        "accuracy": acc,
        "test_accuracy": acc - 0.01,
        "energy_j": energy,
        "energy_source": "estimated-cpu",
        "energy_estimated": True,
        "time_s": 0.5 * epoch,
        "budget_epochs": budget,
        "training_iteration": epoch,
        "time_total_s": 0.5 * epoch,
        "done": False,
    }


def trial(tid: str, epochs: int = 3) -> Trial:
    return Trial("__fake", config={"epochs": epochs}, trial_id=tid, stub=True)


def feed(view: LiveView, rec: RunRecorder | None = None) -> None:
    """Four trials: two complete (one dominated), one stopped after an epoch (more accurate: never on the front),
    one failed; a fifth still running at epoch 2."""
    plan = [
        ("a", [(0.80, 10.0), (0.90, 20.0), (0.95, 30.0)], "complete"),
        ("b", [(0.70, 5.0), (0.80, 10.0), (0.85, 15.0)], "complete"),
        ("c", [(0.60, 20.0), (0.70, 40.0), (0.80, 60.0)], "complete"),  # dominated by a
        ("s", [(0.99, 1.0)], "complete"),  # ended by the scheduler after 1 of 3 epochs: stopped
        ("f", [(0.50, 2.0)], "error"),
        ("r", [(0.40, 3.0), (0.50, 6.0)], None),
    ]
    trials = [trial(t) for t, _, _ in plan]
    callbacks = [c for c in (rec, view) if c is not None]
    for t, (_, epochs, end) in zip(trials, plan, strict=True):
        for c in callbacks:
            c.on_trial_start(0, trials, t)
        for e, (acc, j) in enumerate(epochs, 1):
            for c in callbacks:
                c.on_trial_result(0, trials, t, result(e, acc, j))
        if end == "complete":
            for c in callbacks:
                c.on_trial_complete(0, trials, t)
        elif end == "error":
            for c in callbacks:
                c.on_trial_error(0, trials, t)
    for c in callbacks:
        c.on_step_end(0, trials)


def test_panel_says_what_the_sweep_stands_at() -> None:
    p = Progress(8, OBJECTIVES, budget_j=500.0, started_at=100.0)
    view = LiveView(num_samples=8, objectives=OBJECTIVES, budget_j=500.0, stream=io.StringIO(), live=False)
    view.progress = p
    feed(view)
    lines = panel_lines(p, now=130.0)
    assert lines[0] == "trials   3 complete, 1 stopped, 1 failed, 1 running, 2 pending (of 8)"
    assert lines[1] == "running  r epoch 2/3"
    # every trial's latest cumulative energy: 30 + 15 + 60 + 1 + 2 + 6
    assert lines[2] == "energy   114.0 J spent (estimated) of the 500 J budget (23%)"
    # 5 ended + 2/3 of r = 5.67 done in 30 s; 2.33 to go: ~12 s
    assert lines[3] == "time     0:30 elapsed, ~0:12 left (estimate)"
    # the front: a and b (c is dominated; s stopped, f failed: never on it), cheapest first
    assert lines[4] == "front    2 config(s): 0.850 @ 15.0 J, 0.950 @ 30.0 J"


def test_measured_energy_is_not_called_estimated_and_no_budget_no_share() -> None:
    p = Progress(2, OBJECTIVES)
    p.start("a", 3)
    p.result("a", result(1, 0.5, 4.0) | {"energy_estimated": False, "energy_source": "nvml-counter"})
    lines = panel_lines(p, now=p.started_at + 1)
    assert lines[2] == "energy   4.0 J spent"
    assert lines[4].startswith("front    none yet")


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, True), ({"CI": "true"}, False), ({"CI": "false"}, True), ({"TERM": "dumb"}, False)],
)
def test_live_only_on_a_terminal_outside_ci(env: dict[str, str], expected: bool) -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(os.dup(slave), "w") as tty:
            assert live_terminal(tty, env) is expected
        r, w = os.pipe()
        with os.fdopen(w, "w") as pipe:
            assert live_terminal(pipe, env) is False
        os.close(r)
    finally:
        os.close(master)
        os.close(slave)


def test_plain_lines_when_not_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with open(out, "w") as stream:
        view = LiveView(num_samples=8, objectives=OBJECTIVES, stream=stream)
        assert not view.live
        writer = RunWriter(tmp_path / "run")
        writer.write_manifest({"name": "x"})
        rec = RunRecorder(writer, num_samples=8, objectives=OBJECTIVES, out=view.above)
        feed(view, rec)
    text = out.read_text()
    assert "\x1b" not in text
    lines = text.splitlines()
    # each finished trial: the recorder's line, then one progress line
    ends = [i for i, line in enumerate(lines) if re.match(r"\[\d/8\] trial ", line)]
    assert len(ends) == 5
    for i in ends:
        following = lines[i + 1 : i + 3]
        assert any(line.startswith("    progress: ") for line in following)
    assert lines[-1].startswith("    progress: 3 complete, 1 stopped, 1 failed, 0 running")
    assert "(estimated)" in lines[-1]


def _read_all(fd: int, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> str:
    chunks, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not data:
                break
            chunks.append(data)
        elif proc is not None and proc.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", "replace")


def test_live_panel_on_a_pseudo_terminal_keeps_one_panel_below_the_trial_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # why: the view reads CI and TERM (CI=true turns it off: .ci/run sets it); this test is about a user's terminal
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    master, slave = os.openpty()
    try:
        tty = os.fdopen(os.dup(slave), "w", buffering=1)
        view = LiveView(num_samples=8, objectives=OBJECTIVES, budget_j=500.0, stream=tty)
        assert view.live  # decided from the stream itself
        writer = RunWriter(tmp_path / "run")
        writer.write_manifest({"name": "x"})
        rec = RunRecorder(writer, num_samples=8, objectives=OBJECTIVES, out=view.above)
        tty.write("wattsweep: 8 trials\n")
        feed(view, rec)
        view.on_experiment_end([])
        tty.close()
        raw = _read_all(master, None, 5)
    finally:
        os.close(master)
        os.close(slave)
    assert "\x1b[5F\x1b[J" in raw  # the panel was redrawn in place
    shown = [line.rstrip() for line in screen(raw) if line.strip()]
    assert shown[0] == "wattsweep: 8 trials"
    panel = shown[-5:]
    assert [line[:9] for line in panel] == ["trials   ", "running  ", "energy   ", "time     ", "front    "]
    assert panel[0] == "trials   3 complete, 1 stopped, 1 failed, 1 running, 2 pending (of 8)"
    assert sum(1 for line in shown if line.startswith("trials   ")) == 1  # one panel, not a trail of them
    assert sum(1 for line in shown if re.match(r"\[\d/8\] trial ", line)) == 5  # the trial lines stay above
    assert not any(line.startswith("    progress:") for line in shown)  # the panel replaces the plain lines


def test_live_view_survives_tunes_pickling() -> None:
    # why: Tune pickles its callbacks into the run (tuner.pkl); resume unpickles them
    view = LiveView(num_samples=3, objectives=OBJECTIVES, live=False)
    feed(view)
    back = pickle.loads(pickle.dumps(view))
    assert back.progress.states == view.progress.states
    assert back.stream is sys.stdout


def test_clock() -> None:
    assert [clock(s) for s in (0, 59.6, 61, 3600 + 62)] == ["0:00", "1:00", "1:01", "1:01:02"]
    assert progress_line(Progress(1, OBJECTIVES, started_at=0.0), 0.0).startswith("    progress: 0 complete")


SPEC = """
name: live_spec
dataset: {name: digits}
fixed: {model: resnet, depth: 8, width: 8, epochs: 2, optimizer: adam, lr_decay: none, batch_size: 64}
space:
  lr: {kind: loguniform, low: 1.0e-3, high: 1.0e-2, default: 3.0e-3}
sampler: {kind: random, seed: 3}
num_samples: 3
"""


@pytest.mark.slow
def test_real_sweep_on_a_pseudo_terminal_shows_the_live_panel(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
    env |= {"PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(spec), "--storage", str(tmp_path / "runs")]
    # why its own session: a sweep left behind by a failed test is ended as a group, Ray's processes with it
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        raw = _read_all(master, proc, 300)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        os.close(master)
    assert rc == 0, raw[-3000:]
    assert "\x1b[5F\x1b[J" in raw
    assert "\x1b[1mtrials   \x1b[0m" in raw  # bold labels: NO_COLOR unset
    plain = re.sub(r"\x1b\[\d*m", "", raw)
    assert re.search(r"running  \S+ epoch [12]/2", plain)  # a running trial's epoch, seen while it ran
    shown = [line.rstrip() for line in screen(raw) if line.strip()]
    assert sum(1 for line in shown if line.startswith("trials   ")) == 1
    panel = next(i for i, line in enumerate(shown) if line.startswith("trials   "))
    assert shown[panel] == "trials   3 complete, 0 stopped, 0 failed, 0 running, 0 pending (of 3)"
    assert re.match(r"energy   [\d.]+ J spent( \(estimated\))?$", shown[panel + 2])
    assert re.match(r"front    \d config\(s\): ", shown[panel + 4])
    assert sum(1 for line in shown if re.match(r"\[\d/3\] trial ", line)) == 3
    assert any("report/index.html" in line for line in shown[panel:])  # the report's path, after the panel
