"""The run recorder (Tune callback in the driver), beyond what the sweep tests see of it."""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WARM = textwrap.dedent(
    """
    import io, sys, tempfile, time
    from pathlib import Path
    from ray.tune.experiment import Trial
    from orchestrator.recorder import RunRecorder
    from rundir import RunWriter

    w = RunWriter(Path(tempfile.mkdtemp()))
    w.write_manifest({"name": "x"})
    rec = RunRecorder(w, num_samples=2, objectives=[("accuracy", "max"), ("energy_j", "min")], out=io.StringIO())
    t1, t2 = (Trial("__fake", config={"epochs": 1}, stub=True) for _ in range(2))
    rec.on_trial_start(0, [t1], t1)
    rec.on_trial_complete(0, [t1], t1)  # a trial ended, but the second is still to start in its slot
    time.sleep(1)
    print("early", "reports.build" in sys.modules)
    rec.on_trial_start(0, [t1, t2], t2)
    rec.on_trial_complete(0, [t1, t2], t2)  # every trial started: nothing left for this slot to run
    for _ in range(300):
        if "reports.build" in sys.modules and "matplotlib.figure" in sys.modules:
            break
        time.sleep(0.1)
    print("late", "reports.build" in sys.modules)
    """
)


def test_report_builder_is_imported_once_no_trial_is_left_to_start() -> None:
    # why a fresh process: the test session may have imported the report builder already
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", WARM], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["early", "False", "late", "True"]


def test_the_front_line_matches_the_front_of_every_complete_trial_as_trials_end(tmp_path: Path) -> None:
    """The recorder keeps the front as trials complete (not recomputed from all of them each time); a trial that
    fails after completing its budget leaves it. Each end line's "front so far" must be the whole set's front."""
    from ray.tune.experiment import Trial

    from orchestrator.recorder import RunRecorder
    from reports.pareto import pareto_front_mask
    from rundir import RunWriter

    w = RunWriter(tmp_path)
    w.write_manifest({"name": "x"})
    out = io.StringIO()
    n = 80
    rec = RunRecorder(w, num_samples=n, objectives=[("accuracy", "max"), ("energy_j", "min")], out=out)
    rng = random.Random(0)
    trials = [Trial("__fake", config={"epochs": 1}, stub=True) for _ in range(n)]
    complete: dict[str, tuple[float, float]] = {}
    drawn: list[tuple[float, float]] = []
    for i, t in enumerate(trials):
        rec.on_trial_start(0, trials, t)
        acc, energy = round(rng.uniform(0.5, 1.0), 3), round(rng.uniform(1.0, 100.0), 1)
        if i % 7 == 3:
            acc, energy = drawn[-1]  # a duplicate of a point: both are on the front or neither
        drawn.append((acc, energy))
        rec.on_trial_result(0, trials, t, {"epoch": 1, "budget_epochs": 1, "accuracy": acc, "energy_j": energy})
        if i % 9 == 8:  # failed after its last epoch: not complete, off the front
            rec.on_trial_error(0, trials, t)
        else:
            complete[t.trial_id] = (acc, energy)
            rec.on_trial_complete(0, trials, t)
        pts = list(complete.values())
        on = [p for p, keep in zip(pts, pareto_front_mask(pts, ["max", "min"]), strict=True) if keep]
        line = out.getvalue().strip().splitlines()[-1]
        expect = ", ".join(f"{a:.3f} @ {e:.1f} J" for a, e in sorted(on, key=lambda p: p[1])[:5])
        assert re.fullmatch(rf"\s*front so far: {len(on)} config\(s\): {re.escape(expect)}", line), (i, line)
