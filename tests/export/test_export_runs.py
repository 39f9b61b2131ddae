"""Export from real runs (tests/export/conftest.py): artifacts that ONNX Runtime and TorchScript run, figures that
match the sweep's, the report after export, custom trainables, remote storage, and the final-state guarantee."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

import wattsweep
from rundir import read_run
from tests.export.conftest import run_cli

pytestmark = pytest.mark.slow


def _trials(run_dir: Path, **match: Any) -> list[str]:
    return [
        t.trial_id
        for t in read_run(run_dir).trials
        if all(t.config.get(k) == v for k, v in match.items() if k != "state")
        and t.state == match.get("state", t.state)
    ]


def _test_split() -> tuple[np.ndarray, np.ndarray]:
    from trainables.config import DatasetConfig
    from trainables.data import load_arrays

    arrays = load_arrays(DatasetConfig(name="digits"))
    return arrays.x_test.astype(np.float32), arrays.y_test


def test_a_complete_trial_keeps_its_final_state_a_stopped_one_nothing_extra(
    builtin_run: Path, custom_run: Path
) -> None:
    for run_dir in (builtin_run, custom_run):
        for t in read_run(run_dir).trials:
            checkpoints = sorted((run_dir / "tune" / f"trial_{t.trial_id}").glob("checkpoint_*"))
            assert len(checkpoints) == 1, (t.trial_id, checkpoints)  # num_to_keep=1: the latest only
            state = torch.load(checkpoints[0] / "trial_state.pt", weights_only=True)
            assert state["wattsweep"]["epoch"] == len(t.epochs)  # the checkpoint kept is the last epoch's
            has_final = (checkpoints[0] / "final_model.pt").is_file()
            watched = t.config.get("variant", "watched") == "watched"
            assert has_final == (t.state == "complete" and watched), (t.trial_id, t.state, t.config)
    assert _trials(custom_run, state="stopped"), "the custom sweep was meant to have a stopped trial"


def test_export_front_then_report(builtin_run: Path) -> None:
    r = run_cli("export", str(builtin_run), "--front")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    front = [row["trial_id"] for row in _csv(builtin_run / "report" / "pareto.csv")]
    exports = builtin_run / "exports"
    assert sorted(p.name for p in exports.iterdir()) == sorted(front)
    x, y = _test_split()
    for tid in front:
        card = json.loads((exports / tid / "model_card.json").read_text())
        files = {a["format"]: exports / tid / a["file"] for a in card["artifacts"]}
        assert set(files) == {"onnx", "torchscript", "int8"}
        for name, digest in card["files"].items():
            assert hashlib.sha256((exports / tid / name).read_bytes()).hexdigest() == digest
        for fmt in ("onnx", "int8"):  # loadable, and it runs: its accuracy here is the card's
            sess = ort.InferenceSession(str(files[fmt]), providers=["CPUExecutionProvider"])
            pred = sess.run(None, {sess.get_inputs()[0].name: x})[0].argmax(1)
            art = next(a for a in card["artifacts"] if a["format"] == fmt)
            assert (pred == y).mean() == pytest.approx(art["test_accuracy"], abs=1e-9)
        ts = torch.jit.load(str(files["torchscript"]))
        with torch.no_grad():
            assert (ts(torch.from_numpy(x)).argmax(1).numpy() == y).mean() == card["pytorch"]["test_accuracy"]
        onnx = next(a for a in card["artifacts"] if a["format"] == "onnx")
        assert abs(onnx["accuracy_change_points"]) <= 0.1  # fp32 ONNX = PyTorch on the test split
        assert card["pytorch"]["test_accuracy"] == pytest.approx(card["sweep_metrics"]["test_accuracy"], abs=1e-6)
        int8 = next(a for a in card["artifacts"] if a["format"] == "int8")
        assert int8["quantisation"]["mode"] == "static" and int8["quantisation"]["calibration_samples"] == 256
        assert int8["vs_fp32"]["latency_ratio"] > 0 and int8["bytes"] < onnx["bytes"]
        for a in card["artifacts"]:
            assert a["latency_ms"] > 0 and a["energy_j_per_1k"] > 0 and a["energy_source"]
            assert a["energy_estimated"] == a["energy_source"].startswith("estimated")
        assert card["provenance"]["final_model"].startswith(f"tune/trial_{tid}/checkpoint_")
    r = run_cli("report", str(builtin_run))
    assert r.returncode == 0, r.stderr[-3000:]
    md = (builtin_run / "report" / "report.md").read_text()
    assert "## Exports" in md and all(tid in md.split("## Exports")[1] for tid in front)
    html = (builtin_run / "report" / "index.html").read_text()
    assert "Exports" in html and "exported" in html
    # the interactive chart's data marks the exported trials with their formats, and only them
    island = json.loads(html.split('<script type="application/json" id="ws-explore-data">', 1)[1].split("</script>")[0])
    marked = {t: f for t, f in zip(island["trial_id"], island["exported"], strict=True) if f}
    assert marked == dict.fromkeys(front, "onnx, torchscript, int8")


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_structurally_pruned_model_exports_as_the_smaller_network(builtin_run: Path, tmp_path: Path) -> None:
    (tid,) = _trials(builtin_run, prune_method="structured", state="complete")
    result = wattsweep.export(builtin_run, trials=[tid], formats="onnx", out=tmp_path / "out")
    (card,) = result.cards
    sweep, onnx = card["sweep_metrics"], card["artifacts"][0]
    assert onnx["flops"] == sweep["effective_flops"] < sweep["flops"]  # the graph's FLOPs are the sweep's, pruned
    assert card["pytorch"]["params"] == sweep["params"]  # the smaller network, as the sweep counted it
    dense = _dense_params(card["config"])
    assert onnx["params"] < card["pytorch"]["params"] < dense
    assert sorted(p.name for p in (tmp_path / "out" / tid).iterdir()) == ["model.onnx", "model_card.json"]


def _dense_params(config: dict[str, Any]) -> int:
    from trainables.config import TrialConfig
    from trainables.models import build_model

    return sum(p.numel() for p in build_model(TrialConfig.from_mapping(config), (1, 8, 8), 10).parameters())


def test_unstructured_masks_are_folded_into_the_weights(builtin_run: Path, tmp_path: Path) -> None:
    tid = _trials(builtin_run, prune_method="unstructured", state="complete")[0]
    (card,) = wattsweep.export(builtin_run, trials=[tid], formats=["onnx"], out=tmp_path).cards
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(tmp_path / tid / "model.onnx")).graph
    zeros = sum(int((numpy_helper.to_array(t) == 0).sum()) for t in graph.initializer)
    assert card["pytorch"]["nonzero_params"] == card["sweep_metrics"]["params"]  # the sweep's non-zero count
    assert zeros >= card["pytorch"]["params"] - card["pytorch"]["nonzero_params"] > 0  # the pruned zeros, in the graph


def test_a_custom_trainable_that_hands_over_its_model_exports(custom_run: Path, tmp_path: Path) -> None:
    tid = _trials(custom_run, variant="watched", state="complete")[0]
    r = run_cli("export", str(custom_run), "--trial", tid, "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    card = json.loads((tmp_path / "out" / tid / "model_card.json").read_text())
    assert card["run"]["trainable"] == "tests.export.digits_mlp:train"
    assert card["test_split"]["samples"] == len(_test_split()[1])  # ctx.data's test split, the trial's own
    assert card["pytorch"]["test_accuracy"] == pytest.approx(card["sweep_metrics"]["test_accuracy"], abs=1e-6)
    assert {a["format"] for a in card["artifacts"]} == {"onnx", "torchscript", "int8"}
    assert card["pytorch"]["params"] == 64 * 16 + 16 + 16 * 10 + 10 == card["artifacts"][0]["params"]


def test_a_custom_trainable_that_does_not_is_told_what_to_hand_over(custom_run: Path, tmp_path: Path) -> None:
    tid = _trials(custom_run, variant="unwatched", state="complete")[0]
    r = run_cli("export", str(custom_run), "--trial", tid, "--out", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert f"--trial: got '{tid}'" in r.stderr and "ctx.watch(model, example_input)" in r.stderr
    assert not (tmp_path / "out").exists()


def test_export_from_a_uri_fetches_and_uploads(builtin_run: Path, tmp_path: Path) -> None:
    remote = tmp_path / "bucket" / "b"
    shutil.copytree(builtin_run, remote, ignore=shutil.ignore_patterns("exports"))
    tid = _trials(builtin_run, state="complete")[0]
    out = tmp_path / "local"
    r = run_cli("export", f"file://{remote}", "--trial", tid, "--format", "onnx", "--out", str(out))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (out / tid / "model.onnx").is_file() and (remote / "exports" / tid / "model_card.json").is_file()
    card = json.loads((out / tid / "model_card.json").read_text())
    assert (
        card["files"]["model.onnx"]
        == hashlib.sha256((remote / "exports" / tid / "model.onnx").read_bytes()).hexdigest()
    )


def test_the_export_benchmark_runs_on_a_run(builtin_run: Path) -> None:
    # why: keeps benchmarks/export_check.py from rotting (figures are not asserted: a shared, noisy machine)
    import os
    import subprocess
    import sys

    from tests.export.conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "benchmarks/export_check.py", str(builtin_run)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    for line in (
        "fp32 ONNX vs PyTorch, largest |change|: ",
        "int8/fp32 latency ratio: median ",
        "int8/fp32 energy ratio",
    ):
        assert line in r.stdout, r.stdout[-2000:]
