"""A node lost while Tune is starting a trial on it costs that trial nothing (``orchestrator.failures``).

A real two-node cluster; Tune reuses a finished trial's actor on the worker node for the next trial, and the
worker's raylet is killed while that actor is being reset. Without the policy Tune ends that trial in ERROR at once
(checked by hand, see docs/notes/2026-12-02c-issue16.md); with it the trial is retried elsewhere and completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.ray_nodes import cluster_env, ray_nodes, raylet_pids

ROOT = Path(__file__).resolve().parents[2]


def run_driver(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, policy: str) -> tuple[list[dict], str]:
    """Starts the cluster and the driver, kills the worker once the reset is under way; the driver's result."""
    worker_tmp = tmp_path_factory.mktemp("worker_node")
    sig = tmp_path / "resetting"
    with ray_nodes(tmp_path_factory.mktemp("head_node"), worker_tmp, worker_env={"WATTSWEEP_TEST_NODE": "worker"}) as (
        port,
        _,
    ):
        cmd = [sys.executable, "-m", "tests.fixtures.reset_on_lost_node", f"127.0.0.1:{port}", str(sig)]
        driver = subprocess.Popen(
            [*cmd, str(tmp_path / "tune"), policy],
            cwd=ROOT,
            env=cluster_env(PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.time() + 180
        while not sig.exists() and driver.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        killed = sig.exists()
        for pid in raylet_pids(worker_tmp):
            os.kill(pid, signal.SIGKILL)
        out, _ = driver.communicate(timeout=300)
    assert killed, f"the reused actor was never reset on the worker:\n{out[-3000:]}"
    lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
    assert lines, out[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT ")), out


@pytest.mark.slow
def test_trial_whose_reused_actor_dies_while_starting_is_retried(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    result, out = run_driver(tmp_path_factory, tmp_path, "policy")
    assert len(result) == 3, (result, out[-3000:])
    for r in result:
        assert r["error"] is None and r["steps"] == 3, (r, out[-3000:])
