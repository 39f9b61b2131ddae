"""The training loop: metric contract, determinism, and resuming from a checkpoint mid-pruning."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from trainables import metrics as M
from trainables.config import DatasetConfig, TrialConfig
from trainables.train import RunOptions, run_trial

DS = DatasetConfig()


def _run(cfg: TrialConfig, **kw: Any) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any] | None]]:
    results: list[dict[str, Any]] = []
    states: list[dict[str, Any] | None] = []

    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        results.append(metrics)
        states.append(copy.deepcopy(state))  # why: a checkpoint is written at once; the live tensors move on

    final = run_trial(cfg, DS, report=report, options=RunOptions(num_threads=1), **kw)
    return final, results, states


def test_every_epoch_reports_the_contract() -> None:
    cfg = TrialConfig(depth=8, width=8, epochs=3, prune_ratio=0.4, prune_every=1)
    final, results, _ = _run(cfg)
    assert [r[M.EPOCH] for r in results] == [1, 2, 3]
    for r in results:
        assert set(M.EPOCH_METRICS) <= set(r)
    energies = [r[M.ENERGY_J] for r in results]
    assert all(e > 0 for e in energies) and energies == sorted(energies)
    assert final[M.ENERGY_SOURCE] == "estimated-cpu" and final[M.ENERGY_ESTIMATED] is True
    assert final[M.SPARSITY] == pytest.approx(0.4, abs=0.02)
    assert final[M.EFFECTIVE_FLOPS] < final[M.FLOPS]
    assert set(M.FINAL_METRICS) <= set(final)
    assert sum(map(sum, final[M.CONFUSION_MATRIX])) == 270  # the test split of digits (15% of 1,797)


def test_unpruned_model_reports_zero_sparsity() -> None:
    final, _, _ = _run(TrialConfig(depth=8, width=8, epochs=1))
    assert final[M.SPARSITY] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("method", ["unstructured", "structured"])
def test_resume_mid_pruning_matches_uninterrupted(method: str) -> None:
    cfg = TrialConfig(depth=8, width=8, epochs=4, prune_ratio=0.5, prune_method=method, prune_every=1, seed=3)
    full, _, states = _run(cfg)
    # interrupt after epoch 2 (pruning has happened twice), resume from that checkpoint
    resumed, results, _ = _run(cfg, resume=states[1])
    assert [r[M.EPOCH] for r in results] == [3, 4]
    assert resumed[M.PARAMS] == full[M.PARAMS]
    assert resumed[M.ACCURACY] == pytest.approx(full[M.ACCURACY], abs=1e-6)
    assert resumed[M.ENERGY_J] > states[1]["wattsweep"][M.ENERGY_J]  # cumulative across the interruption


def test_given_splits_are_used_and_the_dataset_is_not_loaded_again() -> None:
    # why: the sweep's driver loads the data once and ships it to every worker; a trial must train on
    # exactly what it is given (here a CSV path that does not exist would fail if it were loaded)
    from trainables.data import load_splits

    splits = load_splits(DatasetConfig())
    half = len(splits.x_test) // 2
    given = dataclasses.replace(splits, x_test=splits.x_test[:half], y_test=splits.y_test[:half])
    missing = DatasetConfig(name="csv", path="/nonexistent/wattsweep.csv", target="label")
    results: list[dict[str, Any]] = []
    final = run_trial(
        TrialConfig(depth=8, width=8, epochs=1),
        missing,
        report=lambda m, s: results.append(m),
        options=RunOptions(num_threads=1, checkpoint=False),
        splits=given,
    )
    assert len(results) == 1
    cm = final[M.CONFUSION_MATRIX]
    assert sum(map(sum, cm)) == half  # the confusion matrix counts the given test rows, no others


@pytest.mark.parametrize(
    ("source", "window"), [("nvml-counter", 0.5), ("nvml-power", 0.5), ("rapl", 0.1), ("estimated-cpu", 0.0)]
)
def test_inference_window_follows_the_meters_resolution(source: str, window: float) -> None:
    from trainables.watch import inference_window_s

    assert inference_window_s(source) == window


def test_inference_measured_without_a_floor_on_the_cpu_estimate() -> None:
    import torch

    from trainables.energy import make_meter
    from trainables.models import build_model
    from trainables.watch import inference_window_s, measure_inference

    model = build_model(TrialConfig(depth=8, width=8), (1, 8, 8), 10)
    meter = make_meter("cpu")
    meter.start()
    out = measure_inference(model, torch.randn(64, 1, 8, 8), meter, min_s=inference_window_s(meter.source))
    meter.stop()
    assert meter.source == "estimated-cpu"
    assert out[M.INFER_ENERGY_J_PER_1K] > 0 and out[M.INFER_LATENCY_MS] > 0
