"""The one adapter over torch's exporters (ONNX, TorchScript) and ONNX Runtime's quantiser.

Their errors (an operator the ONNX exporter cannot translate, a graph the quantiser refuses, a model TorchScript
cannot trace) become ``ExportFailure`` here and nowhere else; the rest of ``orchestrator.export`` trusts its types.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import torch

INPUT, OUTPUT = "input", "output"  # the names the exported graphs give their one input and output
_T = TypeVar("_T")


class ExportFailure(RuntimeError):
    """An artifact could not be made or run at export time (exit 1): names the trial, the format and why."""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_lines(e: BaseException, n: int = 2) -> str:
    """The part of a foreign error that says what failed. why the summary: torch's exporter puts generic advice
    first and the operator it could not translate under "## Exception summary"."""
    text = _ANSI.sub("", str(e)).strip()
    text = text.split("## Exception summary", 1)[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip() and line.strip() != "⬆️"]
    return " | ".join(lines[:n])[:600] or type(e).__name__


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn whatever a foreign exporter raises into ExportFailure naming ``what``."""
    root = logging.getLogger()
    level = root.level
    try:
        with warnings.catch_warnings():
            # why: torch marks jit.trace deprecated on every call, and ONNX Runtime's quantiser logs advice to the
            # root logger at WARNING on every call; the artifact and its measured figures are what counts
            warnings.simplefilter("ignore")
            root.setLevel(max(level, logging.ERROR))
            yield
    except ExportFailure:
        raise
    except Exception as e:  # why: the boundary: exporters raise dozens of unrelated exception types
        raise ExportFailure(f"{what}: {type(e).__name__}: {_first_lines(e)}") from e
    finally:
        root.setLevel(level)


def to_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, *, what: str) -> bool:
    """Export ``model`` to ONNX at ``path`` with torch's exporter (``torch.export``-based, ``dynamo=True``).

    The batch dimension is dynamic where the model allows it (then True is returned); otherwise the graph takes
    exactly ``example``'s shape (batch 1) and False is returned. ExportFailure naming ``what`` when neither works.
    """
    import torch

    # why batch 2: torch.export specialises a dimension of size 1, so a batch-1 example cannot mark it dynamic
    pair = example.expand(2, *example.shape[1:]).contiguous()
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    try:
        with _translated(what):
            _onnx_export(model, pair, path, dynamic_shapes=({0: batch},))
        return True
    except ExportFailure:
        path.unlink(missing_ok=True)
    with _translated(f"{what} (torch.onnx.export)"):
        _onnx_export(model, example, path, dynamic_shapes=None)
    return False


def _onnx_export(model: torch.nn.Module, x: torch.Tensor, path: Path, *, dynamic_shapes: Any) -> None:
    import torch

    with contextlib.redirect_stdout(open(os.devnull, "w")):  # why: the exporter prints its progress
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            input_names=[INPUT],
            output_names=[OUTPUT],
            external_data=False,
        )


def to_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path, *, what: str) -> None:
    """Trace ``model`` on ``example`` and save the TorchScript module at ``path``."""
    import torch

    with _translated(what), torch.no_grad():
        torch.jit.trace(model, example).save(str(path))


@dataclass(frozen=True)
class Quantised:
    """How an int8 graph was made: ``mode`` static (calibrated) or dynamic, and why when not static."""

    mode: str
    calibration_samples: int
    why_not_static: str | None = None


def to_int8(src: Path, dst: Path, calibration: np.ndarray | None, *, batched: bool, what: str) -> Quantised:
    """Quantise the fp32 ONNX graph ``src`` to int8 at ``dst`` with ONNX Runtime.

    Static (QDQ, int8 weights per channel, uint8 activations, MinMax ranges calibrated on ``calibration``:
    training samples) where there are samples and the quantiser accepts the graph; dynamic (weights int8 ahead of
    time, activations quantised at run time) otherwise, with the reason recorded.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    why = "no training samples to calibrate on" if calibration is None or len(calibration) == 0 else None
    if why is None and calibration is not None:
        try:
            with _translated(f"{what} (static quantisation)"):
                quantize_static(
                    str(src),
                    str(dst),
                    _Reader(calibration, batched=batched),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                )
                check_runs(dst, calibration[:1], what=what)
            return Quantised("static", len(calibration))
        except ExportFailure as e:
            dst.unlink(missing_ok=True)
            why = str(e)
    with _translated(f"{what} (dynamic quantisation)"):
        # why uint8 weights: ONNX Runtime's CPU ConvInteger has no kernel for int8 weights
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
    return Quantised("dynamic", 0, why)


class _Reader:
    """ONNX Runtime's CalibrationDataReader over an array of samples (batches of 32, or single samples)."""

    def __init__(self, samples: np.ndarray, *, batched: bool) -> None:
        step = 32 if batched else 1
        self._batches = iter([samples[i : i + step] for i in range(0, len(samples), step)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT: batch}


def session(path: Path, *, what: str) -> Any:
    """An ONNX Runtime CPU session on one thread (the single-sample edge case; the same for every artifact)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    with _translated(f"{what} (onnxruntime)"):
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def runner(sess: Any, *, what: str) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> logits`` through an ONNX Runtime session; its errors become ExportFailure naming ``what``."""

    def run(x: np.ndarray) -> np.ndarray:
        with _translated(f"{what} (onnxruntime run)"):
            return sess.run(None, {INPUT: x})[0]

    return run


def check_runs(path: Path, x: np.ndarray, *, what: str) -> None:
    """Load ``path`` in ONNX Runtime and run it once on ``x`` (an artifact must run, not just exist)."""
    runner(session(path, what=what), what=what)(x)


def load_torchscript(path: Path, *, what: str) -> Any:
    import torch

    with _translated(f"{what} (torch.jit.load)"):
        return torch.jit.load(str(path), map_location="cpu")
