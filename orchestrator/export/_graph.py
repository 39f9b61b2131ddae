"""What an exported ONNX graph holds: its parameters and FLOPs, read from the graph itself (not from the model).

FLOPs follow ``trainables.flops``: 2 per multiply-accumulate of the conv / matmul nodes, per sample, element-wise
nodes ignored; so a structurally pruned model's graph can be checked against the FLOPs its sweep recorded.
Parameters are the elements of the weight and bias tensors those nodes read (through a ``DequantizeLinear`` in a
quantised graph). Batch norms are folded into the convs by the exporter, so a graph has fewer parameters than the
PyTorch model it came from (one vector per batch norm instead of four).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# op -> (input index of the weight, input index of the bias or None)
_WEIGHTED = {
    "Conv": (1, 2),
    "Gemm": (1, 2),
    "MatMul": (1, None),
    "ConvInteger": (1, None),
    "MatMulInteger": (1, None),
    "QLinearConv": (3, 8),
    "QLinearMatMul": (3, None),
}
_CONV = ("Conv", "ConvInteger", "QLinearConv")


@dataclass(frozen=True)
class GraphCounts:
    """Parameters (elements) and FLOPs per sample of one ONNX graph."""

    params: int
    flops: int


def _dims(value_info: Any) -> list[int]:
    # why 1 for a symbolic dimension: the batch; figures are per sample
    return [d.dim_value if d.HasField("dim_value") else 1 for d in value_info.type.tensor_type.shape.dim]


def graph_counts(path: Path) -> GraphCounts:
    """Count ``path``'s parameters and FLOPs per sample (shape inference gives the conv outputs' sizes)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    inits = {t.name: tuple(t.dims) for t in g.initializer}
    shapes = {v.name: _dims(v) for v in [*g.value_info, *g.output, *g.input]}
    for n in g.node:  # why: a Constant node can hold a weight too
        if n.op_type == "Constant" and n.attribute and n.attribute[0].HasField("t"):
            inits[n.output[0]] = tuple(numpy_helper.to_array(n.attribute[0].t).shape)
    producer = {out: n for n in g.node for out in n.output}

    def source(name: str) -> str:
        node = producer.get(name)
        return node.input[0] if node is not None and node.op_type == "DequantizeLinear" else name

    params, flops, seen = 0, 0, set()
    for n in g.node:
        if n.op_type not in _WEIGHTED:
            continue
        w_at, b_at = _WEIGHTED[n.op_type]
        weight = source(n.input[w_at]) if len(n.input) > w_at else ""
        if weight not in inits:
            continue  # why: a matmul of two activations (attention) has no weight of its own
        for name in (weight, source(n.input[b_at]) if b_at is not None and len(n.input) > b_at else ""):
            if name in inits and name not in seen:
                seen.add(name)
                params += math.prod(inits[name])
        w = inits[weight]
        out = shapes.get(n.output[0])
        if n.op_type in _CONV and out:
            flops += 2 * math.prod(out[1:]) * math.prod(w[1:])
        elif n.op_type == "Gemm":
            flops += 2 * math.prod(w)  # why: K x N (or N x K, transposed) multiply-accumulates per sample
        elif out:
            flops += 2 * math.prod(out[1:]) * w[0]
    return GraphCounts(params, flops)
