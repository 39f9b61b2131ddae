"""The README stays true: its test command is what CI runs, its spec example is a valid spec."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from search_spaces import parse_spec

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    found = re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)
    assert found, f"no ```{lang} block in the README"
    return found


def _first_block(lang: str) -> str:
    return _blocks(lang)[0]


def test_readme_starts_with_the_sweep_and_test_commands_ci_runs() -> None:
    commands = [line for line in _first_block("bash").splitlines() if line and not line.startswith("#")]
    assert commands == [
        "pip install -r requirements.txt && python -m orchestrator sweep",
        "pip install -r requirements-dev.txt && python -m pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci, ".ci/run must run exactly the README's test command"


def test_readme_spec_examples_are_valid_specs() -> None:
    specs = [parse_spec(yaml.safe_load(block), source="README.md") for block in _blocks("yaml")]
    custom = specs[0]  # your own trainable's, then the built-in's, then snippets of it
    (builtin,) = [s for s in specs if s.name == "my_sweep"]
    assert custom.trainable_ref == "examples.digits_cnn.model:train" and custom.cost is not None
    assert builtin.name == "my_sweep" and builtin.is_builtin
    assert builtin.scheduler.kind == "moasha" and builtin.energy.budget_j == 500 and builtin.tensorboard is False


def test_test_only_dependencies_stay_out_of_what_users_install() -> None:
    runtime = {
        re.split(r"[\[<>=!~ ]", line)[0].lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev.splitlines()
    assert not runtime & {"pytest", "pytest-timeout", "hypothesis", "moto", "optuna-dashboard"}, runtime
