"""A real Ray cluster of three nodes on one machine: `ray start --head` plus two worker `ray start`s.

A sweep submitted with `ray job submit` (MO-ASHA, reused actors) runs trials on every node; the first worker's
raylet is killed as soon as it has run an epoch, the second's later, once the sweep is half done. The sweep still
ends with no trial failed and every epoch reported once (trials retried from their checkpoints on a live node: a
lost node costs epochs, never trials, whether a trial was running or being started on it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.ray_nodes import RAY, cluster_env, node_id, ray_nodes, raylet_pids

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 6
TRIALS = 8
SPEC = f"""
name: cluster_spec
dataset: {{name: digits}}
fixed: {{model: resnet, depth: 8, width: 8, epochs: {EPOCHS}, prune_every: 2}}
space:
  lr: {{kind: loguniform, low: 1.0e-3, high: 1.0e-2, default: 3.0e-3}}
sampler: {{kind: random, seed: 0}}
scheduler: {{kind: moasha, grace_period: 2, reduction_factor: 2}}
num_samples: {TRIALS}
"""


@pytest.fixture()
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, list[Path]]]:
    """(dashboard port, the worker nodes' temp dirs)."""
    workers = [tmp_path_factory.mktemp("worker_node") for _ in range(2)]
    with ray_nodes(tmp_path_factory.mktemp("head_node"), *workers) as (_, dash):
        yield dash, workers


def _submit(cmd: list[str]) -> str:
    """Submit (retrying while the dashboard's job agent is still starting); returns the job id."""
    deadline = time.time() + 120
    while True:
        r = subprocess.run(cmd, env=cluster_env(), capture_output=True, text=True, timeout=120)
        found = re.search(r"raysubmit_\w+", r.stdout + r.stderr)
        if r.returncode == 0 and found:
            return found.group(0)
        if time.time() > deadline:
            raise AssertionError(f"job submission failed: {r.stdout[-2000:]}{r.stderr[-2000:]}")
        time.sleep(2)


def _epochs(run_dir: Path) -> dict[str, list[dict]]:
    out = {}
    for f in (run_dir / "trials").glob("*/epochs.jsonl"):
        with contextlib.suppress(OSError, json.JSONDecodeError):
            out[f.parent.name] = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    return out


def test_job_submit_survives_losing_nodes_at_two_points(cluster: tuple[int, list[Path]], tmp_path: Path) -> None:
    dash, workers = cluster
    ids = [node_id(w) for w in workers]
    assert all(ids), ids
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
    # kill the first worker's raylet as soon as it has run an epoch (its trials die with it, and the actors Tune
    # keeps there for reuse), the second's once the sweep has reported half its first-rung epochs and it has run two
    deadline, killed = time.time() + 500, []
    while time.time() < deadline and len(killed) < 2 and not (run_dir / "report").exists():
        rows = [e for trial in _epochs(run_dir).values() for e in trial]
        on = Counter(e.get("node_id") for e in rows)
        first, second = workers
        if not killed and on[ids[0]] >= 1:
            killed.append((first, len(rows)))
        elif len(killed) == 1 and on[ids[1]] >= 2 and len(rows) >= TRIALS:
            killed.append((second, len(rows)))
        else:
            time.sleep(0.2)
            continue
        for pid in raylet_pids(killed[-1][0]):
            os.kill(pid, signal.SIGKILL)
    env = cluster_env()
    out = subprocess.run(
        [RAY, "job", "logs", *address, "--follow", job_id], env=env, capture_output=True, text=True, timeout=600
    ).stdout
    status = subprocess.run([RAY, "job", "status", *address, job_id], env=env, capture_output=True, text=True)
    assert "succeeded" in status.stdout.lower(), out[-4000:] + status.stdout
    assert len(killed) == 2, f"the sweep ended before both workers were lost (killed at {killed}): {out[-2000:]}"
    assert (run_dir / "report" / "index.html").is_file()

    epochs = _epochs(run_dir)
    assert len(epochs) == TRIALS, sorted(epochs)  # every trial started and reported, none lost to a dying node
    assert set(ids) <= {e["node_id"] for rows in epochs.values() for e in rows}  # trials ran on both workers
    for tid, rows in epochs.items():
        state = json.loads((run_dir / "trials" / tid / "state.json").read_text())
        # a lost node costs epochs (redone from the last checkpoint), never the trial: none failed
        assert state["state"] in ("complete", "stopped"), (tid, state)
        assert [e["epoch"] for e in rows] == list(range(1, len(rows) + 1)), tid  # every epoch it reached, once
        assert state["state"] == "stopped" or len(rows) == EPOCHS, (tid, state)
