"""Sweep specs: YAML in, frozen typed objects out, validated before Ray starts.

A spec names the dataset, the trial settings held fixed, the settings searched
(each with a kind and a default), the objectives, the sampler, the number of
trials and the resources per trial. Every error is a ``SpecError`` naming the
field (dotted path), the bad value and what is allowed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from search_spaces._check import (
    NUM_SAMPLES_MAX,
    SPEC_NAME_MAX,
    SpecError,
    _bool,
    _check_name,
    _int,
    _mapping,
    parse_loggers,
    parse_optuna_storage,
)
from search_spaces._sections import (
    _check_key,
    _check_key_value,
    _parse_cost,
    _parse_dataset,
    _parse_energy,
    _parse_objectives,
    _parse_param,
    _parse_resources,
    _parse_sampler,
    _parse_scheduler,
    _parse_trainable,
)
from search_spaces._types import SweepSpec
from trainables.config import TRIAL_KEYS, ConfigError, TrialConfig, check_compatible
from trainables.loader import BUILTIN, reference

TOP_KEYS = (
    "name",
    "trainable",
    "cost",
    "description",
    "dataset",
    "fixed",
    "space",
    "objectives",
    "sampler",
    "num_samples",
    "resources",
    "scheduler",
    "energy",
    "tensorboard",
    "loggers",
    "optuna_storage",
)

# why: a spec is a page of YAML; reading more than this (a binary file, /proc, a log passed by mistake) is a
# mistake, and a capped read ends even on input that never does
SPEC_MAX_BYTES = 1_000_000
# why: PyYAML builds an alias as a reference, but everything that walks the spec (str, the manifest's JSON)
# expands it: ten levels of ten aliases are 10**10 values. A spec has hundreds; aliases may repeat a few
YAML_MAX_VALUES = 100_000


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader with bounds: the document, its aliases expanded, holds at most ``YAML_MAX_VALUES``
    values (no alias bomb, no recursive alias), and an integer is one Python can print."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expanded_size(node)
        return node

    def construct_yaml_int(self, node: Any) -> int:
        try:
            value = super().construct_yaml_int(node)
            repr(value)  # why: past Python's int-to-str digit limit, every message and str() would raise
        except ValueError:
            problem = f"an integer of at most {sys.get_int_max_str_digits()} digits"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None
        return int(value)


_SpecLoader.add_constructor("tag:yaml.org,2002:int", _SpecLoader.construct_yaml_int)


def _check_expanded_size(root: Any) -> None:
    """Count the values under ``root`` as if every alias were expanded; stop at the bound (so a recursive
    alias, which never ends, is refused too). Iterative: a deep document must not exhaust the stack here."""
    stack, count = [root], 0
    while stack:
        node = stack.pop()
        count += 1
        if count > YAML_MAX_VALUES:
            problem = f"at most {YAML_MAX_VALUES} values, counting an alias as all it repeats (no alias bomb)"
            raise yaml.composer.ComposerError(None, None, problem, root.start_mark)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(v for pair in node.value for v in pair)


def parse_spec(raw: Any, *, source: str = "<memory>") -> SweepSpec:
    """Validate a spec given as a mapping (parsed YAML; the Python API may put functions under
    ``trainable`` and ``cost``)."""
    if raw is not None and not isinstance(raw, Mapping):
        raise SpecError("spec", source, "a YAML mapping of spec keys (name:, space:, objectives:, ...)")
    d = _mapping("", raw, TOP_KEYS)
    trainable = _parse_trainable(d.get("trainable", BUILTIN))
    builtin = trainable == BUILTIN
    default_name = Path(source).stem if builtin or source != "<memory>" else reference(trainable).rpartition(":")[2]
    # why: a name given empty is a mistake to report, not a request for the default
    name = _check_name("name", default_name if d.get("name") is None else d["name"], SPEC_NAME_MAX)
    # why: `dataset:` left empty (null) means the default, as a missing key does; the built-in needs one
    dataset = _parse_dataset({"name": "digits"} if builtin and d.get("dataset") is None else d.get("dataset"))
    fixed_raw = _mapping("fixed", d.get("fixed"))
    fixed = {}
    for k, v in fixed_raw.items():
        _check_key(f"fixed.{k}", k, v, builtin)
        fixed[k] = _check_key_value(f"fixed.{k}", k, v, builtin)
    space_raw = _mapping("space", d.get("space"))
    space = tuple(_parse_param(k, v, builtin) for k, v in space_raw.items())
    for p in space:
        if p.name in fixed:
            raise SpecError(f"space.{p.name}", p.name, "a key that is not also under fixed")
    spec = SweepSpec(
        name=name,
        dataset=dataset,
        fixed=fixed,
        space=space,
        objectives=_parse_objectives(d.get("objectives"), builtin),
        sampler=_parse_sampler(d.get("sampler")),
        num_samples=_int("num_samples", d.get("num_samples", 16), 1, NUM_SAMPLES_MAX),
        resources=_parse_resources(d.get("resources")),
        scheduler=_parse_scheduler(d.get("scheduler", "fifo")),
        energy=_parse_energy(d.get("energy")),
        description=str(d.get("description", "")),
        tensorboard=_bool("tensorboard", d.get("tensorboard", False)),
        loggers=parse_loggers("loggers", [] if d.get("loggers") is None else d["loggers"]),
        optuna_storage=None
        if d.get("optuna_storage") is None
        else parse_optuna_storage("optuna_storage", d["optuna_storage"]),
        source=source,
        raw={**d, "trainable": reference(trainable), **({"cost": reference(d["cost"])} if d.get("cost") else {})},
        trainable=trainable,
        cost=_parse_cost(d.get("cost"), builtin),
    )
    if builtin:
        _check_combinations(spec)
    elif spec.budget_epochs() < 1:
        raise SpecError("fixed.epochs", None, "the trial's epoch budget, an integer >= 1 under fixed: or space:")
    w = spec.scheduler.weights
    if spec.scheduler.kind == "weighted_asha" and (w is None or len(w) != len(spec.objectives)):
        raise SpecError(
            "scheduler.weights", list(w) if w else None, f"{len(spec.objectives)} numbers, one per objective"
        )
    return spec


def _check_combinations(spec: SweepSpec) -> None:
    """Every model x depth the search can draw must be buildable on the dataset."""
    by_name = {p.name: p for p in spec.space}
    try:
        spec.trial_config()  # the defaults themselves
    except SpecError as e:
        where = f"space.{e.field}.default" if e.field in by_name else f"fixed.{e.field}"
        raise SpecError(where if e.field in TRIAL_KEYS else e.field, e.value, e.allowed) from None
    assert spec.dataset is not None, "the built-in trainable's spec always has a dataset"
    models = by_name["model"].candidates() if "model" in by_name else [spec.fixed.get("model", TrialConfig.model)]
    depth_field = "space.depth" if "depth" in by_name else "fixed.depth"
    depths = by_name["depth"].candidates() if "depth" in by_name else [spec.fixed.get("depth", TrialConfig.depth)]
    if isinstance(depths, range):
        depths = depths[:6]  # why: (d - 2) % 6 repeats every 6 steps of a range: its first 6 hold every residue
    for model in models:
        try:
            check_compatible(model, spec.dataset)
        except ConfigError as e:
            raise SpecError("space.model" if "model" in by_name else "fixed.model", model, e.allowed) from None
        if model == "resnet":
            bad = [d for d in depths if (int(d) - 2) % 6 != 0]  # a choice's values, or a range's first 6
            if bad:
                allowed = "for resnet, depths 6n+2 (8, 14, 20, 26, 32, 44, 56, ...); an int range needs step 6"
                raise SpecError(depth_field, bad[0], allowed)


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and validate a YAML spec file."""
    p = Path(path)
    shipped = Path(__file__).parent / p.name
    if not p.is_file() and p.parent == Path("search_spaces") and shipped.is_file():
        p = shipped  # why: an installed wattsweep run outside the repo still finds its shipped specs
    if not p.is_file():
        raise SpecError("spec", str(p), "the path of an existing YAML spec file (see search_spaces/)")
    try:
        raw = _yaml(_read_text(p))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError("spec", str(p), f"valid YAML (parse error{where}: {getattr(e, 'problem', e)})") from None
    return parse_spec(raw, source=str(p))


def _yaml(text: str) -> Any:
    """``text`` parsed by the bounded safe loader; every PyYAML failure comes out as a ``yaml.YAMLError``."""
    try:
        return yaml.load(text, Loader=_SpecLoader)  # why: yaml.load, not safe_load: our bounded SafeLoader
    except RecursionError:
        raise yaml.YAMLError("nested too deeply (PyYAML recurses once per level)") from None
    except ValueError as e:  # why: PyYAML's constructors let some through (a 13th month in a date)
        raise yaml.YAMLError(str(e)) from None


def _read_text(p: Path) -> str:
    """The file's text: UTF-8, at most ``SPEC_MAX_BYTES`` bytes (read no further, so endless input ends)."""
    try:
        with p.open("rb") as f:
            data = f.read(SPEC_MAX_BYTES + 1)
    except OSError as e:
        raise SpecError("spec", str(p), f"a readable file ({e.strerror or e})") from None
    if len(data) > SPEC_MAX_BYTES:
        raise SpecError("spec", str(p), f"a YAML text file of at most {SPEC_MAX_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError("spec", str(p), f"a UTF-8 text file (byte {e.start} is not UTF-8)") from None


def parse_set(items: list[str], spec: SweepSpec | None = None) -> dict[str, Any]:
    """``--set key=value`` pairs; values parsed as YAML scalars (3, 1e-3, true, resnet). Keys are checked
    against the built-in trainable's, or for a custom trainable's ``spec`` against its fixed and space keys."""
    builtin = spec is None or spec.is_builtin
    known = TRIAL_KEYS if builtin else tuple(spec.default_config()) if spec is not None else ()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError("--set", item, "key=value, e.g. --set depth=14 --set lr=0.001")
        if key not in known:
            raise SpecError(f"--set {key}", text, f"a trial key, one of {list(known)}")
        try:
            value = _yaml(text)
        except yaml.YAMLError:
            value = text
        out[key] = _check_key_value(f"--set {key}", key, value, builtin)
    return out
