"""Objectives, the front on a table, energy provenance and the CO2e estimate."""

from __future__ import annotations

import pandas as pd
import pytest

from reports import analysis


def _trials(**cols: list[object]) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base: dict[str, list[object]] = {
        "trial_id": [f"t{i}" for i in range(n)],
        "state": ["complete"] * n,
        "unreadable": [None] * n,
        "end_order": list(range(n)),
    }
    return pd.DataFrame(base | cols)


def test_default_objectives_and_validation() -> None:
    assert analysis.objectives_from_manifest({}) == analysis.DEFAULT_OBJECTIVES
    got = analysis.objectives_from_manifest({"objectives": [{"metric": "time_s", "direction": "min"}]})
    assert got == (analysis.Objective("time_s", "min"),)
    with pytest.raises(ValueError, match="'up'"):
        analysis.objectives_from_manifest({"objectives": [{"metric": "accuracy", "direction": "up"}]})


def test_only_complete_readable_trials_reach_the_front() -> None:
    t = _trials(
        accuracy=[0.9, 0.99, 0.8, 0.95, 0.7],
        energy_j=[10.0, 1.0, 5.0, 2.0, 20.0],
        state=["complete", "stopped", "complete", "running", "complete"],
        unreadable=[None, None, None, None, "bad line"],
    )
    out, front = analysis.analyse_front(t, analysis.DEFAULT_OBJECTIVES)
    assert out.loc[out["on_front"], "trial_id"].tolist() == ["t0", "t2"]
    assert front.n_candidates == 2
    assert out["pareto_rank"].isna().tolist() == [False, True, False, True, True]
    assert front.knee_id in ("t0", "t2") and out["knee"].sum() == 1
    assert front.hypervolume is not None and front.hypervolume > 0
    h = front.history
    assert h["energy_spent_j"].iloc[-1] == pytest.approx(38.0)  # every trial's energy, whatever its state
    assert h["hypervolume"].iloc[-1] == pytest.approx(front.hypervolume)


def test_no_complete_trial_means_no_front() -> None:
    t = _trials(accuracy=[0.9], energy_j=[1.0], state=["stopped"])
    out, front = analysis.analyse_front(t, analysis.DEFAULT_OBJECTIVES)
    assert front.knee_id is None and front.hypervolume is None and front.history.empty
    assert not out["on_front"].any()


def test_an_objective_no_trial_reported_is_named() -> None:
    t = _trials(accuracy=[0.9], energy_j=[1.0])
    objectives = (analysis.Objective("accuracy", "max"), analysis.Objective("latency_ms", "min"))
    _, front = analysis.analyse_front(t, objectives)
    assert front.missing_metrics == ("latency_ms",) and front.n_candidates == 0


@pytest.mark.parametrize(
    ("flags", "sources", "estimated", "phrase"),
    [
        ([False], ["nvml-counter"], False, "Source"),
        ([False, False], ["nvml-counter", "nvml-counter+rapl"], False, "Source"),
        ([True], ["estimated-cpu"], True, "Estimates"),
        ([None], [None], True, "does not say"),
        ([False, True], ["nvml-counter", "estimated-cpu"], True, "Some trials"),
    ],
)
def test_energy_is_called_measured_only_when_every_trial_says_so(
    flags: list[object], sources: list[object], estimated: bool, phrase: str
) -> None:
    t = _trials(energy_estimated=flags, energy_source=sources)
    info = analysis.energy_info(t)
    assert info.estimated is estimated
    assert phrase in info.statement


def test_co2e_uses_the_manifests_carbon_settings_or_defaults() -> None:
    t = _trials(energy_j=[3.6e6, 3.6e6, None])
    c = analysis.carbon_estimate({"carbon": {"grid_g_per_kwh": 100, "pue": 1.2}}, t)
    assert c.kwh == pytest.approx(2.0) and c.co2e_g == pytest.approx(240.0)
    assert c.n_trials_without_energy == 1 and c.defaults_used == ()
    d = analysis.carbon_estimate({"carbon": {"grid_g_per_kwh": -5}}, t)
    assert d.co2e_g == pytest.approx(2.0 * 480.0) and d.defaults_used == ("grid_g_per_kwh", "pue")
