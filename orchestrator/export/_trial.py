"""Export one complete trial into a directory: its artifacts, measured, and their ``model_card.json``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.export import _card, _convert, _final
from orchestrator.export._graph import graph_counts
from orchestrator.export._measure import N_INFERENCES, Predict, Timing, accuracy, side_by_side, torch_threads
from rundir import RunRecord, TrialRecord
from rundir.layout import MODEL_CARD

if TYPE_CHECKING:
    import numpy as np

    from trainables.energy import BaseMeter

FILES = {"onnx": "model.onnx", "int8": "model.int8.onnx", "torchscript": "model.torchscript.pt"}
_BATCH = 256  # samples per batch when measuring accuracy (1 for a graph with a fixed batch of 1)


def _torch_predict(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).float().numpy()

    return predict


@dataclass
class _Made:
    """The artifacts made for one trial: a predictor per format (fp32 ONNX also when only int8 was asked: the
    reference it is measured against), whether the ONNX graph takes any batch size, how int8 was quantised."""

    predictors: dict[str, Predict] = field(default_factory=dict)
    batched: bool = True
    quant: _convert.Quantised | None = None


def _make(
    final: _final.FinalModel, data: _final.TestData, formats: Sequence[str], paths: dict[str, Path], what: str
) -> _Made:
    made = _Made()
    model, example = final.model, final.example
    if "onnx" in formats or "int8" in formats:
        made.batched = _convert.to_onnx(model, example, paths["onnx"], what=f"{what}, onnx")
        made.predictors["onnx"] = _convert.runner(_convert.session(paths["onnx"], what=what), what=f"{what}, onnx")
        if "int8" in formats:
            made.quant = _convert.to_int8(
                paths["onnx"], paths["int8"], data.calibration, batched=made.batched, what=what
            )
            made.predictors["int8"] = _convert.runner(_convert.session(paths["int8"], what=what), what=f"{what}, int8")
    if "torchscript" in formats:
        _convert.to_torchscript(model, example, paths["torchscript"], what=f"{what}, torchscript")
        made.predictors["torchscript"] = _torch_predict(_convert.load_torchscript(paths["torchscript"], what=what))
    return made


def _measure(
    made: _Made, data: _final.TestData, example: np.ndarray, meter: BaseMeter
) -> tuple[dict[str, float | None], dict[str, Timing]]:
    """(test accuracy, timing) per format, on one thread (ONNX Runtime's sessions here; TorchScript alike)."""
    x, y = data.x, data.y
    with torch_threads(1):
        accs = {
            f: accuracy(p, x, y, batch=_BATCH if made.batched or f == "torchscript" else 1)
            if x is not None and y is not None
            else None
            for f, p in made.predictors.items()
        }
        timings = side_by_side(made.predictors, x[:200] if x is not None else example, meter)
    return accs, timings


def _artifact(
    f: str, path: Path, made: _Made, accs: dict[str, float | None], timings: dict[str, Timing], pytorch: dict[str, Any]
) -> dict[str, Any]:
    """One artifact's entry in the model card."""
    import onnxruntime
    import torch

    torchscript = f == "torchscript"
    row: dict[str, Any] = {
        "format": f,
        "file": path.name,
        "runtime": f"torch {torch.__version__} TorchScript, 1 thread"
        if torchscript
        else f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider, 1 thread",
        "bytes": path.stat().st_size,
        "sha256": _card.sha256(path),
        "test_accuracy": accs[f],
        "accuracy_change_points": _points(accs[f], pytorch["test_accuracy"]),
    }
    if torchscript:
        row.update(params=pytorch["params"], flops=pytorch["flops"])
    else:
        counts = graph_counts(path)
        row.update(params=counts.params, flops=counts.flops, batch_dynamic=made.batched)
    row.update(_timing(timings[f]))
    if f == "int8" and made.quant is not None:
        q = made.quant
        row["quantisation"] = {
            "mode": q.mode,
            "calibration_samples": q.calibration_samples,
            "why_not_static": q.why_not_static,
        }
        row["vs_fp32"] = _versus(timings["int8"], timings["onnx"], accs["int8"], accs["onnx"])
    return row


def export_trial(
    run: RunRecord, trial_id: str, final_path: Path, formats: Sequence[str], dest: Path, meter: BaseMeter
) -> dict[str, Any]:
    """Write ``formats`` of the trial's final model into ``dest`` (which exists and is empty), measure each, write
    the model card; return it. ExportFailure (exit 1) when an artifact cannot be made or run."""
    from trainables.flops import count_flops, nonzero_counts

    record = next(t for t in run.trials if t.trial_id == trial_id)
    final = _final.load_final_model(final_path, trial_id=trial_id)
    data = _final.test_data(run.manifest, final.example)
    model = final.model
    pytorch = {
        "test_accuracy": accuracy(_torch_predict(model), data.x, data.y, batch=_BATCH)
        if data.x is not None and data.y is not None
        else None,
        "params": sum(p.numel() for p in model.parameters()),
        "nonzero_params": nonzero_counts(model).params,
        "flops": count_flops(model, final.example)[0],
        "masks_folded": final.masks_folded,
    }
    paths = {f: dest / name for f, name in FILES.items()}
    made = _make(final, data, formats, paths, f"trial {trial_id}")
    accs, timings = _measure(made, data, final.example.numpy(), meter)
    artifacts = [_artifact(f, paths[f], made, accs, timings, pytorch) for f in formats]
    if "onnx" not in formats:
        paths["onnx"].unlink(missing_ok=True)  # why: made only to quantise and compare against; not asked for
    card = _card_dict(run, record, final_path, pytorch, data, artifacts, dest)
    (dest / MODEL_CARD).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return card


def _card_dict(
    run: RunRecord,
    record: TrialRecord,
    final_path: Path,
    pytorch: dict[str, Any],
    data: _final.TestData,
    artifacts: list[dict[str, Any]],
    dest: Path,
) -> dict[str, Any]:
    from orchestrator.manifest import git_rev

    return {
        "model_card_version": _card.CARD_VERSION,
        "trial_id": record.trial_id,
        "run": {
            "name": run.manifest.get("name", run.run_dir.name),
            "trainable": run.manifest.get("trainable"),
            "created_at": run.manifest.get("created_at"),
            "git_rev": run.manifest.get("git_rev"),
        },
        "config": record.config,
        "sweep_metrics": _card.scalars(record.final),
        "pytorch": pytorch,
        "test_split": {"dataset": data.dataset, "samples": len(data.x)}
        if data.x is not None
        else {"missing": data.missing},
        "artifacts": artifacts,
        "provenance": {
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "run_dir": str(run.run_dir),
            "final_model": str(final_path.relative_to(run.run_dir)),
            "final_model_sha256": _card.sha256(final_path),
            "wattsweep_git_rev": git_rev(),
            "versions": _card.versions(),
            "host": _card.host(),
            "inferences_per_round": N_INFERENCES,
        },
        "files": {p.name: _card.sha256(p) for p in sorted(dest.iterdir())},
    }


def _points(acc: float | None, reference: float | None) -> float | None:
    """Accuracy change in percentage points (negative: a loss)."""
    return None if acc is None or reference is None else round((acc - reference) * 100.0, 4)


def _timing(t: Timing) -> dict[str, Any]:
    return {
        "latency_ms": t.latency_ms,
        "energy_j_per_1k": t.energy_j_per_1k,
        "energy_source": t.energy_source,
        "energy_estimated": t.energy_estimated,
        "timing_rounds": t.rounds,
    }


def _versus(int8: Timing, fp32: Timing, acc8: float | None, acc32: float | None) -> dict[str, Any]:
    """int8 against fp32, measured side by side in this export."""
    return {
        "latency_ratio": _card.ratio(int8.latency_ms, fp32.latency_ms),
        "energy_ratio": _card.ratio(int8.energy_j_per_1k, fp32.energy_j_per_1k),
        "accuracy_change_points": _points(acc8, acc32),
    }
