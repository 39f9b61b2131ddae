"""The README stays true: its test command is what CI runs, its spec example is a valid spec."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from search_spaces import parse_spec

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _first_block(lang: str) -> str:
    match = re.search(rf"```{lang}\n(.*?)```", README, flags=re.S)
    assert match, f"no ```{lang} block in the README"
    return match.group(1)


def test_readme_starts_with_the_sweep_and_test_commands_ci_runs() -> None:
    commands = [line for line in _first_block("bash").splitlines() if line and not line.startswith("#")]
    assert commands == [
        "pip install -r requirements.txt && python -m orchestrator sweep",
        "pip install -r requirements.txt && python -m pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci, ".ci/run must run exactly the README's test command"


def test_readme_spec_example_is_a_valid_spec() -> None:
    raw = yaml.safe_load(_first_block("yaml"))
    spec = parse_spec(raw, source="README.md")
    assert spec.name == "my_sweep"
    assert spec.scheduler.kind == "moasha" and spec.energy.budget_j == 500 and spec.tensorboard is False
