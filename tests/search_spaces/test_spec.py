"""Spec loading and validation: good specs load into frozen objects, bad ones name the field."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from search_spaces import SpecError, load_spec, parse_set, parse_spec

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "search_spaces").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_specs_load(path: Path) -> None:
    spec = load_spec(path)
    assert spec.num_samples >= 1
    spec.trial_config()  # the defaults build


def test_default_spec_contents() -> None:
    spec = load_spec(ROOT / "search_spaces/digits_resnet.yaml")
    names = {p.name for p in spec.space}
    assert {"depth", "width", "lr", "prune_ratio"} <= names
    assert [(o.metric, o.direction) for o in spec.objectives] == [("accuracy", "max"), ("energy_j", "min")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.num_samples = 3  # type: ignore[misc]


def test_defaults_and_overrides() -> None:
    spec = parse_spec(
        {
            "name": "t",
            "fixed": {"epochs": 3},
            "space": {"lr": {"kind": "loguniform", "low": 1e-4, "high": 1e-1, "default": 0.01}},
        }
    )
    assert spec.trial_config().lr == 0.01
    assert spec.trial_config({"lr": 0.5, "epochs": 7}).epochs == 7


def test_objectives_default() -> None:
    spec = parse_spec({"name": "t"})
    assert [(o.metric, o.direction) for o in spec.objectives] == [("accuracy", "max"), ("energy_j", "min")]


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"colour": "red"}, "colour", "red"),
    ({"num_samples": "many"}, "num_samples", "many"),
    ({"num_samples": 0}, "num_samples", "0"),
    ({"space": {"lr": {"kind": "uniform", "low": 0.1, "high": 0.01}}}, "space.lr.low", "0.1"),
    ({"space": {"lr": {"kind": "loguniform", "low": -0.1, "high": 0.01}}}, "space.lr.low", "-0.1"),
    ({"fixed": {"lr": 0}}, "fixed.lr", "0"),
    ({"space": {"prune_ratio": {"kind": "uniform", "low": 0.0, "high": 1.0}}}, "space.prune_ratio.high", "1.0"),
    ({"fixed": {"prune_ratio": -0.1}}, "fixed.prune_ratio", "-0.1"),
    ({"dataset": {"name": "imagenet"}}, "dataset.name", "imagenet"),
    ({"fixed": {"model": "vgg"}}, "fixed.model", "vgg"),
    (
        {"space": {"model": {"kind": "choice", "values": ["resnet", "transformer"]}}},
        "space.model.values",
        "transformer",
    ),
    ({"sampler": {"kind": "cmaes"}}, "sampler.kind", "cmaes"),
    ({"sampler": {"kind": "random", "cheap_start": -1}}, "sampler.cheap_start", "-1"),
    ({"sampler": {"kind": "random", "cheap_start": 2.5}}, "sampler.cheap_start", "2.5"),
    ({"sampler": {"cheap_start": 4, "cheap_start_candidates": 1}}, "sampler.cheap_start_candidates", "1"),
    ({"objectives": [{"metric": "speed", "direction": "max"}]}, "objectives[0].metric", "speed"),
    ({"objectives": [{"metric": "accuracy", "direction": "up"}]}, "objectives[0].direction", "up"),
    ({"space": {"depth": {"kind": "choice", "values": [8, 10]}}}, "space.depth", "10"),
    ({"fixed": {"depth": 9}}, "fixed.depth", "9"),
    ({"dataset": {"name": "wine"}}, "model", "resnet"),
    ({"fixed": {"epochs": "ten"}}, "fixed.epochs", "ten"),
    ({"space": {"colour": {"kind": "choice", "values": [1]}}}, "space.colour", ""),
    ({"space": {"lr": {"kind": "gaussian", "low": 1, "high": 2}}}, "space.lr.kind", "gaussian"),
    ({"fixed": {"lr": 0.1}, "space": {"lr": {"kind": "uniform", "low": 0.1, "high": 0.2}}}, "space.lr", ""),
    ({"resources": {"gpu": 1.5}}, "resources.gpu", "1.5"),
    ({"resources": {"gpu": -0.5}}, "resources.gpu", "-0.5"),
]


@pytest.mark.parametrize("gpu", [0, 0.25, 0.5, 1, 2, "auto"])
def test_gpu_requests_ray_can_schedule(gpu: Any) -> None:
    assert parse_spec({"name": "g", "resources": {"gpu": gpu}}).resources.gpu == gpu


@pytest.mark.parametrize(("patch", "field", "value"), BAD, ids=[b[1] for b in BAD])
def test_bad_specs_name_the_field(patch: dict[str, Any], field: str, value: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "bad", **patch})
    assert field in str(info.value)
    assert value in str(info.value)
    assert "allowed" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec"):
        load_spec(tmp_path / "nope.yaml")


def test_yaml_syntax_error(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nspace: [unclosed\n")
    with pytest.raises(SpecError, match="line"):
        load_spec(p)


def test_parse_set_types() -> None:
    assert parse_set(["depth=14", "lr=1e-3", "shortcut=false", "model=ffnn"]) == {
        "depth": 14,
        "lr": 0.001,
        "shortcut": False,
        "model": "ffnn",
    }
    with pytest.raises(SpecError, match="colour"):
        parse_set(["colour=red"])
    with pytest.raises(SpecError, match="--set"):
        parse_set(["depth"])


def test_with_overrides_validates() -> None:
    spec = parse_spec({"name": "t"})
    assert spec.with_overrides(num_samples=3, seed=5).sampler.seed == 5
    with pytest.raises(SpecError, match="--name"):
        spec.with_overrides(name="../escape")


def test_roundtrip_yaml(tmp_path: Path) -> None:
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({"space": {"width": {"kind": "int", "low": 8, "high": 32, "step": 8}}}))
    spec = load_spec(p)
    assert spec.name == "mine"
    assert list(spec.space[0].candidates()) == [8, 16, 24, 32]
