"""Every bad input of ``export`` exits 2 naming what and why, a failure at export time exits 1, and neither leaves
anything half-written (tests/export/conftest.py's real runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import wattsweep
from rundir import read_run
from search_spaces import SpecError
from tests.export.conftest import run_cli
from tests.export.unexportable import Twisted

pytestmark = pytest.mark.slow


def _complete(run_dir: Path) -> str:
    return next(t.trial_id for t in read_run(run_dir).trials if t.state == "complete")


def _stopped(run_dir: Path) -> str:
    return next(t.trial_id for t in read_run(run_dir).trials if t.state == "stopped")


def _copy(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("exports"))
    return dest


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown trial", "--trial: got 'nope'; allowed: a trial of b ("),
        ("stopped trial", "allowed: a complete trial (one that ran its whole epoch budget); {stopped} is stopped"),
        ("unknown format", "--format: got 'pdf'; allowed: a comma-separated list of onnx, torchscript, int8"),
        ("unwritable out", "--out: got '{out}'; allowed: a directory this user can write"),
        ("no checkpoints", "there is none for trial {trial}"),
        ("not a run", "RUN_DIR: got '{tmp}'; allowed: a wattsweep run directory"),
        ("untrusted", "add --trust to export one you trust from elsewhere"),
    ],
)
def test_bad_input_exits_2_naming_it_and_writes_nothing(
    case: str, expected: str, builtin_run: Path, custom_run: Path, tmp_path: Path
) -> None:
    run, out, env = builtin_run, tmp_path / "out", {}
    args = ["--trial", _complete(builtin_run)]
    if case == "unknown trial":
        args = ["--trial", "nope"]
    elif case == "stopped trial":
        run, args = custom_run, ["--trial", _stopped(custom_run)]
    elif case == "unknown format":
        args += ["--format", "onnx,pdf"]
    elif case == "unwritable out":
        (tmp_path / "file").write_text("a file, not a directory")
        out = tmp_path / "file" / "out"
    elif case == "no checkpoints":
        run = _copy(builtin_run, tmp_path / "b")
        shutil.rmtree(run / "tune")
    elif case == "not a run":
        run = tmp_path
    elif case == "untrusted":
        env = {"XDG_CONFIG_HOME": str(tmp_path / "someone-else")}  # another user's key: the run is not theirs
    r = run_cli("export", str(run), *args, "--out", str(out), env=env)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    fill = {"stopped": args[-1], "out": out, "trial": args[-1], "tmp": tmp_path}
    assert expected.format(**fill) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_untrusted_run_exports_with_trust(builtin_run: Path, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "someone-else")}
    tid = _complete(builtin_run)
    r = run_cli(
        "export", str(builtin_run), "--trial", tid, "--format", "onnx", "--out", str(tmp_path), "--trust", env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / tid / "model.onnx").is_file()


def test_an_operator_onnx_cannot_export_exits_1_and_leaves_what_was_there(builtin_run: Path, tmp_path: Path) -> None:
    run = _copy(builtin_run, tmp_path / "b")
    tid = _complete(run)
    (final,) = (run / "tune" / f"trial_{tid}").glob("checkpoint_*/final_model.pt")
    torch.save({"model": Twisted(), "example": torch.zeros(1, 1, 8, 8)}, final)
    out = tmp_path / "out"
    (out / "earlier").mkdir(parents=True)
    (out / "earlier" / "model_card.json").write_text("{}")
    r = run_cli("export", str(run), "--trial", tid, "--out", str(out))
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"trial {tid}, onnx" in r.stderr and "wattsweep_test.twist" in r.stderr, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["earlier"]  # no staging, no half-written trial


def test_python_api_bad_input_raises_spec_error(builtin_run: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="trials: got 'best'; allowed: 'knee', 'front' or a list of trial ids"):
        wattsweep.export(builtin_run, trials="best", out=tmp_path / "out")
    with pytest.raises(SpecError, match="--format: got 'fp16'"):
        wattsweep.export(builtin_run, formats=["onnx", "fp16"], out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
