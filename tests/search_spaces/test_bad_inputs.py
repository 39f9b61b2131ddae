"""Issue 16, "nothing let in": every bad input to the spec loader ends in a ``SpecError`` naming the field,
raised before anything starts; nothing the loader is given can make it raise anything else, or run away in
time or memory. The CLI side of the same classes (exit 2, no traceback, nothing written) is in
``tests/orchestrator/test_cli_inputs.py``.
"""

from __future__ import annotations

import copy
import importlib
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search_spaces import PARAM_KINDS, SAMPLERS, Param, SpecError, SweepSpec, load_spec, parse_set, parse_spec
from search_spaces._spec import TOP_KEYS
from trainables.config import TRIAL_KEYS

CUSTOM = "tests.fixtures.custom_trainable:train"
importlib.import_module(CUSTOM.partition(":")[0])  # why: its torch import must not count against a deadline


def _custom(**changes: Any) -> dict[str, Any]:
    return {"name": "c", "trainable": CUSTOM, "fixed": {"epochs": 2}, "objectives": [{"metric": "energy_j"}], **changes}


def _refused(raw: Any, field: str, **kw: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, **kw)
    assert info.value.field == field, info.value
    return info.value


# --- 1. a run name never leaves the storage directory --------------------------------------------------

BAD_NAMES = [".", "..", "", "-rf", ".hidden", "a/b", "../up", "a\\b", "a\x00b", "a\nb", "a\x7fb", "café", "x\u0661"]
BAD_NAMES += ["CON", "nul", "Aux.txt", "com1", "LPT9.log"]  # reserved in every Windows directory


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_bad_name_is_refused_in_the_spec_and_as_the_run_name(name: str) -> None:
    _refused({"name": name}, "name", source="/specs/good.yaml")
    spec = parse_spec({"name": "ok"})
    with pytest.raises(SpecError) as info:
        spec.with_overrides(name=name)
    assert info.value.field == "--name"


def test_names_have_a_length_limit_that_leaves_room_for_the_default_run_names_timestamp() -> None:
    from search_spaces import NAME_MAX, default_run_name

    spec = parse_spec({"name": "x" * (NAME_MAX - 16)})
    assert spec.with_overrides(name=default_run_name(spec.name)).name.startswith("x" * (NAME_MAX - 16) + "-")
    assert spec.with_overrides(name="y" * NAME_MAX).name == "y" * NAME_MAX
    _refused({"name": "x" * (NAME_MAX - 15)}, "name")
    with pytest.raises(SpecError, match="--name"):
        spec.with_overrides(name="y" * (NAME_MAX + 1))


def test_a_spec_without_a_name_is_named_after_its_file_but_an_empty_name_is_refused() -> None:
    assert parse_spec({}, source="/specs/good.yaml").name == "good"
    assert parse_spec({"name": None}, source="/specs/good.yaml").name == "good"
    _refused({"name": ""}, "name", source="/specs/good.yaml")


# --- 2. files that are not text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # binary
        b"name: caf\xe9\n",  # latin-1, not UTF-8
        b"\xff\xfe\x00n\x00a\x00m\x00e",  # UTF-16
        b"name: x\x00\n",  # UTF-8 with a NUL (already refused: a guard)
        b"# " + b"x" * 1_100_000 + b"\nname: big\n",  # valid YAML, but past the size cap
    ],
    ids=["binary", "latin1", "utf16", "nul", "over-1MB"],
)
def test_a_spec_file_that_is_not_small_utf8_text_is_refused_naming_spec(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "spec.yaml"
    p.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_spec(p)
    assert info.value.field == "spec" and str(p) in str(info.value)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null", "/"])
def test_a_device_or_directory_as_spec_is_refused_naming_spec(path: str) -> None:
    # why: these were refused before issue 16 too; a guard that a size-capped reader keeps refusing them
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.field == "spec"


# --- 3. specs whose parsing explodes in time or memory ------------------------------------------------


def _alias_bomb(levels: int, fan_out: int = 10) -> str:
    """A "billion laughs": each level a list of ``fan_out`` aliases of the one before, under description."""
    lines = ["description:", f"  - &l0 [{', '.join(['lol'] * fan_out)}]"]
    lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * fan_out)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text",
    [_alias_bomb(6), "description: &a [*a]\n", "description: &a {k: *a}\n"],
    ids=["billion-laughs-1e6", "recursive-list", "recursive-map"],
)
def test_yaml_aliases_that_expand_past_the_bound_are_refused(tmp_path: Path, text: str) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(p)
    assert info.value.field == "spec" and "alias" in info.value.allowed
    assert time.perf_counter() - start < 2.0


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text("fixed: &f {epochs: 2}\ndescription: [*f, *f]\n")
    assert load_spec(p).fixed == {"epochs": 2}


@pytest.mark.parametrize(
    "text",
    ["space: " + "[" * 5000 + "]" * 5000 + "\n", "num_samples: " + "9" * 5000 + "\n", "name: 2024-13-45\n"],
    ids=["nested-5000-deep", "int-of-5000-digits", "impossible-date"],
)
def test_yaml_that_pyyaml_cannot_build_is_a_spec_error(tmp_path: Path, text: str) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(p)
    assert info.value.field == "spec"


@pytest.mark.parametrize(
    "item", ["seed=2024-13-45", "depth=" + "[" * 5000, "seed=" + "9" * 5000, "depth=&a [*a]"], ids=lambda s: s[:12]
)
def test_set_values_pyyaml_cannot_build_are_spec_errors(item: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_set([item])
    assert info.value.field == f"--set {item.partition('=')[0]}"


def test_an_int_range_is_never_materialised() -> None:
    p = Param("n", "int", 0, low=0, high=10**12, step=1)
    values = p.candidates()  # why: a list of 10**12 ints is a MemoryError; a range is three numbers
    assert len(values) == 10**12 + 1 and values[-1] == 10**12 and 10**11 in values


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"space": {"depth": {"kind": "int", "low": 8, "high": 8 + 6 * 10**11, "step": 6}}}, "space.depth.high"),
        (_custom(fixed={}, space={"epochs": {"kind": "int", "low": 1, "high": 10**12}}), "space.epochs.high"),
        ({"num_samples": 10**12}, "num_samples"),
        ({"sampler": {"cheap_start": 2, "cheap_start_candidates": 10**12}}, "sampler.cheap_start_candidates"),
        ({"sampler": {"population_size": 10**12}}, "sampler.population_size"),
        ({"fixed": {"width": 10**9}}, "fixed.width"),
        ({"space": {"width": {"kind": "int", "low": 8, "high": 10**9}}}, "space.width.high"),
        ({"fixed": {"batch_size": 10**30}}, "fixed.batch_size"),
        ({"resources": {"cpu": 1e300}}, "resources.cpu"),
    ],
    ids=[
        "depth-range",
        "custom-epochs-range",
        "num_samples",
        "cheap_start_candidates",
        "population_size",
        "width",
        "width-range",
        "batch_size",
        "cpu",
    ],
)
def test_sizes_that_would_run_away_are_refused_naming_the_field(raw: dict[str, Any], field: str) -> None:
    start = time.perf_counter()
    _refused({"name": "t", **raw}, field)
    assert time.perf_counter() - start < 2.0


def test_a_huge_int_range_of_a_custom_key_is_accepted_without_a_list() -> None:
    spec = parse_spec(_custom(space={"steps": {"kind": "int", "low": 0, "high": 10**12}}))
    assert spec.space[0].high == 10**12 and spec.budget_epochs() == 2


def test_the_epoch_budget_of_an_int_range_is_its_largest_value_on_the_step() -> None:
    spec = parse_spec(_custom(fixed={}, space={"epochs": {"kind": "int", "low": 1, "high": 10, "step": 4}}))
    assert spec.budget_epochs() == 9


# --- 4. numbers outside what the libraries accept -----------------------------------------------------

SEED_BAD = [-1, 2**32, 2**64]


@pytest.mark.parametrize("seed", SEED_BAD)
def test_seeds_outside_numpy_and_optunas_range_are_refused(seed: int) -> None:
    _refused({"name": "t", "sampler": {"seed": seed}}, "sampler.seed")
    _refused({"name": "t", "fixed": {"seed": seed}}, "fixed.seed")
    _refused({"name": "t", "dataset": {"name": "digits", "split_seed": seed}}, "dataset.split_seed")
    _refused(_custom(fixed={"epochs": 2, "seed": seed}), "fixed.seed")
    with pytest.raises(SpecError, match="--seed"):
        parse_spec({"name": "t"}).with_overrides(seed=seed)
    with pytest.raises(SpecError, match="--set seed"):
        parse_set([f"seed={seed}"])


def test_the_largest_seed_is_accepted_everywhere() -> None:
    top = 2**32 - 1
    spec = parse_spec({"name": "t", "sampler": {"seed": top}, "fixed": {"seed": top}, "dataset": {"split_seed": top}})
    assert spec.with_overrides(seed=top).sampler.seed == top
    assert spec.trial_config().seed == top and spec.dataset is not None and spec.dataset.split_seed == top


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"fixed": {"lr": 10**400}}, "fixed.lr"),
        ({"energy": {"pue": 10**400}}, "energy.pue"),
        ({"resources": {"cpu": 10**400}}, "resources.cpu"),
        ({"dataset": {"name": "digits", "val_fraction": 10**400}}, "dataset.val_fraction"),
        (_custom(space={"x": {"kind": "uniform", "low": 10**400, "high": 10**401}}), "space.x.low"),
        (_custom(space={"x": {"kind": "uniform", "low": -1e308, "high": 1e308}}), "space.x.high"),
        (_custom(space={"x": {"kind": "uniform", "low": 1, "high": "x"}}), "space.x.high"),
        (_custom(space={"x": {"kind": "loguniform", "low": 1e-300, "high": float("inf")}}), "space.x.high"),
        (_custom(space={"n": {"kind": "int", "low": 0, "high": 2**53 + 1}}), "space.n.high"),
        (_custom(space={"n": {"kind": "int", "low": -(2**60), "high": 0}}), "space.n.low"),
        ({"scheduler": {"kind": "weighted_asha", "weights": [float("nan"), 1]}}, "scheduler.weights"),
        ({"energy": {"budget_j": float("inf")}}, "energy.budget_j"),
        ({"resources": {"cpu": -1}}, "resources.cpu"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_numbers_the_libraries_cannot_take_are_refused_naming_the_field(raw: dict[str, Any], field: str) -> None:
    _refused({"name": "t", **raw}, field)


@pytest.mark.parametrize("raw", [{"name": "t"}, _custom()], ids=["builtin", "custom"])
@pytest.mark.parametrize("metric", [[], {"a": 1}, 3])
def test_an_objective_metric_that_is_not_a_name_is_refused_naming_it(raw: dict[str, Any], metric: Any) -> None:
    # found by the mutation test below: a list as metric raised TypeError (unhashable) in a dict lookup
    _refused({**raw, "objectives": [{"metric": metric, "direction": "max"}]}, "objectives[0].metric")


def test_an_error_message_never_echoes_a_huge_value() -> None:
    e = _refused({"name": "t", "num_samples": "x" * 100_000}, "num_samples")
    assert len(str(e)) < 1000


# --- 6. whatever the loader is given: a spec or a SpecError, in bounded time ---------------------------

_TOKENS = [
    *(f"{k}:" for k in TOP_KEYS),
    *(f"{k}:" for k in ("kind", "low", "high", "step", "values", "default", "seed", "metric", "direction")),
    *(f" {k}" for k in (*PARAM_KINDS, *SAMPLERS, *TRIAL_KEYS[:6], "digits", "csv", "max", "min", "moasha")),
    *("\n", "\n  ", "\n    ", "\n- ", " ", "[", "]", "{", "}", ", ", ": ", "- ", "&a ", "*a", "&b ", "*b", "<<: "),
    *("!!binary ", "!!python/name:os.system ", "!!set ", "!!str ", "? ", "'", '"', "#", "%YAML 1.1\n", "---\n"),
    *(" 0", " -1", " 1e-3", " .inf", " .nan", " 0x7f", " 1_000", " 4294967296", " 2024-01-01", " ~", " yes"),
]
_yaml_ish = st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join)

_EDGES = [-1, 0, 1, 2, 2**32, 2**53 + 1, 2**64, 10**400, -(10**400), 1e308, -1e308, 1e-320, float("inf")]
_numbers = st.one_of(st.integers(), st.floats(), st.sampled_from(_EDGES))
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _numbers,
    st.text(max_size=12),
    st.sampled_from(["resnet", "ffnn", "adam", "cosine", "accuracy", "energy_j", "max", "min", "int", "auto"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

# A valid spec of each kind, and every field a spec has: the mutation test sets one or two of them to anything.
_BASES: list[dict[str, Any]] = [
    {
        "name": "t",
        "fixed": {"epochs": 2},
        "space": {
            "depth": {"kind": "int", "low": 8, "high": 20, "step": 6},
            "lr": {"kind": "loguniform", "low": 1e-4, "high": 0.1},
            "model": {"kind": "choice", "values": ["resnet"]},
        },
        "objectives": [{"metric": "accuracy", "direction": "max"}, {"metric": "energy_j"}],
        "sampler": {"kind": "nsga2", "seed": 0, "cheap_start": 2},
        "scheduler": {"kind": "moasha"},
        "resources": {"cpu": 1},
        "energy": {"pue": 1.2},
        "dataset": {"name": "digits", "split_seed": 0},
        "num_samples": 4,
    },
    {
        **_custom(num_samples=4),
        "space": {
            "hidden": {"kind": "int", "low": 8, "high": 32, "step": 8},
            "x": {"kind": "uniform", "low": 0.0, "high": 1.0},
            "act": {"kind": "choice", "values": ["relu", "tanh"]},
        },
        "objectives": [{"metric": "f1", "direction": "max"}, {"metric": "energy_j"}],
    },
]
_SECTION_KEYS = {
    "fixed": [*TRIAL_KEYS, "x"],
    "dataset": ["name", "root", "download", "path", "target", "val_fraction", "test_fraction", "split_seed"],
    "sampler": ["kind", "seed", "population_size", "cheap_start", "cheap_start_candidates"],
    "scheduler": ["kind", "grace_period", "reduction_factor", "weights", "tie_break", "defer", "keep_front"],
    "resources": ["cpu", "gpu", "accelerator_type"],
    "energy": ["watts_per_core", "idle_baseline_s", "grid_g_per_kwh", "pue", "budget_j"],
}
_PATHS: list[tuple[Any, ...]] = [
    *((k,) for k in TOP_KEYS if k not in ("trainable", "cost")),
    *((section, k) for section, keys in _SECTION_KEYS.items() for k in keys),
    *(("space", p) for p in ("depth", "lr", "model", "hidden", "x", "epochs", "seed")),
    *(("space", p, f) for p in ("depth", "lr", "model", "hidden", "x") for f in ("kind", "low", "high", "step")),
    *(("space", p, f) for p in ("depth", "model", "act") for f in ("values", "default")),
    *(("objectives", i, f) for i in (0, 1) for f in ("metric", "direction")),
]
_anything = st.sampled_from([*_EDGES, "x", "", None, [], {}]) | _values


def _mutated(base: dict[str, Any], changes: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    """``base`` with each path set to its value (a path through something an earlier change replaced is skipped)."""
    raw = copy.deepcopy(base)
    for path, value in changes:
        where: Any = raw
        for key in path[:-1]:
            if isinstance(where, dict):
                if not isinstance(where.get(key), (dict, list)):
                    where[key] = {}
                where = where[key]
            elif isinstance(where, list) and isinstance(key, int) and key < len(where):
                where = where[key]
            else:
                break
        else:
            if isinstance(where, dict):
                where[path[-1]] = value
    return raw


_SETTINGS = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], database=None)


def _load_bytes(data: bytes) -> None:
    """``load_spec`` on a file holding ``data``: a SweepSpec or a SpecError, nothing else, in bounded time."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "spec.yaml"
        p.write_bytes(data)
        try:
            spec = load_spec(p)
        except SpecError as e:
            assert e.field, e  # the message names a field
            return
    assert isinstance(spec, SweepSpec)


@_SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_give_a_spec_or_a_spec_error(data: bytes) -> None:
    _load_bytes(data)


@_SETTINGS
@given(st.one_of(st.text(max_size=300), _yaml_ish))
def test_any_text_gives_a_spec_or_a_spec_error(text: str) -> None:
    _load_bytes(text.encode("utf-8", "surrogatepass"))


@settings(_SETTINGS, max_examples=300)
@given(st.sampled_from(_BASES), st.lists(st.tuples(st.sampled_from(_PATHS), _anything), min_size=1, max_size=2))
def test_a_valid_spec_with_any_field_set_to_anything_gives_a_spec_or_a_spec_error(
    base: dict[str, Any], changes: list[tuple[tuple[Any, ...], Any]]
) -> None:
    _load_bytes(yaml.safe_dump(_mutated(base, changes), allow_unicode=True).encode("utf-8", "surrogatepass"))


@_SETTINGS
@given(st.lists(st.text(max_size=20), max_size=4))
def test_any_set_flags_give_values_or_a_spec_error(items: list[str]) -> None:
    try:
        assert isinstance(parse_set(items), dict)
    except SpecError as e:
        assert e.field
