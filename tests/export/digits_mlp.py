"""A user's own trainable for the export tests: an MLP on the spec's dataset (``ctx.data``, digits).

``variant`` decides how it treats the contract: ``watched`` hands its model over with ``ctx.watch`` (exportable),
``unwatched`` never does (export must say what to hand over), ``stops`` returns after its first epoch (a stopped
trial: its checkpoint is not a final one).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class DigitsMLP(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def train(config: dict[str, Any], ctx: Any) -> None:
    data = ctx.data
    model = DigitsMLP(config["hidden"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    if ctx.checkpoint is not None:
        model.load_state_dict(ctx.checkpoint["model"])
        opt.load_state_dict(ctx.checkpoint["opt"])
    if config["variant"] != "unwatched":
        ctx.watch(model, data.x_train[:1])
    gen = torch.Generator().manual_seed(ctx.seed)
    for epoch in range(ctx.start_epoch + 1, ctx.epochs + 1):
        model.train()
        for idx in torch.randperm(len(data.x_train), generator=gen).split(64):
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
            test_acc = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
        ctx.report(
            {"accuracy": acc, "test_accuracy": test_acc}, state={"model": model.state_dict(), "opt": opt.state_dict()}
        )
        if config["variant"] == "stops" and epoch == 1:
            return
