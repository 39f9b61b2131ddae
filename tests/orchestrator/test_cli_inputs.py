"""Issue 16, "nothing let in", at the CLI: every bad input exits 2 with the field named, no traceback, and
nothing written (the storage directory and its parent stay as they were). The same classes in-process are in
``tests/search_spaces/test_bad_inputs.py`` and ``tests/trainables/test_data_inputs.py``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = str(ROOT / "search_spaces/digits_resnet.yaml")


def _limit_memory() -> None:
    # why: a spec that explodes in memory must fail this test, not take the machine down with it
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def cli(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_memory,
    )


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def assert_refused(r: subprocess.CompletedProcess[str], field: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"wattsweep: error: {field}: got " in r.stderr, r.stderr[-2000:]


# --- 1. run names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "", "-rf", ".hidden", "a/b", "a\\b", "a\x01b", "x" * 101], ids=repr)
def test_a_bad_run_name_exits_2_and_writes_nothing(tmp_path: Path, name: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    r = cli(
        "sweep", DEFAULT, f"--name={name}", "--storage", str(store / "runs"), "--num-samples", "1", "--max-epochs", "1"
    )
    assert_refused(r, "--name")
    assert _tree(tmp_path) == ["store"]  # nothing in the storage, nothing beside it


@pytest.mark.parametrize("name", ["..", "''", "-rf"])
def test_a_bad_name_in_the_spec_exits_2_and_writes_nothing(tmp_path: Path, name: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: {name}\n")
    r = cli("sweep", str(spec), "--storage", str(tmp_path / "runs"), "--num-samples", "1", "--max-epochs", "1")
    assert_refused(r, "name")
    assert _tree(tmp_path) == ["spec.yaml"]


# --- 2. files that are not text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"# " + b"x" * 1_100_000 + b"\n"], ids=["binary", "over-1MB"]
)
def test_a_spec_that_is_not_small_text_exits_2(tmp_path: Path, content: bytes) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(content)
    for command in (["validate", str(spec)], ["sweep", str(spec), "--storage", str(tmp_path / "runs")]):
        assert_refused(cli(*command), "spec")
    assert _tree(tmp_path) == ["spec.yaml"]


# --- 3. specs that explode ---------------------------------------------------------------------------


def test_a_billion_laughs_spec_exits_2_quickly(tmp_path: Path) -> None:
    lines = ["description:", "  - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]  # 10**10 once expanded
    spec = tmp_path / "spec.yaml"
    spec.write_text("\n".join(lines) + "\n")
    r = cli("validate", str(spec), timeout=60)
    assert_refused(r, "spec")


def test_a_huge_int_range_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("space:\n  depth: {kind: int, low: 8, high: 600000000008, step: 6}\n")
    assert_refused(cli("validate", str(spec)), "space.depth.high")


# --- 4. numbers ----------------------------------------------------------------------------------------


def test_a_seed_numpy_cannot_take_exits_2_before_anything_is_written(tmp_path: Path) -> None:
    r = cli(
        "sweep",
        DEFAULT,
        "--seed",
        str(2**32),
        "--storage",
        str(tmp_path / "runs"),
        "--num-samples",
        "1",
        "--max-epochs",
        "1",
    )
    assert_refused(r, "--seed")
    spec = tmp_path / "spec.yaml"
    spec.write_text("sampler: {seed: 4294967296}\n")
    r = cli("sweep", str(spec), "--storage", str(tmp_path / "runs"), "--num-samples", "1", "--max-epochs", "1")
    assert_refused(r, "sampler.seed")
    assert _tree(tmp_path) == ["spec.yaml"]


def test_an_empty_name_flag_is_an_error_not_the_default_name(tmp_path: Path) -> None:
    r = cli(
        "sweep", DEFAULT, "--name", "", "--storage", str(tmp_path / "runs"), "--num-samples", "1", "--max-epochs", "1"
    )
    assert_refused(r, "--name")
    assert not (tmp_path / "runs").exists()


# --- 5. CSV data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "field", "named"),
    [
        ([f"{i},{'inf' if i == 3 else i},{i % 2}" for i in range(30)], "dataset.path", "'b'"),
        ([f"{i},{i},{i % 2}" for i in range(2)], "dataset.path", "rows"),
    ],
    ids=["infinity", "two-rows"],
)
def test_csv_data_that_cannot_train_exits_2(tmp_path: Path, rows: list[str], field: str, named: str) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"dataset: {{name: csv, path: {data}, target: label}}\nfixed: {{model: ffnn}}\n")
    for command in (["validate", str(spec)], ["sweep", str(spec), "--storage", str(tmp_path / "runs")]):
        r = cli(*command)
        assert_refused(r, field)
        assert named in r.stderr
    assert _tree(tmp_path) == ["data.csv", "spec.yaml"]


def test_an_unreachable_address_leaves_no_storage_directory(tmp_path: Path) -> None:
    storage = tmp_path / "not-yet"
    r = subprocess.run(
        [sys.executable, "-m", "orchestrator", "sweep", "--storage", str(storage), "--address", "127.0.0.1:1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "--address" in r.stderr, r.stderr[-2000:]
    assert not storage.exists()  # it was created before the address was checked


@pytest.mark.parametrize("objectives", ["accuracy", [{"metric": 5}], [{"metric": "accuracy", "direction": "up"}]])
def test_report_of_a_malformed_manifest_exits_2_naming_it(tmp_path: Path, objectives: object) -> None:
    from rundir import RunWriter

    w = RunWriter(tmp_path / "run")
    w.write_manifest({"name": "r", "spec": {"name": "r"}, "objectives": objectives})
    w.start_trial("t0", {"lr": 0.1}, 1)
    w.append_epoch("t0", {"epoch": 1, "accuracy": 0.5, "energy_j": 1.0})
    w.set_state("t0", "complete", epochs_run=1, budget_epochs=1)
    r = subprocess.run(
        [sys.executable, "-m", "orchestrator", "report", str(tmp_path / "run")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "RUN_DIR" in r.stderr and "objective" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
