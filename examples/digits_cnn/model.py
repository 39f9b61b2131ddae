"""A small CNN of your own on scikit-learn's digits, swept by wattsweep. Everything the user writes is here.

    python -m orchestrator sweep examples/digits_cnn/spec.yaml

The function ``train(config, ctx)`` is the whole contract: read the config, train, call ``ctx.report``
once per epoch. wattsweep measures the energy of each epoch, checkpoints what ``state`` holds and hands it
back (``ctx.checkpoint``) when a trial is retried or resumed, stops poor trials early, and writes the report.
"""

from __future__ import annotations

from typing import Any

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F


class SmallCNN(nn.Module):
    """conv(channels) -> conv(2 x channels) -> 2x2 max pool -> linear; ``kernel`` 3 or 5 (8 x 8 inputs)."""

    def __init__(self, channels: int, kernel: int, dropout: float) -> None:
        super().__init__()
        pad = kernel // 2
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel, padding=pad),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, kernel, padding=pad),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(2 * channels * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def load(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Digits as 1x8x8 images in [0, 1]: 70% train, 30% validation (a fixed split)."""
    x, y = load_digits(return_X_y=True)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8)[order] / 16.0
    y = torch.tensor(y)[order]
    cut = int(0.7 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def train(config: dict[str, Any], ctx: Any) -> None:
    """One trial: ``config`` holds the spec's fixed and searched keys; ``ctx`` is wattsweep's context."""
    x, y, xv, yv = (t.to(ctx.device) for t in load())
    model = SmallCNN(config["channels"], config["kernel"], config["dropout"]).to(ctx.device)
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    if ctx.checkpoint is not None:  # a retried or resumed trial continues where it stopped
        model.load_state_dict(ctx.checkpoint["model"])
        opt.load_state_dict(ctx.checkpoint["opt"])
    ctx.watch(model, x[:1])  # optional: wattsweep records params, FLOPs and inference energy
    gen = torch.Generator().manual_seed(ctx.seed)
    for _epoch in range(ctx.start_epoch + 1, ctx.epochs + 1):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(config["batch_size"]):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_logits = model(xv)
        ctx.report(
            {
                "accuracy": (val_logits.argmax(1) == yv).float().mean().item(),
                "val_loss": F.cross_entropy(val_logits, yv).item(),
            },
            state={"model": model.state_dict(), "opt": opt.state_dict()},
        )


def cost(config: dict[str, Any]) -> float:
    """Relative training cost (multiply-accumulates per sample x epochs), for wattsweep's cheap start."""
    c, k = config["channels"], config["kernel"]
    return float(((1 * c + c * 2 * c) * k * k * 64 + 2 * c * 16 * 10) * config["epochs"])
