"""Two trials share one GPU (``resources: {gpu: 0.5}``) on a real Ray cluster: each joule is billed once.

The cluster is a real one-node Ray (`ray start --head --num-gpus=1`); the GPU is the fake NVML of
``tests/fixtures/fake_nvml`` (the real pynvml's API and errors, a device whose energy counter every process reads
alike: 150 W of wall clock), put first on the workers' PYTHONPATH. The trials run concurrently in two worker
processes; what they are billed for the GPU must add up to what the device used while they were on it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.ray_nodes import free_port, kill_processes

ROOT = Path(__file__).resolve().parents[2]
FAKE_NVML = ROOT / "tests" / "fixtures" / "fake_nvml"
RAY = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
WATTS = 150.0
SPEC = """
name: gpu_share
trainable: tests.fixtures.busy_trainable:train
fixed: {seconds: 1.0, epochs: 3}
space:
  x: {kind: uniform, low: 0.0, high: 1.0}
objectives:
  - {metric: accuracy, direction: max}
  - {metric: energy_j, direction: min}
sampler: {kind: random, seed: 0}
resources: {cpu: 1, gpu: 0.5}
num_samples: 2
"""


def _env(ledger: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(FAKE_NVML), str(ROOT)])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["FAKE_NVML_WATTS"] = str(WATTS)
    env["WATTSWEEP_LEDGER_DIR"] = str(ledger)
    env["RAY_AUTH_MODE"], env["RAY_AUTH_TOKEN"] = "token", secrets.token_hex(32)  # as cluster.yaml sets it up
    return env


@pytest.fixture()
def gpu_node(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    # why a short temp dir: Ray's socket paths live under it, and a Unix socket path has at most 107 characters
    port, temp = free_port(), tempfile.mkdtemp(prefix="ws-gpu-")
    env = _env(tmp_path / "ledger")
    head = [RAY, "start", "--head", "--num-cpus=2", "--num-gpus=1", f"--port={port}", f"--temp-dir={temp}"]
    head += ["--include-dashboard=false", "--disable-usage-stats"]
    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        kill_processes(f":{port}", f"={port}", temp)
        shutil.rmtree(temp, ignore_errors=True)


def test_two_trials_on_one_gpu_add_up_to_the_devices_energy(
    gpu_node: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = gpu_node
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(spec), "--address", address]
    cmd += ["--storage", str(tmp_path / "runs"), "--name", "g"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 at a time (1 CPU, 0.5 GPU each)" in r.stdout

    finals = []
    for epochs in sorted((tmp_path / "runs" / "g" / "trials").glob("*/epochs.jsonl")):
        lines = [json.loads(line) for line in epochs.read_text().splitlines()]
        assert len(lines) == 3
        finals.append(lines[-1])
    assert len(finals) == 2
    for f in finals:
        assert (f["energy_attribution"], f["gpu_model"], f["energy_gpu_source"]) == (
            "shared:time",
            "NVIDIA A10G",
            "nvml-counter",
        )
        # the host CPU beside the GPU is estimated here (no RAPL): recorded, not added to the measured figure
        assert f["energy_cpu_source"] == "estimated-cpu" and f["energy_j"] == pytest.approx(f["energy_gpu_j"])
    windows = [(p["window_start_unix"], p["window_end_unix"]) for p in (_gpu_part(f) for f in finals)]
    (a0, a1), (b0, b1) = windows
    assert a0 < b1 and b0 < a1, f"the trials did not overlap: {windows}"
    device_j = WATTS * (max(a1, b1) - min(a0, b0))  # what the fake device used while either trial was on it
    billed_j = sum(f["energy_gpu_j"] for f in finals)
    # each trial alone would have billed about its whole window (>= 3 s x 150 W); together they bill the device once
    assert billed_j == pytest.approx(device_j, rel=0.03), (billed_j, device_j, windows)


def _gpu_part(final: dict) -> dict:
    """The GPU meter's own provenance: its window is the time the trial was on the device's ledger."""
    return next(p for p in final["energy_provenance"]["parts"] if p["backend"] == "nvml")
