"""Synthetic run directories written with the sweep's own RunWriter, in the calls its recorder makes.

Every epoch's energy metrics and every provenance record come from the real meters run against fake hardware
(``energy_rigs``): the standard run on a CPU node without RAPL (the labelled estimate), the mixed run on an A10G
node without RAPL and an L4 node with it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rundir import MANIFEST as MANIFEST_FILE
from rundir import RunWriter
from tests.reports.energy_rigs import Lab, TrialMeter, lab
from trainables import metrics as m

XSS = "<script>alert(1)</script>"
XSS_ID = "t-<img src=x onerror=alert(2)>"  # why: a trial id is a directory name, so it cannot hold a '/'

MANIFEST: dict[str, Any] = {
    "name": "synthetic",
    "objectives": [{"metric": "accuracy", "direction": "max"}, {"metric": "energy_j", "direction": "min"}],
    "num_samples": 20,
    "status": "finished",
    "created_at": "2026-11-24T10:00:00Z",
    "dataset": {"name": "digits"},
    "carbon": {"grid_g_per_kwh": 400, "pue": 1.5},
}
EPOCH_S = 2.0  # each synthetic epoch's wall time, s


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


def epoch_line(
    epoch: int, acc: float, energy: dict[str, Any], *, final: bool = False, budget: int = 3
) -> dict[str, Any]:
    """One epoch as the contract reports it: the trainable's numbers, the meter's energy metrics (``energy``)."""
    line: dict[str, Any] = {
        "epoch": epoch,
        "accuracy": acc,
        "test_accuracy": acc - 0.01,
        "loss": 1.0 / epoch,
        "val_loss": 1.1 / epoch,
        **energy,
        "params": 1000,
        "flops": 5e5,
        "effective_flops": 4e5,
        "sparsity": 0.0,
        "budget_epochs": budget,
    }
    if final:
        line["confusion_matrix"] = [[8, 1, 1], [0, 9, 1], [2, 0, 8]]
        line["layer_flops"] = {"conv1": 2e5, "layer1.0.conv1": 1e5, "layer1.0.conv2": 1e5, "fc": 1e4}
    return line


@contextlib.contextmanager
def cpu_node() -> Iterator[Callable[..., TrialMeter]]:
    """Open trials on a CPU node without RAPL (the labelled estimate), the standard run's machine."""
    with tempfile.TemporaryDirectory() as tmp, lab(Path(tmp)) as machines:
        node = machines.machine("cpu-node")
        yield lambda **kwargs: machines.trial(node, **kwargs)


def record_trial(
    w: RunWriter,
    tid: str,
    cfg: dict[str, Any],
    meter: TrialMeter,
    epochs: list[tuple[float, dict[str, float]]],
    state: str,
    *,
    budget: int = 3,
    error: str | None = None,
    seconds: float = EPOCH_S,
) -> None:
    """Write a trial as the sweep's recorder does: start_trial, per epoch append_epoch and set_state("running"),
    then the end state. ``epochs``: (accuracy, the hardware's use that epoch for ``meter.epoch``) per epoch."""
    w.start_trial(tid, cfg, budget)
    for e, (acc, use) in enumerate(epochs, 1):
        energy = meter.epoch(seconds, **use)
        last = e == budget  # why: the contract adds the final metrics (provenance, trace) at the budget's last epoch
        line = epoch_line(e, acc, energy, final=last, budget=budget) | (meter.final() if last else {})
        w.append_epoch(tid, line)
        w.set_state(tid, "running", epochs_run=e, budget_epochs=budget)
        manifest = json.loads((w.run_dir / MANIFEST_FILE).read_text()) if (w.run_dir / MANIFEST_FILE).exists() else None
        if manifest is not None and m.ENERGY_SOURCE not in manifest:  # the recorder, on the run's first result
            w.update_manifest(energy_source=energy[m.ENERGY_SOURCE], energy_estimated=energy[m.ENERGY_ESTIMATED])
    meter.stop()
    if state != "running":
        w.set_state(tid, state, epochs_run=len(epochs), budget_epochs=budget, error=error)  # type: ignore[arg-type]


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
    trial: Callable[..., TrialMeter] | None = None,
) -> None:
    """A trial on a CPU node whose cumulative energy after each epoch is ``energies`` (J, the estimate's)."""
    used = [b - a for a, b in itertools.pairwise([0.0, *energies])]
    epochs = [(acc, {"cpu_j": j}) for acc, j in zip(accs, used, strict=True)]
    if trial is not None:
        record_trial(w, tid, cfg, trial(), epochs, state, budget=budget, error=error)
        return
    with cpu_node() as open_trial:
        record_trial(w, tid, cfg, open_trial(), epochs, state, budget=budget, error=error)


def make_run(root: Path, *, manifest: dict[str, Any] | None = None, n_complete: int = 16) -> Path:
    """complete trials over depth x width x shortcut x prune, plus stopped, failed, running and corrupt ones."""
    w = RunWriter(root)
    w.write_manifest(manifest or MANIFEST)
    rng = np.random.default_rng(0)
    grid = itertools.cycle(itertools.product((8, 16), (0.0, 0.5), (True, False), (8, 14, 20)))
    with cpu_node() as trial:
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
            accs = [final_acc - 0.1, final_acc - 0.03, final_acc]
            write_trial(w, f"t{i:03d}", cfg, accs, [energy / 3, 2 * energy / 3, energy], "complete", trial=trial)
        # stopped early: better and cheaper than anything complete, so it must NOT reach the front
        write_trial(w, "t_stopped", config(depth=20), [0.99], [1.0], "stopped", trial=trial)
        error = "RuntimeError: CUDA out of memory"
        write_trial(w, "t_failed", config(depth=14), [0.3], [40.0], "failed", error=error, trial=trial)
        write_trial(w, "t_running", config(depth=8), [0.5, 0.55], [30.0, 60.0], "running", trial=trial)
        write_trial(w, "t_corrupt", config(depth=8), [0.5], [20.0], "complete", trial=trial)
    with open(root / "trials" / "t_corrupt" / "epochs.jsonl", "a") as f:
        f.write('{"epoch": 2, "accuracy": 0.9, "energy_j"\n')  # the line a killed writer leaves
    (root / "trials" / "t_corrupt" / "state.json").unlink()
    return root


# The mixed cluster: an A10G node whose RAPL is hidden (a VM: the host CPU is estimated, beside the measured GPU)
# and an L4 node with RAPL (CPU package and DRAM measured, shared by CPU time between concurrent trials).
A10G, L4 = "NVIDIA A10G", "NVIDIA L4"
MIXED_DEPTHS = (8, 14, 20)
MIXED_LRS = (1e-3, 3e-3)
A10G_RATIOS = (0.97, 0.98, 0.99, 1.00, 1.01, 1.02)  # crosscheck ratio of each complete A10G trial: median 0.995
A10G_LIMIT_W, L4_LIMIT_W = 300.0, 72.0


def _machines(machines: Lab) -> dict[str, Any]:
    return {
        A10G: machines.machine("a10g", gpu=A10G, n_gpus=2, power_limit_w=A10G_LIMIT_W, gpu_idle_w=20.0),
        L4: machines.machine("l4", gpu=L4, n_gpus=2, rapl=True, power_limit_w=L4_LIMIT_W, gpu_idle_w=16.0),
    }


def make_mixed_gpu_run(root: Path, machines_root: Path) -> Path:
    """Six complete trials on each GPU model (same configs), one stopped on the L4, one failed on the A10G.

    The L4 trials cost less energy; the A10G's deepest trial is the most accurate of all, so the front spans both.
    """
    w = RunWriter(root)
    w.write_manifest(MANIFEST | {"name": "mixed", "num_samples": 14})
    with lab(machines_root) as machines:
        nodes = _machines(machines)
        for i, (depth, lr) in enumerate(itertools.product(MIXED_DEPTHS, MIXED_LRS)):
            acc = 0.80 + 0.006 * depth - 2 * lr
            cfg = config(depth=depth, lr=lr, device="cuda")
            # the counter sees 150 W whatever the ratio; the power readings are off by the ratio
            a10g = machines.trial(
                nodes[A10G],
                gpu=i % 2,
                gpu_w=150.0 * A10G_RATIOS[i],
                crosscheck_ratio=A10G_RATIOS[i],
                temperature_c=(40 + i, 70),
            )
            best = 0.02 if depth == 20 and lr == MIXED_LRS[0] else 0.0
            epochs = [(acc - 0.02 * (3 - e) + best, {"cpu_j": 8.0 * depth / 8}) for e in range(1, 4)]
            record_trial(w, f"a{i:02d}", cfg, a10g, epochs, "complete", seconds=EPOCH_S * depth / 8)
            l4 = machines.trial(nodes[L4], gpu=i % 2, gpu_w=60.0, temperature_c=(35 + i, 60))
            epochs = [(acc - 0.02 * (3 - e), {"cpu_j": 6.0 * depth / 8, "dram_j": 1.0}) for e in range(1, 4)]
            record_trial(w, f"l{i:02d}", cfg, l4, epochs, "complete", seconds=EPOCH_S * 1.5 * depth / 8)
        stopped = machines.trial(nodes[L4], gpu=0, gpu_w=60.0)
        record_trial(
            w, "l_stopped", config(depth=20, device="cuda"), stopped, [(0.99, {"cpu_j": 5.0, "dram_j": 1.0})], "stopped"
        )
        failed = machines.trial(nodes[A10G], gpu=1, gpu_w=150.0)
        error = "RuntimeError: CUDA error: an illegal memory access was encountered"
        record_trial(
            w, "a_failed", config(depth=14, device="cuda"), failed, [(0.4, {"cpu_j": 5.0})], "failed", error=error
        )
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
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run on two GPU models (A10G and L4), written once per session."""
    tmp = tmp_path_factory.mktemp("mixed")
    return make_mixed_gpu_run(tmp / "run", tmp / "machines")


@pytest.fixture(scope="session")
def mixed_report(mixed_run: Path) -> Path:
    """The report of the mixed A10G / L4 run (built once per session)."""
    from reports import build_report

    return build_report(mixed_run)


@pytest.fixture(scope="session")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a run whose name, a trial id and config values carry markup."""
    from reports import build_report

    root = make_run(
        tmp_path_factory.mktemp("hostile") / "run", manifest=MANIFEST | {"name": f"run {XSS}"}, n_complete=6
    )
    # best accuracy at the lowest energy: this trial is the front's best point and shows everywhere
    # (three epochs: a meter without a power sampler traces one point per epoch, and the knee's figure needs two)
    write_trial(RunWriter(root), XSS_ID, config(init=XSS, note=XSS), [0.9, 0.93, 0.95], [2.0, 4.0, 5.0], "complete")
    return build_report(root)
