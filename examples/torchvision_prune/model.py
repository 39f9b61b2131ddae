"""A torchvision model, built by its real constructor, swept over width and pruning ratio.

    python -m orchestrator sweep examples/torchvision_prune/spec.yaml

``torchvision.models.mobilenet_v2(width_mult=...)`` is the network; ``wattsweep.GradualPruner`` removes
channels (structured pruning through torch-pruning) step by step during training, to the searched
``prune_ratio`` at the last step, with batch-norm statistics re-estimated after each step. The data is
made here, offline: scikit-learn's digits, upscaled to 3 x 32 x 32 images.

Whether pruning saves energy at equal accuracy is what the sweep measures: the seed write-up's
"pruning cuts compute 15-30% at ~98% accuracy" is a hypothesis, and this is one way to test it on a
network of your own.
"""

from __future__ import annotations

from typing import Any

import torch
import torchvision
from sklearn.datasets import load_digits
from torch.nn import functional as F

import wattsweep


def load(size: int = 32) -> tuple[torch.Tensor, ...]:
    """Digits as 3 x size x size images in [0, 1] (bilinear upscaling of the 8 x 8 originals); 70/30 split."""
    x, y = load_digits(return_X_y=True)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    img = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8)[order] / 16.0
    img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
    labels = torch.tensor(y)[order]
    cut = int(0.7 * len(img))
    return img[:cut].contiguous(), labels[:cut], img[cut:].contiguous(), labels[cut:]


def train(config: dict[str, Any], ctx: Any) -> None:
    x, y, xv, yv = (t.to(ctx.device) for t in load())
    model = torchvision.models.mobilenet_v2(num_classes=10, width_mult=config["width_mult"]).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    pruner = wattsweep.GradualPruner(
        model,
        x[:1],
        ratio=config["prune_ratio"],
        epochs=ctx.epochs,
        method="structured",
        every=config["prune_every"],
        calibration=x,
    )
    ctx.watch(model, x[:1])  # before any pruning: the dense FLOPs are the unpruned network's
    if ctx.checkpoint is not None:
        model, _ = pruner.step(model, ctx.start_epoch, opt)  # replay the pruning so the shapes match
        model.load_state_dict(ctx.checkpoint["model"])
        opt.load_state_dict(ctx.checkpoint["opt"])
    gen = torch.Generator().manual_seed(ctx.seed)
    for epoch in range(ctx.start_epoch + 1, ctx.epochs + 1):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(config["batch_size"]):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model, _ = pruner.step(model, epoch, opt)  # prunes on its schedule; the optimizer follows
        if epoch == ctx.epochs:
            model = pruner.finalize(model)
        model.eval()
        with torch.no_grad():
            acc = (model(xv).argmax(1) == yv).float().mean().item()
        ctx.report({"accuracy": acc}, state={"model": model.state_dict(), "opt": opt.state_dict()})
