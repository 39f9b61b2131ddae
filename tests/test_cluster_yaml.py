"""cluster.yaml passes Ray's own cluster-config validation and keeps Ray's ports closed."""

from __future__ import annotations

import copy
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
RAY_PORTS = {6379, 8265, 10001}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_passes_rays_schema(config: dict[str, Any]) -> None:
    validate_config(prepare_config(copy.deepcopy(config)))


def test_schema_check_is_real(config: dict[str, Any]) -> None:
    bad = copy.deepcopy(config)
    bad["available_node_types"]["gpu_worker"]["max_wrokers"] = 2
    with pytest.raises(Exception, match="max_wrokers"):
        validate_config(prepare_config(bad))


def test_image_matches_installed_ray(config: dict[str, Any]) -> None:
    image = config["docker"]["image"]
    assert re.fullmatch(r"rayproject/ray:[0-9.]+-py311-gpu", image), image
    tag_version = image.split(":")[1].split("-")[0]
    assert version("ray").split(".")[:2] == tag_version.split(".")[:2]
    req = (ROOT / "requirements.txt").read_text()
    minor = ".".join(tag_version.split(".")[:2])
    assert f"ray[default,tune]>={minor}" in req


def test_no_ray_port_open_to_the_world(config: dict[str, Any]) -> None:
    for perm in config["provider"]["security_group"]["IpPermissions"]:
        opened = set(range(perm["FromPort"], perm["ToPort"] + 1))
        assert not opened & RAY_PORTS, perm


def test_token_auth_and_dashboard_on_loopback(config: dict[str, Any]) -> None:
    head = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "--dashboard-host=127.0.0.1" in head
    assert all("RAY_AUTH_MODE=token" in c for c in config["worker_start_ray_commands"] if "ray start" in c)


def test_gpu_workers_scale_from_zero(config: dict[str, Any]) -> None:
    gpu_types = {k: v for k, v in config["available_node_types"].items() if k.startswith("gpu_worker")}
    assert gpu_types and all(v["min_workers"] == 0 for v in gpu_types.values())


def test_one_gpu_model_per_sweep_by_default_each_type_declaring_its_gpu(config: dict[str, Any]) -> None:
    # the driver sizes trials from these declarations before any GPU worker is up
    gpu_types = {k: v for k, v in config["available_node_types"].items() if k.startswith("gpu_worker")}
    models = set()
    for name, t in gpu_types.items():
        res = t["resources"]
        assert res.get("GPU", 0) >= 1 and res.get("CPU", 0) >= 1, name
        models |= {k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")}
    assert models == {"A10G"}


def test_ssh_is_not_open_to_the_world_by_default(config: dict[str, Any]) -> None:
    ranges = [r["CidrIp"] for p in config["provider"]["security_group"]["IpPermissions"] for r in p["IpRanges"]]
    assert ranges and "0.0.0.0/0" not in ranges  # the user must put their own range in before `ray up` works


def test_the_heads_iam_policy_is_the_autoscalers_actions_not_full_ec2() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "AmazonEC2FullAccess" not in readme and '"ec2:RunInstances"' in readme
