"""Issue 17, item 3: which grid carbon intensity a run uses, and where the figure came from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.grid import AWS_SAME_GRID, GCP_REGIONS, _bootstrap_region, carbon_facts, region_grid, resolve_grid
from search_spaces import SpecError, parse_spec
from trainables.energy._carbon import DEFAULT_GRID_G_PER_KWH

ROOT = Path(__file__).resolve().parents[2]


def _spec(**energy: object) -> object:
    return parse_spec({"name": "g", "energy": energy})


def test_a_published_google_region_is_not_an_estimate() -> None:
    grid = region_grid("gcp", "europe-west9")
    assert grid is not None and grid.g_per_kwh == 16.30 and not grid.estimated
    assert (grid.country_name, grid.country_iso_code) == ("France", "FRA") and "2024" in grid.source


def test_an_aws_region_takes_the_same_grids_figure_labelled_an_estimate() -> None:
    grid = region_grid("aws", "us-west-2")
    assert grid is not None and grid.g_per_kwh == GCP_REGIONS["us-west1"][0] and grid.estimated
    assert grid.source.startswith("estimated") and "us-west1" in grid.source
    assert all(gcp in GCP_REGIONS for gcp in AWS_SAME_GRID.values())


def test_precedence_set_for_the_run_then_the_region_then_the_world_default() -> None:
    assert resolve_grid(_spec(grid_g_per_kwh=55), ("gcp", "us-east1")).g_per_kwh == 55.0
    set_grid = resolve_grid(_spec(grid_g_per_kwh=55), ("gcp", "us-east1"))
    assert not set_grid.estimated and set_grid.cloud_region == "us-east1" and set_grid.country_iso_code == "USA"
    assert resolve_grid(_spec(), ("gcp", "us-east1")).g_per_kwh == 575.77
    assert resolve_grid(_spec(cloud_region="gcp:asia-south1"), ("gcp", "us-east1")).g_per_kwh == 678.76
    unknown = resolve_grid(_spec(), ("aws", "me-south-1"))
    assert unknown.g_per_kwh == DEFAULT_GRID_G_PER_KWH and unknown.estimated and "me-south-1" in unknown.source
    assert resolve_grid(_spec(), None).estimated


def test_the_manifest_leaves_the_world_default_out_so_the_report_says_a_default_was_used() -> None:
    facts = carbon_facts(_spec(cloud_region="aws:af-south-1"))  # a region the table lacks
    assert "grid_g_per_kwh" not in facts and facts["grid_estimated"] is True
    assert facts["cloud_provider"] == "aws" and facts["cloud_region"] == "af-south-1"
    facts = carbon_facts(_spec(cloud_region="gcp:us-west1", pue=1.2))
    assert facts["grid_g_per_kwh"] == 79.23 and facts["pue"] == 1.2 and facts["grid_estimated"] is False


def test_the_region_of_a_ray_cluster_config(tmp_path: Path) -> None:
    assert _bootstrap_region(ROOT / "cluster.yaml") == ("aws", "us-west-2")  # the cluster config this repo ships
    (tmp_path / "c.yaml").write_text("provider: {type: local, head_ip: 10.0.0.1}\n")
    assert _bootstrap_region(tmp_path / "c.yaml") is None
    assert _bootstrap_region(tmp_path / "missing.yaml") is None


@pytest.mark.parametrize("bad", ["us-west-2", "azure:eastus", "gcp:", "gcp:US-EAST1", "gcp:a/b", 7, ["gcp:x"]])
def test_a_bad_cloud_region_names_the_field(bad: object) -> None:
    with pytest.raises(SpecError) as info:
        _spec(cloud_region=bad)
    assert info.value.field == "energy.cloud_region" and info.value.value == bad


def test_the_readme_lists_the_region_table() -> None:
    readme = (ROOT / "README.md").read_text()
    for region, (g, _, _) in GCP_REGIONS.items():
        assert re.search(rf"\| `{region}` \|[^|]*\| {g:g} \|", readme), region
    for aws, gcp in AWS_SAME_GRID.items():
        assert re.search(rf"\| `{aws}` \| `{gcp}` \|", readme), aws


def test_the_region_of_a_real_ray_node_label() -> None:
    """Ray sets the ``ray.io/availability-region`` label from RAY_NODE_REGION (what a cloud node provider sets)."""
    code = (
        "import ray\n"
        "from orchestrator.grid import detect_region\n"
        "ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)\n"
        "try:\n"
        "    print('REGION', detect_region())\n"
        "finally:\n"
        "    ray.shutdown()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_NODE_REGION": "europe-west9"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "REGION ('gcp', 'europe-west9')" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
