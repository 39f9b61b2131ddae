"""The run recorder (Tune callback in the driver), beyond what the sweep tests see of it."""

from __future__ import annotations

import os
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
