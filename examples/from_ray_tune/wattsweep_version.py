"""The Ray Tune trainable of tune_version.py, moved to wattsweep: the diff is the README's.

python -m examples.from_ray_tune.wattsweep_version [--num-samples N] [--max-epochs E] [--storage DIR]
"""

from __future__ import annotations

import argparse

import torch
from torch.nn import functional as F

import wattsweep
from examples.from_ray_tune.common import load, mlp


def train_mlp(config, ctx):
    x, y, xv, yv = load()
    model = mlp(config["hidden"], config["layers"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    if ctx.checkpoint:
        model.load_state_dict(ctx.checkpoint["model"])
        opt.load_state_dict(ctx.checkpoint["opt"])
    for _epoch in range(ctx.start_epoch + 1, ctx.epochs + 1):
        for idx in torch.randperm(len(x)).split(64):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (model(xv).argmax(1) == yv).float().mean().item()
        ctx.report({"accuracy": acc}, state={"model": model.state_dict(), "opt": opt.state_dict()})


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--num-samples", type=int, default=12)
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--storage", default="runs")
    args = p.parse_args()
    space = {
        "hidden": wattsweep.choice([16, 32, 64, 128]),
        "layers": wattsweep.choice([1, 2, 3]),
        "lr": wattsweep.loguniform(1e-3, 3e-2),
    }
    result = wattsweep.sweep(
        train_mlp,
        space=space,
        fixed={"epochs": 8},
        objectives={"accuracy": "max", "energy_j": "min"},
        num_samples=args.num_samples,
        max_epochs=args.max_epochs,
        storage=args.storage,
        scheduler={"kind": "moasha", "reduction_factor": 3, "defer": True, "tie_break": "hypervolume"},
    )
    print(result.front[["trial_id", "hidden", "layers", "lr", "accuracy", "energy_j"]].to_string(index=False))
