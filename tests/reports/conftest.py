"""Synthetic run directories written with the sweep's own RunWriter."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reports.rundir import RunWriter

XSS = "<script>alert(1)</script>"
XSS_ID = "t-<img src=x onerror=alert(2)>"  # why: a trial id is a directory name, so it cannot hold a '/'

MANIFEST: dict[str, Any] = {
    "name": "synthetic",
    "objectives": [{"metric": "accuracy", "direction": "max"}, {"metric": "energy_j", "direction": "min"}],
    "num_samples": 20,
    "status": "finished",
    "created_at": "2026-11-24T10:00:00Z",
    "dataset": {"name": "digits"},
    "energy": {"source": "estimated-cpu", "estimated": True, "model": "TDP x utilisation"},
    "carbon": {"grid_g_per_kwh": 400, "pue": 1.5},
}


def config(**over: Any) -> dict[str, Any]:
    base = {
        "model": "resnet",
        "depth": 8,
        "width": 16,
        "shortcut": True,
        "init": "xavier",
        "lr": 1e-3,
        "optimizer": "adam",
        "momentum": 0.9,
        "weight_decay": 0.0,
        "lr_decay": "cosine",
        "batch_size": 64,
        "epochs": 3,
        "prune_ratio": 0.0,
        "prune_method": "unstructured",
        "prune_every": 5,
        "prune_schedule": "cubic",
        "seed": 0,
        "device": "cpu",
    }
    return base | over


def epoch_line(epoch: int, acc: float, energy: float, *, final: bool = False, budget: int = 3) -> dict[str, Any]:
    line: dict[str, Any] = {
        "epoch": epoch,
        "accuracy": acc,
        "test_accuracy": acc - 0.01,
        "loss": 1.0 / epoch,
        "val_loss": 1.1 / epoch,
        "energy_j": energy,
        "dynamic_energy_j": 0.8 * energy,
        "energy_source": "estimated-cpu",
        "energy_estimated": True,
        "time_s": 2.0 * epoch,
        "params": 1000,
        "flops": 5e5,
        "effective_flops": 4e5,
        "sparsity": 0.0,
        "budget_epochs": budget,
    }
    if final:
        line["confusion_matrix"] = [[8, 1, 1], [0, 9, 1], [2, 0, 8]]
        line["layer_flops"] = {"conv1": 2e5, "layer1.0.conv1": 1e5, "layer1.0.conv2": 1e5, "fc": 1e4}
        line["power_trace"] = {
            "t_s": [0.0, 1.0, 2.0, 3.0],
            "watts": [20.0, 35.0, 33.0, 30.0],
            "source": "estimated-cpu",
        }
    return line


def write_trial(
    w: RunWriter,
    tid: str,
    cfg: dict[str, Any],
    accs: list[float],
    energies: list[float],
    state: str,
    *,
    budget: int = 3,
    error: str | None = None,
) -> None:
    w.start_trial(tid, cfg, budget)
    for e, (a, en) in enumerate(zip(accs, energies, strict=True), 1):
        w.append_epoch(tid, epoch_line(e, a, en, final=(state == "complete" and e == len(accs)), budget=budget))
    if state != "running":
        w.set_state(tid, state, epochs_run=len(accs), budget_epochs=budget, error=error)  # type: ignore[arg-type]


def make_run(root: Path, *, manifest: dict[str, Any] | None = None, n_complete: int = 16) -> Path:
    """complete trials over depth x width x shortcut x prune, plus stopped, failed, running and corrupt ones."""
    w = RunWriter(root)
    w.write_manifest(manifest or MANIFEST)
    rng = np.random.default_rng(0)
    grid = itertools.cycle(itertools.product((8, 16), (0.0, 0.5), (True, False), (8, 14, 20)))
    for i in range(n_complete):
        width, prune, shortcut, depth = next(grid)
        model = "ffnn" if i % 5 == 4 else "resnet"
        cfg = config(
            model=model,
            depth=depth,
            width=width,
            shortcut=shortcut,
            prune_ratio=prune,
            lr=float(10 ** rng.uniform(-4, -2)),
        )
        final_acc = 0.6 + 0.02 * depth / 2 + 0.01 * width / 8 - 0.05 * prune + float(rng.normal(0, 0.01))
        energy = 50.0 * depth * width / 8 * (1 - 0.4 * prune) * (1 + float(rng.uniform(0, 0.1)))
        write_trial(
            w,
            f"t{i:03d}",
            cfg,
            [final_acc - 0.1, final_acc - 0.03, final_acc],
            [energy / 3, 2 * energy / 3, energy],
            "complete",
        )
    # stopped early: better and cheaper than anything complete, so it must NOT reach the front
    write_trial(w, "t_stopped", config(depth=20), [0.99], [1.0], "stopped")
    write_trial(w, "t_failed", config(depth=14), [0.3], [40.0], "failed", error="RuntimeError: CUDA out of memory")
    write_trial(w, "t_running", config(depth=8), [0.5, 0.55], [30.0, 60.0], "running")
    write_trial(w, "t_corrupt", config(depth=8), [0.5], [20.0], "complete")
    with open(root / "trials" / "t_corrupt" / "epochs.jsonl", "a") as f:
        f.write('{"epoch": 2, "accuracy": 0.9, "energy_j"\n')  # the line a killed writer leaves
    (root / "trials" / "t_corrupt" / "state.json").unlink()
    return root


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run")


@pytest.fixture
def make_run_dir() -> Callable[..., Path]:
    """make_run, for tests that need their own variant of the synthetic run."""
    return make_run


@pytest.fixture
def trial_writer() -> Callable[..., None]:
    """write_trial, for tests that add their own trials."""
    return write_trial


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the standard synthetic run (built once per session)."""
    from reports import build_report

    return build_report(make_run(tmp_path_factory.mktemp("built") / "run"))


@pytest.fixture(scope="session")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a run whose name, a trial id and config values carry markup."""
    from reports import build_report

    root = make_run(
        tmp_path_factory.mktemp("hostile") / "run", manifest=MANIFEST | {"name": f"run {XSS}"}, n_complete=6
    )
    # best accuracy at the lowest energy: this trial is the front's best point and shows everywhere
    write_trial(RunWriter(root), XSS_ID, config(init=XSS, note=XSS), [0.95], [5.0], "complete", budget=1)
    return build_report(root)
