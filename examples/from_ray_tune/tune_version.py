"""An existing Ray Tune function trainable, before it moves to wattsweep (wattsweep_version.py is after).

python -m examples.from_ray_tune.tune_version [--num-samples N]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch
from ray import tune
from torch.nn import functional as F

from examples.from_ray_tune.common import load, mlp


def train_mlp(config):
    x, y, xv, yv = load()
    model = mlp(config["hidden"], config["layers"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            state = torch.load(os.path.join(d, "state.pt"))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"]
    for epoch in range(start + 1, config["epochs"] + 1):
        for idx in torch.randperm(len(x)).split(64):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (model(xv).argmax(1) == yv).float().mean().item()
        with tempfile.TemporaryDirectory() as d:
            torch.save(
                {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch}, os.path.join(d, "state.pt")
            )
            tune.report({"accuracy": acc}, checkpoint=tune.Checkpoint.from_directory(d))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--num-samples", type=int, default=12)
    args = p.parse_args()
    space = {
        "hidden": tune.choice([16, 32, 64, 128]),
        "layers": tune.choice([1, 2, 3]),
        "lr": tune.loguniform(1e-3, 3e-2),
        "epochs": 8,
    }
    tuner = tune.Tuner(
        train_mlp,
        param_space=space,
        tune_config=tune.TuneConfig(metric="accuracy", mode="max", num_samples=args.num_samples),
    )
    print(tuner.fit().get_best_result().config)
