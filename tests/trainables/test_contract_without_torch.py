"""A trainable that never imports torch runs under the contract in a process that never imports it (a worker
that imports torch holds ~300 MB more private memory), checkpoints and resumes; one that does keeps torch's format."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from trainables.contract import TrialPlan, run_contract
from trainables.ray_trainable import CHECKPOINT_FILE, CHECKPOINT_JSON, load_checkpoint_state, save_checkpoint_state

ROOT = Path(__file__).resolve().parents[2]

PLAIN = """
def train(config, ctx):
    for epoch in range(ctx.start_epoch + 1, ctx.epochs + 1):
        ctx.report({"accuracy": 0.5 + 0.1 * epoch})
"""


def test_a_trainable_without_torch_runs_checkpoints_and_resumes_in_a_process_without_torch(tmp_path: Path) -> None:
    (tmp_path / "plain_trainable.py").write_text(PLAIN)
    script = textwrap.dedent(
        """
        import sys, tempfile
        from trainables.contract import TrialPlan, run_contract
        from trainables.loader import load_trainable
        from trainables.ray_trainable import load_checkpoint_state, save_checkpoint_state

        fn = load_trainable("plain_trainable:train")
        plan = TrialPlan(trainable="plain_trainable:train")
        out = []
        run_contract(fn, {"epochs": 3}, plan, lambda m, s: out.append((m, s)))
        with tempfile.TemporaryDirectory() as d:
            save_checkpoint_state(out[0][1], d)  # as the Tune sink does, after epoch 1
            resume = load_checkpoint_state(d)
        again = []
        run_contract(fn, {"epochs": 3}, plan, lambda m, s: again.append((m, s)), resume=resume)
        assert [m["epoch"] for m, _ in again] == [2, 3], again
        assert again[0][0]["energy_j"] > out[0][0]["energy_j"]  # the counters went on from the checkpoint
        print("torch imported:", "torch" in sys.modules)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "torch imported: False" in p.stdout


def test_a_trainable_that_imports_torch_late_still_gets_a_torch_device(tmp_path: Path) -> None:
    seen = []

    def late(config: dict, ctx: object) -> None:
        seen.append(ctx.device)  # type: ignore[attr-defined]
        ctx.report({"accuracy": 0.5})  # type: ignore[attr-defined]

    run_contract(late, {"epochs": 1, "device": "cpu"}, TrialPlan(trainable=late), lambda m, s: None)
    assert seen == [torch.device("cpu")]


def test_a_checkpoint_with_the_users_state_keeps_torchs_format_one_without_is_json(tmp_path: Path) -> None:
    with_state = {"wattsweep": {"epoch": 2, "energy_j": 1.5}, "user": {"w": torch.arange(3.0)}}
    without = {"wattsweep": {"epoch": 2, "energy_j": 1.5}, "user": None}
    for name, state, file in (("a", with_state, CHECKPOINT_FILE), ("b", without, CHECKPOINT_JSON)):
        d = tmp_path / name
        d.mkdir()
        save_checkpoint_state(state, str(d))
        assert [p.name for p in d.iterdir()] == [file]
        back = load_checkpoint_state(str(d))
        assert back["wattsweep"] == state["wattsweep"]
    assert torch.equal(load_checkpoint_state(str(tmp_path / "a"))["user"]["w"], torch.arange(3.0))
