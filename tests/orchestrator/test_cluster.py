"""A real two-node Ray cluster on one machine: `ray start --head` plus a second `ray start`.

A sweep submitted with `ray job submit` runs trials on both nodes; then the worker
node's processes are killed mid-sweep, and the sweep still ends with every trial
complete and every epoch reported (trials retried from their checkpoints on the head).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.ray_nodes import free_port, kill_processes

ROOT = Path(__file__).resolve().parents[2]
RAY = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
EPOCHS = 6
SPEC = f"""
name: cluster_spec
dataset: {{name: digits}}
fixed: {{model: resnet, depth: 8, width: 8, epochs: {EPOCHS}, prune_every: 2}}
space:
  lr: {{kind: loguniform, low: 1.0e-3, high: 1.0e-2, default: 3.0e-3}}
sampler: {{kind: random, seed: 0}}
num_samples: 4
"""


TOKEN = secrets.token_hex(32)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # why: token authentication on every node and client, as cluster.yaml sets it up
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = TOKEN
    return env


def _stop_cluster(port: int, dash: int, *temp_dirs: str) -> None:
    """Kill only this cluster's processes (`ray stop` would kill every Ray on the machine)."""
    kill_processes(f":{port}", f"={port}", f":{dash}", f"={dash}", *temp_dirs)


@pytest.fixture()
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, str]]:
    port, dash = free_port(), free_port()
    head_tmp, worker_tmp = str(tmp_path_factory.mktemp("head_node")), str(tmp_path_factory.mktemp("worker_node"))
    env = _env()
    head = [
        RAY,
        "start",
        "--head",
        "--num-cpus=1",
        '--resources={"node_head": 1}',
        f"--port={port}",
        f"--dashboard-port={dash}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--temp-dir={head_tmp}",
    ]
    # why: two nodes on one machine need their own agent ports (the default 52365 would clash)
    # why: ... and their own temp dir, as on separate machines (a dying node cleans up its session files)
    worker = [
        RAY,
        "start",
        f"--address=127.0.0.1:{port}",
        "--num-cpus=1",
        '--resources={"node_worker": 1}',
        f"--dashboard-agent-listen-port={free_port()}",
        f"--temp-dir={worker_tmp}",
    ]
    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=120)
        subprocess.run(worker, env=env, check=True, capture_output=True, timeout=120)
        yield port, dash, worker_tmp
    finally:
        _stop_cluster(port, dash, head_tmp, worker_tmp)


def _submit(cmd: list[str]) -> str:
    """Submit (retrying while the dashboard's job agent is still starting); returns the job id."""
    deadline = time.time() + 120
    while True:
        r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
        found = re.search(r"raysubmit_\w+", r.stdout + r.stderr)
        if r.returncode == 0 and found:
            return found.group(0)
        if time.time() > deadline:
            raise AssertionError(f"job submission failed: {r.stdout[-2000:]}{r.stderr[-2000:]}")
        time.sleep(2)


def _worker_raylet_pids(worker_tmp: str) -> list[int]:
    """The worker node's raylet: the one whose session lives in the worker node's temp dir."""
    out = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "/raylet" in line and worker_tmp in line]


def _epochs(run_dir: Path) -> dict[str, list[dict]]:
    out = {}
    for f in (run_dir / "trials").glob("*/epochs.jsonl"):
        with contextlib.suppress(OSError, json.JSONDecodeError):
            out[f.parent.name] = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    return out


def test_job_submit_runs_on_both_nodes_and_survives_losing_one(cluster: tuple[int, int, str], tmp_path: Path) -> None:
    _, dash, worker_tmp = cluster
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    storage = tmp_path / "runs"
    run_dir = storage / "cl"
    address = ["--address", f"http://127.0.0.1:{dash}"]
    submit = [
        RAY,
        "job",
        "submit",
        *address,
        "--no-wait",
        "--working-dir",
        str(ROOT),
        "--runtime-env-json",
        json.dumps({"excludes": [".git", "runs"]}),
        "--",
        "python",
        "-m",
        "orchestrator",
        "sweep",
        str(spec),
        "--address",
        "auto",
        "--storage",
        str(storage),
        "--name",
        "cl",
    ]
    job_id = _submit(submit)
    # wait until both nodes have run an epoch, then kill the worker node's raylet (its trials die with it)
    deadline, killed = time.time() + 400, False
    while time.time() < deadline and not (run_dir / "report").exists():
        epochs = _epochs(run_dir)
        nodes = {e.get("node_id") for rows in epochs.values() for e in rows} - {None}
        worker_pids = _worker_raylet_pids(worker_tmp)
        if len(nodes) >= 2 and worker_pids:
            for pid in worker_pids:
                os.kill(pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.2)
    out = subprocess.run(
        [RAY, "job", "logs", *address, "--follow", job_id], env=_env(), capture_output=True, text=True, timeout=600
    ).stdout
    status = subprocess.run([RAY, "job", "status", *address, job_id], env=_env(), capture_output=True, text=True)
    assert "succeeded" in status.stdout.lower(), out[-4000:] + status.stdout
    assert killed, f"never saw trials on both nodes before the sweep ended: {out[-2000:]}"
    assert (run_dir / "report" / "index.html").is_file()

    epochs = _epochs(run_dir)
    assert len(epochs) == 4
    assert len({e["node_id"] for rows in epochs.values() for e in rows}) == 2  # trials ran on both nodes
    for tid, rows in epochs.items():
        assert [e["epoch"] for e in rows] == list(range(1, EPOCHS + 1)), tid  # every epoch, once
        state = json.loads((run_dir / "trials" / tid / "state.json").read_text())
        assert state["state"] == "complete", (tid, state)
