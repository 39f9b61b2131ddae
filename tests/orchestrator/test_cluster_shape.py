"""Sizing trials from what the cluster can become (``orchestrator.cluster_shape``).

Unit tests of the pure decision and of the discovery adapter (no Ray), then one real sweep on Ray's fake
multi-node autoscaler: a head with ``CPU: 0`` and a GPU worker type from zero, as ``cluster.yaml`` ships, where
the sweep must ask for one GPU per trial, two at a time, and run its trials on the GPU workers it starts.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import cluster_shape
from orchestrator.cluster_shape import (
    NodeType,
    NodeTypes,
    TrialRequest,
    discover_node_types,
    parse_cluster_config,
    size_trials,
)
from search_spaces import SpecError, parse_spec
from tests.fixtures.ray_nodes import free_port, kill_processes

ROOT = Path(__file__).resolve().parents[2]
RAY = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))

# a cloud GPU worker as `ray up` fills it in from the instance type (g5.xlarge / g6.xlarge: 4 vCPU, 1 GPU)
A10G = {"CPU": 4.0, "GPU": 1.0, "memory": 1.2e10, "accelerator_type:A10G": 1.0}
L4 = {"CPU": 4.0, "GPU": 1.0, "memory": 1.2e10, "accelerator_type:L4": 1.0}
HEAD_UP = {"memory": 1.0e10, "object_store_memory": 4.0e9, "node:__internal_head__": 1.0}  # a CPU: 0 head


def _types(*types: NodeType, max_workers: int | None = 8) -> NodeTypes:
    return NodeTypes((NodeType("head", {"CPU": 0.0}, 0, head=True), *types), max_workers, "test.yaml")


def _size(up: list[dict[str, float]], types: NodeTypes | None, cpu: float = 1, gpu: Any = "auto", accel: Any = None):
    return size_trials(up, types, TrialRequest(cpu, gpu, accel), n_trials=16)


# ---- the decision ----


def test_cpu_less_head_and_gpu_workers_from_zero_get_a_gpu_per_trial() -> None:
    sizing = _size([HEAD_UP], _types(NodeType("gpu_worker", A10G, 6)))
    assert (sizing.gpu, sizing.slots) == (1.0, 6)  # one per GPU worker at its max, not 0 GPUs and 1 at a time
    assert sizing.resources() == {"cpu": 1, "gpu": 1.0}


def test_without_an_autoscaler_the_nodes_up_are_the_cluster() -> None:
    assert (_size([{"CPU": 2.0}], None).gpu, _size([{"CPU": 2.0}], None).slots) == (0.0, 2)  # a laptop
    nodes = [{"CPU": 8.0, "GPU": 2.0}] * 3
    assert (_size(nodes, None).gpu, _size(nodes, None).slots) == (1.0, 6)
    assert _size(nodes, None, gpu=0.5).slots == 12  # two trials share each GPU
    # per node, not cluster totals: 24 CPUs hold four 6-CPU trials, but each node holds only one
    assert _size(nodes, None, cpu=6).slots == 3


def test_counts_do_not_lose_a_trial_to_float_division() -> None:
    assert _size([{"CPU": 1.0}], None, cpu=0.1).slots == 10  # 1 // 0.1 == 9.0 in floats


def test_the_nodes_up_count_when_they_hold_more_than_the_node_types() -> None:
    # nodes joined by hand (not in the autoscaler's types) still run trials
    up = [HEAD_UP, {"CPU": 16.0, "GPU": 4.0}]
    assert _size(up, _types(NodeType("gpu_worker", A10G, 2))).slots == 4


def test_the_global_max_workers_caps_the_node_types_most_trials_first() -> None:
    two_gpus = {"CPU": 8.0, "GPU": 2.0}
    types = (NodeType("one", A10G, 8), NodeType("two", two_gpus, 4))
    assert _size([HEAD_UP], _types(*types, max_workers=None)).slots == 8 + 4 * 2
    assert _size([HEAD_UP], _types(*types, max_workers=5)).slots == 4 * 2 + 1  # four 2-GPU nodes, then one more
    with pytest.raises(SpecError, match=r"resources\.gpu"):  # no worker may start: no GPU to be had
        _size([HEAD_UP], _types(*types, max_workers=0), gpu=1)


def test_a_type_without_a_limit_counts_as_many_nodes_as_trials() -> None:
    assert _size([HEAD_UP], _types(NodeType("gpu", A10G, None), max_workers=None)).slots == 16


def test_shipped_cluster_yaml() -> None:
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    types = parse_cluster_config(config, "cluster.yaml")
    head = [t for t in types.types if t.head]
    assert [(t.name, t.resources.get("CPU"), t.max_workers) for t in head] == [("head", 0.0, 0)]
    assert all(config["available_node_types"][t.name]["min_workers"] == 0 for t in types.types if not t.head)

    sizing = _size([HEAD_UP], types)  # the head alone is up: no CPU, no GPU
    assert (sizing.gpu, sizing.slots) == (1.0, min(config["max_workers"], 8))  # GPU workers, global cap
    a10g = _size([HEAD_UP], types, accel="A10G")
    assert a10g.slots == sizing.slots and a10g.resources() == {"cpu": 1, "gpu": 1.0, "accelerator_type:A10G": 0.001}
    with pytest.raises(SpecError, match=r"resources\.cpu: got 5.*at most 4 CPUs"):
        _size([HEAD_UP], types, cpu=5)


def test_mixed_gpu_models_and_a_sweep_kept_on_one() -> None:
    types = _types(NodeType("gpu_worker", A10G, 8), NodeType("gpu_worker_l4", L4, 4), max_workers=10)
    assert _size([HEAD_UP], types).slots == 10  # either model, up to the global cap
    assert _size([HEAD_UP], types, accel="A10G").slots == 8
    l4 = _size([HEAD_UP], types, accel="L4")
    assert l4.slots == 4 and l4.resources() == {"cpu": 1, "gpu": 1.0, "accelerator_type:L4": 0.001}
    assert _size([HEAD_UP], types, cpu=2, accel="L4").slots == 4  # one GPU per node, whatever its CPUs
    assert _size([HEAD_UP], types, cpu=2, gpu=0.5, accel="L4").slots == 8  # two trials share each L4
    with pytest.raises(SpecError, match=r"resources\.accelerator_type: got 'H100'.*A10G, L4"):
        _size([HEAD_UP], types, accel="H100")


def test_per_type_max_workers_defaults_as_ray_fills_it() -> None:
    config = {
        "max_workers": 3,
        "head_node_type": "h",
        "available_node_types": {"h": {"resources": {"CPU": 2}}, "w": {"resources": A10G}},
    }
    types = parse_cluster_config(config, "x")
    assert {t.name: t.max_workers for t in types.types} == {"h": 0, "w": 3}
    assert _size([{"CPU": 2.0}], types).slots == 3


@pytest.mark.parametrize(
    ("up", "types", "request_", "field", "allowed"),
    [
        # an accelerator model no node up and no node type has: say which models there are
        ([HEAD_UP, A10G], None, (1, "auto", "H100"), "resources.accelerator_type", "A10G"),
        ([{"CPU": 4.0}], None, (1, "auto", "A10G"), "resources.accelerator_type", "none"),
        # a GPU on a cluster with no GPU and no node type with one
        ([{"CPU": 4.0}], _types(NodeType("cpu", {"CPU": 8.0}, 4)), (1, 1, None), "resources.gpu", "0 or auto"),
        # more than any node (up or startable) holds
        ([HEAD_UP], _types(NodeType("gpu", A10G, 2)), (8, "auto", None), "resources.cpu", "at most 4 CPUs"),
        ([HEAD_UP], _types(NodeType("gpu", A10G, 2)), (1, 2, None), "resources.gpu", "at most 1 GPUs"),
        ([{"CPU": 2.0}], None, (3, "auto", None), "resources.cpu", "at most 2 CPUs"),
        ([HEAD_UP], None, (1, "auto", None), "resources.cpu", "a cluster with CPUs"),  # a CPU-less head alone
        # a type that may not start counts for nothing
        ([HEAD_UP], _types(NodeType("gpu", A10G, 0)), (1, 1, None), "resources.gpu", "0 or auto"),
    ],
)
def test_requests_no_node_can_run_are_spec_errors(
    up: list[dict[str, float]], types: NodeTypes | None, request_: tuple[Any, Any, Any], field: str, allowed: str
) -> None:
    with pytest.raises(SpecError) as info:
        _size(up, types, *request_)
    assert info.value.field == field and allowed in info.value.allowed, str(info.value)


def test_auto_without_a_gpu_of_the_asked_model_is_cpu_only() -> None:
    sizing = _size([HEAD_UP], _types(NodeType("cpu", {"CPU": 4.0, "accelerator_type:X": 1.0}, 2)), accel="X")
    assert (sizing.gpu, sizing.slots) == (0.0, 8)


def test_the_accelerator_resource_reaches_the_trials_request() -> None:
    # what sweep._trainable does with the dict: Tune turns every key but cpu/gpu/memory into a custom resource
    from ray import tune

    res = _size([A10G], None, accel="A10G").resources()
    wrapped = tune.with_resources(lambda config: None, res)
    pgf = wrapped._resources  # why private: Tune keeps the request there; no public getter (pinned here)
    assert pgf.required_resources == {"CPU": 1.0, "GPU": 1.0, "accelerator_type:A10G": 0.001}


# ---- the spec ----


@pytest.mark.parametrize("model", ["A10G", "L4", "H100", "A100-80G", "TPU_V4"])
def test_spec_takes_an_accelerator_type(model: str) -> None:
    assert parse_spec({"name": "g", "resources": {"accelerator_type": model}}).resources.accelerator_type == model


@pytest.mark.parametrize("bad", ["", "A10G!", "a b", 10, ["A10G"], "Ä10"])
def test_spec_refuses_a_bad_accelerator_type(bad: Any) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "g", "resources": {"accelerator_type": bad}})
    assert info.value.field == "resources.accelerator_type" and info.value.value == bad


# ---- discovery (no Ray cluster: a stand-in autoscaler process, a stand-in home) ----

CONFIG = {
    "max_workers": 2,
    "head_node_type": "head",
    "available_node_types": {"head": {"resources": {"CPU": 0}}, "gpu": {"resources": A10G, "max_workers": 4}},
}


@pytest.fixture()
def no_gcs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_shape, "_from_gcs", lambda: None)


@pytest.fixture()
def fake_monitor(tmp_path: Path) -> Iterator[Path]:
    """A process whose command line is an autoscaler's: .../autoscaler/monitor.py --autoscaling-config=..."""
    script = tmp_path / "autoscaler" / "monitor.py"
    script.parent.mkdir()
    script.write_text("import time\ntime.sleep(60)\n")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    args = ["--gcs-address=10.1.2.3:16379", "--autoscaling-config=config.yaml"]  # relative: to its own cwd
    proc = subprocess.Popen([sys.executable, str(script), *args], cwd=tmp_path)
    try:
        yield tmp_path
    finally:
        proc.kill()
        proc.wait()


def test_discovers_the_config_of_this_clusters_autoscaler(
    fake_monitor: Path, no_gcs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(fake_monitor))  # why: no ~/ray_bootstrap_config.yaml to fall back on
    deadline = time.time() + 10
    while (found := discover_node_types("10.1.2.3:16379")) is None and time.time() < deadline:
        time.sleep(0.05)  # why: the process may not have exec'd yet
    assert found is not None and found.source == str(fake_monitor / "config.yaml")
    assert found.max_workers == 2 and {t.name: t.max_workers for t in found.types} == {"head": 0, "gpu": 4}
    assert discover_node_types("127.0.0.1:16379") == found  # the same port, written differently
    assert discover_node_types("10.1.2.3:6380") is None  # another cluster's autoscaler is not ours


def test_falls_back_to_the_bootstrap_config_ray_up_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_gcs: None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert discover_node_types("10.9.9.9:1") is None
    (tmp_path / "ray_bootstrap_config.yaml").write_text(yaml.safe_dump(CONFIG))
    found = discover_node_types("10.9.9.9:1")
    assert found is not None and _size([HEAD_UP], found).slots == 2


def test_an_unreadable_config_leaves_the_nodes_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_gcs: None, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ray_bootstrap_config.yaml").write_text("max_workers: [unclosed\n")
    assert discover_node_types("10.9.9.9:1") is None
    assert "could not read the autoscaler's node types" in caplog.text


# ---- one real sweep on Ray's fake multi-node autoscaler ----

TOKEN = secrets.token_hex(32)
EPOCHS = 1
SPEC = f"""
name: gpu_from_zero
dataset: {{name: digits}}
fixed: {{model: resnet, depth: 8, width: 4, epochs: {EPOCHS}}}
space:
  lr: {{kind: loguniform, low: 1.0e-3, high: 1.0e-2, default: 3.0e-3}}
sampler: {{kind: random, seed: 0}}
num_samples: 2
resources: {{cpu: 1, gpu: auto, accelerator_type: A10G}}
energy: {{idle_baseline_s: 0}}
"""


def _env(address: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_ADDRESS=address, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _fake_cluster_config(gcs_address: str) -> dict[str, Any]:
    """What ``ray.cluster_utils.AutoscalingCluster._generate_config`` builds from the wheel's missing
    ``fake_multi_node/example.yaml``: a CPU-less head and one GPU worker type from zero (at most 2)."""
    gpu_node = {"CPU": 1, "GPU": 1, "accelerator_type:A10G": 1}
    return {
        "cluster_name": "fake_multinode",
        "max_workers": 8,
        # why gcs_address: the fake provider would join its nodes to port 6379, another cluster's on a shared machine
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "gpu_node": {"resources": gpu_node, "node_config": {}, "min_workers": 0, "max_workers": 2},
        },
        "head_node_type": "ray.head.default",
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 0.2,
        "docker": {},
        "auth": {"ssh_user": "ubuntu"},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        **{k: [] for k in ("initialization_commands", "setup_commands", "head_setup_commands")},
        **{k: [] for k in ("worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands")},
    }


@pytest.fixture(scope="module")
def autoscaling_cluster() -> Iterator[str]:
    """Ray's fake multi-node autoscaler, started as ``AutoscalingCluster.start`` does (``ray start --head
    --autoscaling-config``, RAY_FAKE_CLUSTER=1) but on its own ports and temp dir, and stopped by killing only its
    own processes: its ``ray stop --force`` would take down every other Ray on the machine. Yields the address."""
    from ray._private.services import get_node_ip_address

    # why not tmp_path: Ray's socket paths under it would pass the 107-byte limit of a Unix socket's name
    tmp = Path(tempfile.mkdtemp(prefix="ws-fake-"))
    port = free_port()
    address = f"{get_node_ip_address()}:{port}"
    config = tmp / "autoscaling.json"
    config.write_text(json.dumps(_fake_cluster_config(address)))
    env = {**_env(address), "AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_FAKE_CLUSTER": "1"}
    del env["RAY_ADDRESS"]
    head = [
        RAY,
        "start",
        "--head",
        f"--port={port}",
        f"--autoscaling-config={config}",
        "--num-cpus=0",
        "--include-dashboard=false",
        f"--dashboard-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        f"--temp-dir={tmp}",
    ]
    try:
        r = subprocess.run(head, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        yield address
    finally:
        kill_processes(f":{port}", f"={port}", str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)


def _sweep(address: str, tmp: Path, spec_text: str) -> subprocess.CompletedProcess[str]:
    spec = tmp / "spec.yaml"
    spec.write_text(spec_text)
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(spec), "--address", "auto"]
    cmd += ["--storage", str(tmp / "runs"), "--name", "run"]
    return subprocess.run(cmd, env=_env(address), cwd=ROOT, capture_output=True, text=True, timeout=400)


def _nodes(address: str) -> dict[str, dict[str, float]]:
    """Every node the cluster has had (dead ones too, as the idle GPU workers may be by now): id -> resources."""
    code = "import json, ray; ray.init(); print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes()}))"
    r = subprocess.run([sys.executable, "-c", code], env=_env(address), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def test_sweep_on_gpu_workers_from_zero_asks_for_gpus(autoscaling_cluster: str, tmp_path: Path) -> None:
    r = _sweep(autoscaling_cluster, tmp_path, SPEC)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 trials of 'run', 2 at a time (1 CPU, 1 GPU each)" in r.stdout, r.stdout[-2000:]
    run_dir = tmp_path / "runs" / "run"
    manifest = json.loads((run_dir / "wattsweep.json").read_text())
    assert manifest["slots"] == 2
    assert manifest["resources"] == {"cpu": 1, "gpu": 1, "accelerator_type:A10G": 0.001}

    nodes = _nodes(autoscaling_cluster)
    epochs = {f.parent.name: f.read_text().splitlines() for f in (run_dir / "trials").glob("*/epochs.jsonl")}
    assert len(epochs) == 2
    for tid, lines in epochs.items():
        rows = [json.loads(x) for x in lines if x.strip()]
        assert [e["epoch"] for e in rows] == list(range(1, EPOCHS + 1)), tid
        for e in rows:  # on a GPU worker the autoscaler started, never on the CPU-less head
            assert nodes[e["node_id"]].get("GPU") == 1 and nodes[e["node_id"]].get("accelerator_type:A10G") == 1


def test_an_accelerator_the_cluster_lacks_is_exit_2(autoscaling_cluster: str, tmp_path: Path) -> None:
    r = _sweep(autoscaling_cluster, tmp_path, SPEC.replace("accelerator_type: A10G", "accelerator_type: H100"))
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "resources.accelerator_type: got 'H100'" in r.stderr and "A10G" in r.stderr, r.stderr[-2000:]
    assert "trials of" not in r.stdout  # refused before any trial was started
    assert not (tmp_path / "runs" / "run").exists()  # and before the run directory: the name stays free
