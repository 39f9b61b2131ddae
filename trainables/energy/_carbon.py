"""Energy -> carbon dioxide equivalent."""

from __future__ import annotations

import math

# World-average carbon intensity of electricity, g CO2e per kWh: Ember, Global Electricity
# Review 2024 (data year 2023; lifecycle emissions incl. upstream methane, 100-year GWP).
# why a world average: a sweep may run anywhere; pass your grid's figure (Ember's yearly
# data and Electricity Maps give per-country values) for a number worth reporting.
DEFAULT_GRID_G_PER_KWH = 480.0
# Power usage effectiveness: facility energy / IT energy. why 1.0: a local machine has no
# data-centre overhead to add; cloud and HPC sites publish theirs (typically 1.1-1.6).
DEFAULT_PUE = 1.0

_J_PER_KWH = 3.6e6


def co2e_g(energy_j: float, *, grid_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH, pue: float = DEFAULT_PUE) -> float:
    """Grams of CO2-equivalent for ``energy_j`` joules of IT energy.

    ``co2e_g = energy_j / 3.6e6 J/kWh * pue * grid_g_per_kwh``.

    Args:
        energy_j: IT energy, J (>= 0).
        grid_g_per_kwh: grid carbon intensity, g CO2e / kWh. Default 480: the world average
            for 2023 from Ember's Global Electricity Review 2024.
        pue: power usage effectiveness (>= 1). Default 1.0 (a local machine).
    """
    if not (energy_j >= 0 and math.isfinite(energy_j)):
        raise ValueError(f"energy_j must be a finite number >= 0, but got {energy_j=}.")
    if not (grid_g_per_kwh >= 0 and math.isfinite(grid_g_per_kwh)):
        raise ValueError(f"grid_g_per_kwh must be a finite number >= 0, but got {grid_g_per_kwh=}.")
    if not (pue >= 1 and math.isfinite(pue)):
        raise ValueError(f"pue must be a finite number >= 1, but got {pue=}.")
    return energy_j / _J_PER_KWH * pue * grid_g_per_kwh
