"""Where each trial's energy figures came from: its meter's provenance record, one row per trial, and in words.

A trial's last epoch holds ``energy_provenance`` (``trainables.metrics.ENERGY_PROVENANCE``): one backend's dict
(``backend``: ``nvml``, ``rapl`` or ``estimate``) or, for a GPU trial that also measures its host, a composite's
``{"backend": "composite", "parts": [<nvml>, <rapl or estimate>], ...}``; a meter that failed mid-trial and was
replaced by the next source is kept under ``replaced``. Only a trial that reached its last epoch records one.
Runs made before a key existed lack it: a missing or odd value reads as blank, never as an error.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from rundir import TrialRecord
from trainables import metrics as m

PROVENANCE_COLUMNS: tuple[str, ...] = (
    "trial_id",
    "state",
    "backend",
    m.GPU_MODEL,
    "n_gpus",
    "driver_version",
    "nvml_version",
    "power_limit_w",
    "temperature_start_c",
    "temperature_stop_c",
    "counter_update_period_s",
    "crosscheck_ratio",
    "gpu_source",
    "host",
    m.ENERGY_ATTRIBUTION,
    "idle_power_w",
    "fallback_reasons",
)
REASONS_SEPARATOR = " | "  # why not "; ": a reason's own text (its fix) holds semicolons
NO_PROVENANCE = (
    "No trial recorded its meter's provenance (a trial records it at its last epoch; runs made before it was "
    "recorded have none)."
)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parts(provenance: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The single-backend dicts of a provenance record: a composite's parts, else the record itself."""
    if provenance.get("backend") == "composite":
        return _dicts(provenance.get("parts"))
    return [provenance] if provenance else []


def replaced_parts(provenance: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The parts of the meters that failed mid-trial and were replaced (a fallback meter's ``replaced``)."""
    return [p for r in _dicts(provenance.get("replaced")) for p in parts(r)]


def _one(values: Iterable[Any]) -> Any:
    """The devices' value: one number when they agree, else the distinct values as text (``300/150``)."""
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    if len(distinct) <= 1:
        return distinct[0] if distinct else None
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in distinct)


def _host(part: Mapping[str, Any]) -> str | None:
    backend = part.get("backend")
    if backend == "rapl":
        zones = ", ".join(str(z.get("name")) for z in _dicts(part.get("zones")))
        return f"rapl ({zones})" if zones else "rapl"
    if backend == "estimate":
        wpc = _number(part.get("watts_per_core"))
        return f"estimate ({wpc:g} W/core)" if wpc is not None else "estimate"
    return None


def _attribution(final: Mapping[str, Any], prov: Mapping[str, Any], pieces: list[Mapping[str, Any]]) -> str | None:
    recorded = final.get(m.ENERGY_ATTRIBUTION)
    if isinstance(recorded, str):
        return recorded
    if prov.get("attribution") != "shared" and not any(p.get("attribution") == "shared" for p in pieces):
        return "exclusive" if prov else None
    # a run made before energy_attribution was recorded: the rule from the devices or the RAPL share
    rules = [d.get("share_method") for p in pieces for d in _dicts(p.get("devices"))]
    rules += [p.get("share_method") for p in pieces]
    known = [str(r) for r in dict.fromkeys(rules) if r]
    return "shared:" + ("+".join(known) or "unknown")


def fallback_reasons(prov: Mapping[str, Any]) -> list[str]:
    """Why better backends were skipped or failed: the record's own reasons and its parts', each once."""
    reasons = [
        *_list(prov.get("fallback_reasons")),
        *(r for p in [*parts(prov), *replaced_parts(prov)] for r in _list(p.get("fallback_reasons"))),
    ]
    return list(dict.fromkeys(reasons))


def _list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def provenance_row(trial: TrialRecord) -> dict[str, Any] | None:
    """One trial's provenance, flattened (None when its records hold none)."""
    final = trial.final
    prov = _dict(final.get(m.ENERGY_PROVENANCE))
    if not prov:
        return None
    pieces, replaced = parts(prov), replaced_parts(prov)
    # why the replaced ones too: a GPU lost mid-trial leaves its model, driver and limits in the meter it was
    nvml = next((p for p in [*pieces, *replaced] if p.get("backend") == "nvml"), {})
    host = next((p for p in pieces if p.get("backend") in ("rapl", "estimate")), {})
    devices = _dicts(nvml.get("devices"))
    names = [str(d["name"]) for d in devices if d.get("name")]
    idle = [_number(p.get("idle_power_w")) for p in pieces]
    backend = "+".join(str(p.get("backend")) for p in pieces)
    failed = [str(r.get("backend")) for r in _dicts(prov.get("replaced"))]
    if failed:
        backend += f" (after {', '.join(failed)} failed)"
    return {
        "trial_id": trial.trial_id,
        "state": trial.state,
        "backend": backend or None,
        m.GPU_MODEL: "+".join(dict.fromkeys(names)) or final.get(m.GPU_MODEL) or None,
        "n_gpus": len(devices) or None,
        "driver_version": nvml.get("driver_version"),
        "nvml_version": nvml.get("nvml_version"),
        "power_limit_w": _one(_number(d.get("power_limit_w")) for d in devices),
        "temperature_start_c": _one(_number(d.get("temperature_start_c")) for d in devices),
        "temperature_stop_c": _one(_number(d.get("temperature_stop_c")) for d in devices),
        "counter_update_period_s": _one(_number(d.get("counter_update_period_s")) for d in devices),
        "crosscheck_ratio": _number(nvml.get("crosscheck_ratio")),
        "gpu_source": nvml.get("source"),
        "host": _host(host),
        m.ENERGY_ATTRIBUTION: _attribution(final, prov, pieces),
        "idle_power_w": sum(w for w in idle if w is not None) if any(w is not None for w in idle) else None,
        "fallback_reasons": REASONS_SEPARATOR.join(fallback_reasons(prov)) or None,
    }


def provenance_table(trials: Sequence[TrialRecord]) -> pd.DataFrame:
    """One row per trial that recorded its provenance; columns no trial has are left out."""
    rows = [row for row in map(provenance_row, trials) if row is not None]
    frame = pd.DataFrame(rows, columns=list(PROVENANCE_COLUMNS))
    keep = ["trial_id", *(c for c in PROVENANCE_COLUMNS[1:] if frame[c].notna().any())]
    return frame[keep]


def _range(values: pd.Series, fmt: str, unit: str = "") -> str | None:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if numbers.empty:
        return None
    lo, hi = f"{float(numbers.min()):{fmt}}", f"{float(numbers.max()):{fmt}}"
    if lo == hi:
        return f"{lo}{unit}"
    return f"{lo}-{hi}{unit} (median {statistics.median(numbers):{fmt}}{unit})"


def _distinct(values: pd.Series) -> str | None:
    seen = [str(v) for v in dict.fromkeys(values.dropna())]
    return "/".join(seen) or None


def _col(rows: pd.DataFrame, name: str) -> pd.Series:
    return rows[name] if name in rows.columns else pd.Series(dtype=object)


def trials_text(n: int) -> str:
    return f"{n} trial{'s' if n != 1 else ''}"


def _model_text(model: str, rows: pd.DataFrame) -> str:
    period_ms = pd.to_numeric(_col(rows, "counter_update_period_s"), errors="coerce") * 1000
    facts = [
        ("driver", _distinct(_col(rows, "driver_version"))),
        ("NVML", _distinct(_col(rows, "nvml_version"))),
        ("power limit", _range(_col(rows, "power_limit_w"), "g", " W")),
        ("temperature at start", _range(_col(rows, "temperature_start_c"), "g", " °C")),
        ("at stop", _range(_col(rows, "temperature_stop_c"), "g", " °C")),
        ("counter update period", _range(period_ms, ".0f", " ms")),
        ("crosscheck ratio (integrated power / counter)", _range(_col(rows, "crosscheck_ratio"), ".3g")),
    ]
    return f"{model} x {trials_text(len(rows))}" + "".join(f", {k} {v}" for k, v in facts if v)


def _reasons_text(table: pd.DataFrame) -> str:
    # each reason without its fix (the provenance table has the whole text), with how many trials gave it
    counts: Counter[str] = Counter()
    for text in _col(table, "fallback_reasons").dropna():
        counts.update({r.split(" Fix: ")[0] for r in str(text).split(REASONS_SEPARATOR)})
    return "; ".join(f"{r} ({trials_text(n)})" for r, n in counts.items())


def provenance_summary(table: pd.DataFrame, n_trials: int) -> list[tuple[str, str]]:
    """The provenance in a few lines: per GPU model its driver, limits and cross-check; the host CPU's backend."""
    if table.empty:
        return [("Energy provenance", NO_PROVENANCE)]
    missing = n_trials - len(table)
    note = f"{trials_text(missing)} recorded none (a trial records it at its last epoch)." if missing else ""
    items: list[tuple[str, str]] = []
    models = _col(table, m.GPU_MODEL).dropna()
    if not models.empty:
        texts = [_model_text(str(k), table[table[m.GPU_MODEL] == k]) for k in dict.fromkeys(models)]
        items.append(("GPU provenance", "; ".join(texts) + "."))
    hosts = _col(table, "host").dropna()
    if not hosts.empty:
        counts = hosts.value_counts(sort=False).items()
        label = "Host CPU provenance" if not models.empty else "CPU energy provenance"
        items.append((label, ", ".join(f"{h} x {trials_text(int(n))}" for h, n in counts) + "."))
    reasons = _reasons_text(table)
    if reasons:
        items.append(("Fallbacks", f"better backends skipped, and why: {reasons}."))
    if not items:
        items.append(("Energy provenance", f"{trials_text(len(table))} recorded a provenance without devices."))
    if note:
        items[0] = (items[0][0], f"{items[0][1]} {note}")
    return items
