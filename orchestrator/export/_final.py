"""A complete trial's final model, as it ended, and the data to measure it on.

``final_model.pt`` is the module itself (``torch.save``), so a structurally pruned model comes back as the
smaller network it became; unstructured pruning masks still attached are folded into the weights here. Loading
it unpickles, which runs code: ``export`` only reads runs this user created here, or ones trusted with ``--trust``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.export._convert import ExportFailure
from search_spaces import SpecError

if TYPE_CHECKING:
    import numpy as np
    import torch

N_CALIBRATION = 256  # training samples static int8 quantisation is calibrated on


@dataclass
class FinalModel:
    """The model (eval mode, on the CPU), its example input (batch 1) and how many masks were folded in."""

    model: torch.nn.Module
    example: torch.Tensor
    masks_folded: int


def load_final_model(path: Path, *, trial_id: str) -> FinalModel:
    """Load ``path`` (a ``final_model.pt``); unstructured masks folded. SpecError naming the trial when its class
    cannot be imported here, ExportFailure when the file is not a final model."""
    import torch
    from torch.nn.utils import prune

    try:
        raw = torch.load(path, map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, AttributeError) as e:
        raise SpecError(
            "--trial", trial_id, f"a trial whose model class can be imported here (run from the sweep's directory): {e}"
        ) from None
    except Exception as e:  # why: a torn or foreign file; torch.load raises many unrelated types
        raise ExportFailure(f"trial {trial_id}: {path} is not a readable final model ({type(e).__name__}: {e})") from e
    model, example = (raw.get("model"), raw.get("example")) if isinstance(raw, Mapping) else (None, None)
    if not isinstance(model, torch.nn.Module) or not isinstance(example, torch.Tensor):
        raise ExportFailure(f"trial {trial_id}: {path} does not hold a model and its example input")
    folded = 0
    for module in model.modules():
        for name in [b.removesuffix("_mask") for b, _ in module.named_buffers(recurse=False) if b.endswith("_mask")]:
            prune.remove(module, name)  # why: the zeros stay, the mask (and its second copy of the weights) go
            folded += 1
    model = model.float().to(memory_format=torch.contiguous_format).eval()
    return FinalModel(model, example.float().contiguous(), folded)


@dataclass
class TestData:
    """The trial's test split (``x``, ``y``) and training samples to calibrate on, or why there are none."""

    x: np.ndarray | None
    y: np.ndarray | None
    calibration: np.ndarray | None
    dataset: dict[str, Any] | None
    missing: str | None = None


def test_data(manifest: Mapping[str, Any], example: torch.Tensor) -> TestData:
    """The test split and calibration samples of the run's dataset, where the spec named one and its samples have
    the shape of the model's example input; otherwise why not (recorded in the model card)."""
    from trainables.config import DatasetConfig
    from trainables.data import load_arrays

    raw = manifest.get("dataset")
    if not isinstance(raw, Mapping):
        why = "the spec names no dataset, so wattsweep does not know the trial's test split"
        return TestData(None, None, None, None, why)
    ds = DatasetConfig(**{k: v for k, v in raw.items() if k in DatasetConfig.__dataclass_fields__})
    arrays = load_arrays(ds)
    x_test, x_train = arrays.x_test.astype("float32"), arrays.x_train.astype("float32")
    shape = tuple(example.shape[1:])
    if x_test.shape[1:] != shape:
        if x_test[0].size != example[0].numel():
            why = f"the dataset's samples have shape {x_test.shape[1:]}, the model's example input {shape}"
            return TestData(None, None, None, dict(raw), why)
        # why: a trainable that flattens (or un-flattens) the samples itself hands over an input of that shape
        x_test, x_train = x_test.reshape(-1, *shape), x_train.reshape(-1, *shape)
    return TestData(x_test, arrays.y_test, x_train[:N_CALIBRATION], dict(raw))
