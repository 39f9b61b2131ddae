"""CO2e per trial: two columns of trials.csv, and ``emissions.csv`` in CodeCarbon's own format.

``emissions.csv`` has one row per trial and exactly the columns of CodeCarbon's ``EmissionsData`` (release
``CODECARBON_RELEASE``), in its order and units, so that a pipeline built for CodeCarbon reads it unchanged:
``duration`` s, ``emissions`` kg CO2e, ``emissions_rate`` kg/s, ``*_power`` W (mean over the trial), ``*_energy``
and ``energy_consumed`` kWh, ``water_consumed`` L, ``ram_total_size`` GB. As CodeCarbon does, power and energy are
the IT figures times the PUE. ``ram_*`` is the DRAM component (RAPL's dram zone) where it was measured, else 0.
What wattsweep does not know is left empty (CPU model, coordinates, utilisation); ``codecarbon_version`` is empty
because CodeCarbon did not measure it, and ``tracking_mode`` is ``process``: each trial's own share of the machine.

CodeCarbon's columns have no place to say a figure is an estimate; trials.csv does: ``co2e_g`` and
``co2e_estimated``, true when the trial's energy is an estimate (``energy_estimated``) or the grid intensity is
(the world default, or another region's figure: the manifest's ``carbon.grid_estimated``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.analysis import J_PER_KWH, carbon_estimate
from reports.output import write_csv
from reports.table import numeric
from trainables import metrics as m

CODECARBON_RELEASE = "3.3.2"
# codecarbon.output_methods.emissions_data.EmissionsData, fields in order, as of CODECARBON_RELEASE
COLUMNS: tuple[str, ...] = (
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
)
CO2E_G, CO2E_ESTIMATED = "co2e_g", "co2e_estimated"


def _truthy(values: pd.Series) -> pd.Series:
    # why astype: an empty column maps to float64, which does not take ``|`` with a bool
    return values.map(lambda v: v is True or str(v).strip().lower() in ("true", "1", "1.0")).astype(bool)


def _section(manifest: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    section = manifest.get(key)
    return section if isinstance(section, Mapping) else {}


def _carbon(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    return _section(manifest, "carbon")


def with_co2e(trials: pd.DataFrame, manifest: Mapping[str, Any]) -> pd.DataFrame:
    """``trials`` with ``co2e_g`` (g CO2e of the trial's energy: kWh x grid g/kWh x PUE, as the report's total)
    and ``co2e_estimated``."""
    carbon = carbon_estimate(manifest, trials)
    energy = numeric(trials, m.ENERGY_J)
    grid_estimated = bool(_carbon(manifest).get("grid_estimated")) or "grid_g_per_kwh" in carbon.defaults_used
    estimated = _truthy(trials.get(m.ENERGY_ESTIMATED, pd.Series(False, index=trials.index))) | grid_estimated
    return trials.assign(
        **{CO2E_G: energy / J_PER_KWH * carbon.pue * carbon.grid_g_per_kwh, CO2E_ESTIMATED: estimated.astype(bool)}
    )


def _timestamp(unix_s: Any) -> str:
    if not isinstance(unix_s, (int, float)) or not np.isfinite(unix_s):
        return ""
    return dt.datetime.fromtimestamp(float(unix_s), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


_PARTS = {"cpu": (m.ENERGY_CPU_J, m.ENERGY_CPU_SOURCE), "gpu": (m.ENERGY_GPU_J, m.ENERGY_GPU_SOURCE)}
_PARTS["ram"] = (m.ENERGY_DRAM_J, m.ENERGY_DRAM_SOURCE)


def _counted(rows: pd.DataFrame, part: str) -> pd.Series:
    """A component's energy, J, as ``energy_j`` counts it: an estimated component beside a measured energy is
    left out (0), as it is of ``energy_j``; a missing one is 0, as CodeCarbon writes absent hardware."""
    joules, source = _PARTS[part]
    estimated_part = rows.get(source, pd.Series("", index=rows.index)).astype(str).str.startswith("estimated")
    energy_estimated = _truthy(rows.get(m.ENERGY_ESTIMATED, pd.Series(False, index=rows.index)))
    return numeric(rows, joules).fillna(0.0).where(~estimated_part | energy_estimated, 0.0)


def emissions_frame(trials: pd.DataFrame, manifest: Mapping[str, Any]) -> pd.DataFrame:
    """One row per trial that reported energy, CodeCarbon's columns (``COLUMNS``) in its units."""
    carbon, facts = carbon_estimate(manifest, trials), _carbon(manifest)
    rows = trials[numeric(trials, m.ENERGY_J).notna()]
    duration = numeric(rows, m.TIME_S)
    kwh = {part: _counted(rows, part) / J_PER_KWH * carbon.pue for part in ("cpu", "gpu", "ram")}
    total = numeric(rows, m.ENERGY_J) / J_PER_KWH * carbon.pue
    emissions_kg = total * carbon.grid_g_per_kwh / 1000.0
    per_s = duration.where(duration > 0)
    host, versions, resources = (_section(manifest, k) for k in ("host", "versions", "resources"))
    name = str(manifest.get("name", ""))
    out = pd.DataFrame(
        {
            "timestamp": rows.get("ended_at", pd.Series(np.nan, index=rows.index)).map(_timestamp),
            "project_name": name,
            "run_id": rows["trial_id"].astype(str),
            "experiment_id": name,
            "duration": duration,
            "emissions": emissions_kg,
            "emissions_rate": emissions_kg / per_s,
            **{f"{part}_power": kwh[part] * J_PER_KWH / per_s for part in ("cpu", "gpu", "ram")},
            **{f"{part}_energy": kwh[part] for part in ("cpu", "gpu", "ram")},
            "energy_consumed": total,
            "water_consumed": 0.0,  # why: CodeCarbon's default WUE is 0 L/kWh; wattsweep models no water
            "country_name": str(facts.get("country_name", "")),
            "country_iso_code": str(facts.get("country_iso_code", "")),
            "region": "",
            "cloud_provider": str(facts.get("cloud_provider", "")),
            "cloud_region": str(facts.get("cloud_region", "")),
            "os": str(host.get("platform", "")),
            "python_version": str(versions.get("python", "")),
            "codecarbon_version": "",
            "cpu_count": host.get("cpus", np.nan),
            "cpu_model": "",
            "gpu_count": resources.get("gpu", np.nan),
            "gpu_model": rows.get(m.GPU_MODEL, pd.Series("", index=rows.index)).fillna(""),
            "longitude": np.nan,
            "latitude": np.nan,
            "ram_total_size": np.nan,
            "tracking_mode": "process",
            "cpu_utilization_percent": np.nan,
            "gpu_utilization_percent": np.nan,
            "ram_utilization_percent": np.nan,
            "ram_used_gb": np.nan,
            "on_cloud": "Y" if facts.get("cloud_provider") else "N",
            "pue": carbon.pue,
            "wue": 0.0,
        },
        index=rows.index,
    )
    return out.loc[:, list(COLUMNS)]


def write_emissions(trials: pd.DataFrame, manifest: Mapping[str, Any], out_dir: Path) -> Path:
    """Write ``emissions.csv`` (``emissions_frame``) into ``out_dir``; return its path."""
    return write_csv(emissions_frame(trials, manifest), out_dir / "emissions.csv")
