"""The grid's carbon intensity for a run: set for the run, else read from the cloud region it runs in, else the
world average; recorded in the manifest's ``carbon`` section, which the report's CO2e and ``emissions.csv`` use.

Region table: Google Cloud's published location-based grid carbon intensity per region, data year 2024
(GoogleCloudPlatform/region-carbon-info, ``data/yearly/2024.csv``, column "Grid carbon intensity (gCO2eq /
kWh)"). AWS publishes no per-region figure: an AWS region here takes Google's figure for a Google region on the
same grid (same metro area and grid operator), and is labelled an estimate. The README lists the same table.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_spaces import SweepSpec
from trainables.energy._carbon import DEFAULT_GRID_G_PER_KWH

GOOGLE_SOURCE = "Google Cloud region-carbon-info, 2024 data"
SET_SOURCE = "set for the run (energy.grid_g_per_kwh / --grid-intensity)"
DEFAULT_SOURCE = "world average 2023, Ember Global Electricity Review 2024 (an estimate: the run's grid is unknown)"
# (provider, region) -> (g CO2e / kWh, country name, ISO 3166-1 alpha-3): Google's published figures
GCP_REGIONS: dict[str, tuple[float, str, str]] = {
    "us-central1": (412.72, "United States", "USA"),
    "us-east1": (575.77, "United States", "USA"),
    "us-east4": (323.05, "United States", "USA"),
    "us-west1": (79.23, "United States", "USA"),
    "us-west2": (169.28, "United States", "USA"),
    "northamerica-northeast1": (5.48, "Canada", "CAN"),
    "southamerica-east1": (67.32, "Brazil", "BRA"),
    "europe-west1": (103.37, "Belgium", "BEL"),
    "europe-west2": (105.94, "United Kingdom", "GBR"),
    "europe-west3": (275.82, "Germany", "DEU"),
    "europe-west4": (208.81, "Netherlands", "NLD"),
    "europe-west9": (16.30, "France", "FRA"),
    "europe-north1": (39.32, "Finland", "FIN"),
    "asia-northeast1": (452.85, "Japan", "JPN"),
    "asia-southeast1": (366.85, "Singapore", "SGP"),
    "asia-south1": (678.76, "India", "IND"),
    "australia-southeast1": (497.50, "Australia", "AUS"),
}
# AWS region -> the Google region on the same grid (estimate)
AWS_SAME_GRID: dict[str, str] = {
    "us-east-1": "us-east4",  # Northern Virginia
    "us-west-2": "us-west1",  # Oregon
    "ca-central-1": "northamerica-northeast1",  # Montréal
    "sa-east-1": "southamerica-east1",  # São Paulo
    "eu-west-2": "europe-west2",  # London
    "eu-central-1": "europe-west3",  # Frankfurt
    "eu-west-3": "europe-west9",  # Paris
    "ap-northeast-1": "asia-northeast1",  # Tokyo
    "ap-southeast-1": "asia-southeast1",  # Singapore
    "ap-south-1": "asia-south1",  # Mumbai
    "ap-southeast-2": "australia-southeast1",  # Sydney
}
REGION_LABEL = "ray.io/availability-region"  # Ray's default node label (set from RAY_NODE_REGION)
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"  # the cluster config `ray up` leaves on the head node


@dataclass(frozen=True)
class Grid:
    """A run's grid carbon intensity and where it came from."""

    g_per_kwh: float  # g CO2e per kWh
    source: str
    estimated: bool  # an estimate (another provider's figure, or the world average), not a published figure
    cloud_provider: str = ""
    cloud_region: str = ""
    country_name: str = ""
    country_iso_code: str = ""


def region_grid(provider: str, region: str) -> Grid | None:
    """The table's figure for a cloud region; None when the table has none."""
    if provider == "gcp" and region in GCP_REGIONS:
        g, country, iso = GCP_REGIONS[region]
        return Grid(g, f"{GOOGLE_SOURCE}: gcp {region}", False, provider, region, country, iso)
    if provider == "aws" and region in AWS_SAME_GRID:
        gcp = AWS_SAME_GRID[region]
        g, country, iso = GCP_REGIONS[gcp]
        source = f"estimated: {GOOGLE_SOURCE} for gcp {gcp}, on the same grid as aws {region}"
        return Grid(g, source, True, provider, region, country, iso)
    return None


def _provider_of(region: str) -> str | None:
    return "gcp" if region in GCP_REGIONS else "aws" if region in AWS_SAME_GRID else None


def detect_region() -> tuple[str, str] | None:
    """(provider, region) of the cluster this driver runs on: Ray's ``ray.io/availability-region`` node label,
    else the provider section of the cluster config ``ray up`` leaves on the head node; None when neither says."""
    with contextlib.suppress(Exception):  # why broad: a lookup that fails is a region not known
        import ray

        if ray.is_initialized():
            for node in ray.nodes():
                region = (node.get("Labels") or {}).get(REGION_LABEL)
                provider = _provider_of(region) if isinstance(region, str) else None
                if provider is not None and region is not None:
                    return provider, region
    return _bootstrap_region(Path(BOOTSTRAP_CONFIG).expanduser())


def _bootstrap_region(path: Path) -> tuple[str, str] | None:
    """(provider type, region) from a Ray cluster config, None when it has none (or cannot be read)."""
    try:
        import yaml

        provider = (yaml.safe_load(path.read_text()) or {}).get("provider") or {}
    except (OSError, ValueError, AttributeError):
        return None
    kind, region = provider.get("type"), provider.get("region")
    return (kind, region) if isinstance(kind, str) and isinstance(region, str) else None


def resolve_grid(spec: SweepSpec, detected: tuple[str, str] | None = None) -> Grid:
    """The run's grid: the spec's / ``--grid-intensity`` figure, else its ``energy.cloud_region``'s or the
    detected region's from the table, else the world average (an estimate)."""
    region = tuple(spec.energy.cloud_region.split(":", 1)) if spec.energy.cloud_region else detected
    provider, name = region if region else ("", "")
    published = region_grid(provider, name) if region else None
    if spec.energy.grid_g_per_kwh is not None:
        country = (published.country_name, published.country_iso_code) if published else ("", "")
        return Grid(spec.energy.grid_g_per_kwh, SET_SOURCE, False, provider, name, *country)
    if published is not None:
        return published
    source = DEFAULT_SOURCE + (f"; no figure for {provider} {name} in the region table" if region else "")
    return Grid(DEFAULT_GRID_G_PER_KWH, source, True, provider, name)


def carbon_facts(spec: SweepSpec) -> dict[str, Any]:
    """The manifest's ``carbon`` section: ``grid_g_per_kwh`` (left out when it is the world default, so the
    report says a default was used), its source, whether it is an estimate, the cloud region, ``pue`` if set."""
    grid = resolve_grid(spec, None if spec.energy.cloud_region else detect_region())
    out: dict[str, Any] = {
        "grid_source": grid.source,
        "grid_estimated": grid.estimated,
        **{k: v for k, v in (("cloud_provider", grid.cloud_provider), ("cloud_region", grid.cloud_region)) if v},
        **{k: v for k, v in (("country_name", grid.country_name), ("country_iso_code", grid.country_iso_code)) if v},
    }
    if not (grid.estimated and grid.g_per_kwh == DEFAULT_GRID_G_PER_KWH):
        out["grid_g_per_kwh"] = grid.g_per_kwh
    if spec.energy.pue:
        out["pue"] = spec.energy.pue
    return out
