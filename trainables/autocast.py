"""Mixed precision where it pays: bf16 autocast on GPUs, plain fp32 on CPUs."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch


def autocast(device: torch.device) -> AbstractContextManager[Any]:
    """bf16 autocast on CUDA (faster convs / matmuls on tensor cores); nothing on CPU (fp32 is faster there
    for small networks)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
