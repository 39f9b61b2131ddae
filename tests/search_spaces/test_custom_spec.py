"""Specs of a user's own trainable: any keys, any reported metric as objective, and every bad
``trainable:`` refused with exit 2 before Ray starts and before anything is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import EXIT_BAD_INPUT, main
from search_spaces import SpecError, parse_spec

REF = "tests.fixtures.custom_trainable:train"


def _raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "trainable": REF,
        "fixed": {"epochs": 3, "act": "relu"},
        "space": {
            "hidden": {"kind": "int", "low": 8, "high": 32, "step": 8},
            "lr": {"kind": "loguniform", "low": 1e-3, "high": 1e-1},
        },
        "objectives": [{"metric": "f1", "direction": "max"}, {"metric": "energy_j"}],
    }
    raw.update(changes)
    return raw


def test_custom_keys_and_objectives_are_accepted() -> None:
    spec = parse_spec(_raw())
    assert not spec.is_builtin and spec.trainable_ref == REF and spec.dataset is None
    assert [p.name for p in spec.space] == ["hidden", "lr"]
    assert [(o.metric, o.direction) for o in spec.objectives] == [("f1", "max"), ("energy_j", "min")]
    assert spec.budget_epochs() == 3
    assert spec.full_config({"hidden": 8, "lr": 0.01, "epochs": 3}) == {"hidden": 8, "lr": 0.01, "epochs": 3}
    assert spec.name == "train"  # a spec without a name or file is named after the function


@pytest.mark.parametrize(
    ("trainable", "why"),
    [
        ("no_such_module_xyz:train", "no module named 'no_such_module_xyz'"),
        ("tests.fixtures.custom_trainable:nope", "has no attribute 'nope'"),
        ("tests.fixtures.custom_trainable:NOT_A_FUNCTION", "is a int, not callable"),
        ("tests.fixtures.custom_trainable:wrong_signature", "its signature is wrong_signature(config"),
        ("tests.fixtures.custom_trainable", "package.module:function"),
        (42, "package.module:function"),
    ],
)
def test_bad_trainable_names_the_field_value_and_what_is_expected(trainable: Any, why: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_spec(_raw(trainable=trainable))
    assert e.value.field == "trainable" and str(trainable) in str(e.value) and why in str(e.value)
    assert "train(config, ctx)" in str(e.value)


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        ({"objectives": [{"metric": "f1"}]}, "objectives[0].direction", "max or min"),
        ({"objectives": [{"metric": "not a name", "direction": "max"}]}, "objectives[0].metric", "a metric"),
        ({"fixed": {"act": "relu"}}, "fixed.epochs", "epoch budget"),
        ({"space": {"act": {"kind": "choice", "values": [[1, 2]]}}}, "space.act.values", "numbers, strings"),
        ({"space": {"hidden": {"kind": "int", "low": "a", "high": 3}}}, "space.hidden.kind", "choice"),
        ({"fixed": {"epochs": 0}}, "fixed.epochs", "an integer >= 1"),
        ({"cost": "tests.fixtures.custom_trainable:train"}, "cost", "cost(config) -> float"),
    ],
)
def test_bad_custom_spec_values(changes: dict[str, Any], field: str, allowed: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_spec(_raw(**changes))
    assert e.value.field == field and allowed in str(e.value), str(e.value)


def test_cli_refuses_a_bad_trainable_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("trainable: tests.fixtures.custom_trainable:nope\nfixed: {epochs: 2}\n")
    storage = tmp_path / "runs"
    code = main(["sweep", str(spec), "--storage", str(storage), "--name", "x"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "trainable: got 'tests.fixtures.custom_trainable:nope'" in err and "has no attribute 'nope'" in err
    assert "Traceback" not in err
    assert not storage.exists()  # refused before the run directory (or Ray) existed


def test_set_takes_a_custom_trainables_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"trainable: {REF}\nfixed: {{epochs: 1, act: tanh, lr: 0.01}}\n"
        "space: {hidden: {kind: choice, values: [8, 16]}}\n"
        "objectives: [{metric: f1, direction: max}]\n"
    )
    assert main(["trial", str(spec), "--set", "hidden=16"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"hidden": 16' in out and '"f1":' in out
    assert main(["trial", str(spec), "--set", "depth=8"]) == EXIT_BAD_INPUT
    assert "--set depth" in capsys.readouterr().err
