"""The CLI's contract: exit codes, messages naming the field, nothing written on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = str(ROOT / "search_spaces/digits_resnet.yaml")


def cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def write_spec(tmp_path: Path, text: str) -> str:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return str(p)


def test_validate_ok() -> None:
    r = cli("validate")  # SPEC defaults to the default spec, as for sweep
    assert r.returncode == 0, r.stderr
    assert "digits_resnet.yaml: ok" in r.stdout
    # the default spec: grace period 1, eta 3, 9 epochs
    assert "early stopping: moasha, rungs at epoch 1, 3 of 9:" in r.stdout
    assert "a trial runs 2.3 of its 9 epochs on average (0.26 of the budget)" in r.stdout


@pytest.mark.parametrize(
    ("scheduler", "says"),
    [
        ("{kind: fifo}", "early stopping: none (scheduler fifo): every trial runs its 4 epochs"),
        ("{kind: moasha, grace_period: 4}", "early stopping: none: moasha's grace_period 4 is the whole budget"),
        ("{kind: moasha, reduction_factor: 2}", "rungs at epoch 1, 2 of 4: if exactly the top 1/2 goes on"),
    ],
)
def test_validate_says_what_early_stopping_saves(tmp_path: Path, scheduler: str, says: str) -> None:
    r = cli("validate", write_spec(tmp_path, f"name: x\nfixed: {{epochs: 4}}\nscheduler: {scheduler}\n"))
    assert r.returncode == 0, r.stderr
    assert says in r.stdout


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("name: x\nbogus: 1\n", "bogus", "1"),
        ("name: x\nfixed: {depth: 'deep'}\n", "fixed.depth", "deep"),
        ("name: x\nspace: {lr: {kind: uniform, low: 0.5, high: 0.1}}\n", "space.lr.low", "0.5"),
        ("name: x\nfixed: {lr: -1}\n", "fixed.lr", "-1"),
        ("name: x\nfixed: {prune_ratio: 1.5}\n", "fixed.prune_ratio", "1.5"),
        ("name: x\ndataset: {name: imagenet}\n", "dataset.name", "imagenet"),
        ("name: x\nfixed: {model: vgg}\n", "fixed.model", "vgg"),
        ("name: x\nsampler: {kind: grid}\n", "sampler.kind", "grid"),
        ("name: x\nobjectives: [{metric: joy, direction: max}]\n", "objectives[0].metric", "joy"),
        ("name: x\ntensorboard: sometimes\n", "tensorboard", "sometimes"),
    ],
)
def test_bad_spec_exits_2_naming_field(tmp_path: Path, text: str, field: str, value: str) -> None:
    spec = write_spec(tmp_path, text)
    for command in (["validate", spec], ["sweep", spec, "--storage", str(tmp_path / "runs")]):
        r = cli(*command)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert field in r.stderr and value in r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()  # nothing written


def test_missing_spec_file(tmp_path: Path) -> None:
    r = cli("sweep", str(tmp_path / "missing.yaml"), "--storage", str(tmp_path / "runs"))
    assert r.returncode == 2
    assert "missing.yaml" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "flag", [["--num-samples", "0"], ["--max-epochs", "-1"], ["--num-samples", "many"], ["--seed", "x"]]
)
def test_bad_flags_exit_2(tmp_path: Path, flag: list[str]) -> None:
    r = cli("sweep", "--storage", str(tmp_path / "runs"), *flag)
    assert r.returncode == 2
    assert flag[0] in r.stderr and flag[1] in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()


def test_unwritable_storage_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = cli("sweep", "--storage", str(blocker / "runs"), "--num-samples", "1")
    assert r.returncode == 2
    assert "--storage" in r.stderr and "Traceback" not in r.stderr


def test_report_on_non_run_exits_2(tmp_path: Path) -> None:
    for path in (tmp_path / "absent", tmp_path):
        r = cli("report", str(path))
        assert r.returncode == 2
        assert str(path) in r.stderr and "Traceback" not in r.stderr


def test_trial_bad_set_exits_2() -> None:
    r = cli("trial", DEFAULT, "--set", "depth=9")
    assert r.returncode == 2 and "depth" in r.stderr and "6n+2" in r.stderr
    r = cli("trial", DEFAULT, "--set", "colour=red")
    assert r.returncode == 2 and "colour" in r.stderr


def test_trial_runs_one_config_and_prints_json() -> None:
    r = cli("trial", DEFAULT, "--set", "epochs=2", "--set", "width=8", "--set", "prune_ratio=0.3")
    assert r.returncode == 0, r.stderr
    final = json.loads(r.stdout.strip().splitlines()[-1])
    assert final["epoch"] == 2 and final["epochs"] == 2 and final["width"] == 8
    assert 0.0 <= final["test_accuracy"] <= 1.0
    assert final["accuracy"] > 0.3  # two epochs on digits already learn something
    assert final["energy_j"] > 0 and final["energy_source"] == "estimated-cpu"
    assert final["params"] > 0 and final["flops"] > 0


def test_doctor_explains_why_energy_is_estimated() -> None:
    r = cli("doctor")
    assert r.returncode == 0, r.stderr
    # this test machine has no NVIDIA GPU and no readable RAPL: the estimate must say so, with a reason per backend
    assert "estimate" in r.stdout
    for backend in ("nvml", "rapl"):
        assert any(line.startswith(f"energy {backend}") for line in r.stdout.splitlines()), r.stdout
