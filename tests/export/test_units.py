"""The export's parts without a sweep: formats, graph counts against the sweep's FLOP counter, mask folding, the
side-by-side timing, and the final model's file as the Ray adapter writes it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from orchestrator.export._convert import ExportFailure, check_runs, to_int8, to_onnx
from orchestrator.export._final import load_final_model
from orchestrator.export._graph import graph_counts
from orchestrator.export._measure import N_INFERENCES, open_meter, side_by_side
from orchestrator.export._select import parse_formats
from search_spaces import SpecError
from trainables.flops import count_flops
from trainables.ray_trainable import save_final_model


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 4, 3, stride=2, groups=2)
        self.fc = nn.Linear(4 * 3 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.relu(self.conv2(x)).flatten(1))


def test_formats_parse_in_order_and_unknown_ones_are_named() -> None:
    assert parse_formats("int8,onnx") == ("onnx", "int8")
    assert parse_formats(["torchscript"]) == ("torchscript",)
    with pytest.raises(SpecError, match="--format: got 'pdf,svg'; allowed: a comma-separated list of onnx"):
        parse_formats("onnx,pdf,svg")
    with pytest.raises(SpecError, match="--format"):
        parse_formats("")


def test_graph_counts_are_the_sweeps_flops_and_the_params_with_batch_norm_folded(tmp_path: Path) -> None:
    model, x = SmallCNN().eval(), torch.randn(1, 1, 8, 8)
    with torch.no_grad():  # why: trained statistics; the exporter drops a batch norm that is still the identity
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.bias.uniform_(-1, 1)
    assert to_onnx(model, x, tmp_path / "m.onnx", what="t") is True  # dynamic batch
    counts = graph_counts(tmp_path / "m.onnx")
    assert counts.flops == count_flops(model, x)[0]
    # the batch norm is folded into conv (which gains a bias of 6): its 2 x 6 parameters become 6
    assert counts.params == sum(p.numel() for p in model.parameters()) - 6
    calibration = torch.randn(64, 1, 8, 8).numpy()
    q = to_int8(tmp_path / "m.onnx", tmp_path / "q.onnx", calibration, batched=True, what="t")
    assert q.mode == "static" and q.calibration_samples == 64
    assert graph_counts(tmp_path / "q.onnx") == counts  # quantised weights, the same graph
    d = to_int8(tmp_path / "m.onnx", tmp_path / "d.onnx", None, batched=True, what="t")
    assert d.mode == "dynamic" and d.why_not_static == "no training samples to calibrate on"
    check_runs(tmp_path / "d.onnx", calibration[:5], what="t")


def test_a_graph_that_does_not_run_is_an_export_failure(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"not a graph")
    with pytest.raises(ExportFailure, match=re.escape("trial t (onnxruntime): ")):
        check_runs(tmp_path / "bad.onnx", np.zeros((1, 4), np.float32), what="trial t")


def test_masks_are_folded_and_a_structural_change_survives_the_round_trip(tmp_path: Path) -> None:
    model = SmallCNN()
    prune.l1_unstructured(model.fc, "weight", amount=0.5)
    model.conv2 = nn.Conv2d(6, 2, 3, stride=2, groups=2)  # a smaller layer than the class builds
    model.fc = nn.Linear(2 * 3 * 3, 10)
    prune.l1_unstructured(model.fc, "weight", amount=0.5)
    save_final_model({"model": model, "example": torch.zeros(1, 1, 8, 8)}, str(tmp_path / "final_model.pt"))
    final = load_final_model(tmp_path / "final_model.pt", trial_id="t")
    assert final.masks_folded == 1 and not hasattr(final.model.fc, "weight_mask")
    assert int((final.model.fc.weight == 0).sum()) == 90 and final.model.conv2.out_channels == 2
    assert not final.model.training


def test_a_model_that_cannot_be_pickled_is_left_out_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    class Local(nn.Module):  # defined inside a function: pickle cannot name it
        pass

    save_final_model({"model": Local(), "example": torch.zeros(1, 2)}, str(tmp_path / "final_model.pt"))
    assert not (tmp_path / "final_model.pt").exists()
    assert "the final model was not saved" in capsys.readouterr().err


def test_side_by_side_times_each_predictor_with_the_meters_source() -> None:
    calls = {"a": 0, "b": 0}

    def predictor(name: str):  # type: ignore[no-untyped-def]
        def predict(x: np.ndarray) -> np.ndarray:
            calls[name] += 1
            return x

        return predict

    with open_meter() as meter:
        out = side_by_side({"a": predictor("a"), "b": predictor("b")}, np.zeros((3, 4), np.float32), meter, rounds=2)
        source = meter.read().source
    assert calls["a"] == calls["b"] == 2 * (N_INFERENCES + 20)
    for t in out.values():
        assert t.latency_ms > 0 and t.energy_j_per_1k >= 0 and t.energy_source == source and t.rounds == 2


def test_the_test_split_is_the_runs_dataset_or_the_card_says_why_not() -> None:
    from orchestrator.export._final import N_CALIBRATION, test_data

    none = test_data({"dataset": None}, torch.zeros(1, 64))
    assert (
        none.x is None
        and none.missing == "the spec names no dataset, so wattsweep does not know the trial's test split"
    )
    digits = {"name": "digits", "val_fraction": 0.15, "test_fraction": 0.15, "split_seed": 0}
    flat = test_data({"dataset": digits}, torch.zeros(1, 64))  # a trainable that hands over flattened samples
    assert flat.x is not None and flat.y is not None and flat.calibration is not None
    assert flat.x.shape == (270, 64) and len(flat.y) == 270 and flat.calibration.shape == (N_CALIBRATION, 64)
    other = test_data({"dataset": digits}, torch.zeros(1, 3, 32, 32))
    assert (
        other.x is None
        and other.missing == "the dataset's samples have shape (1, 8, 8), the model's example input (3, 32, 32)"
    )


def test_the_final_model_file_holds_the_example_not_the_data_it_was_sliced_from(tmp_path: Path) -> None:
    data = torch.randn(4096, 64)  # 1 MiB; the example is its first row, a view of all of it
    save_final_model({"model": nn.Linear(64, 10), "example": data[:1]}, str(tmp_path / "final_model.pt"))
    assert (tmp_path / "final_model.pt").stat().st_size < 64 * 1024
