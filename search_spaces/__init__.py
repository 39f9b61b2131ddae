"""Search specs: YAML files in this folder, loaded into frozen, validated objects."""

from search_spaces._check import NAME_MAX, SpecError, default_run_name
from search_spaces._spec import load_spec, parse_set, parse_spec
from search_spaces._types import (
    PARAM_KINDS,
    SAMPLERS,
    EnergySettings,
    Objective,
    Param,
    Resources,
    SamplerSpec,
    SchedulerSpec,
    SweepSpec,
)

DEFAULT_SPEC = "search_spaces/digits_resnet.yaml"

__all__ = [
    "DEFAULT_SPEC",
    "NAME_MAX",
    "PARAM_KINDS",
    "SAMPLERS",
    "EnergySettings",
    "Objective",
    "Param",
    "Resources",
    "SamplerSpec",
    "SchedulerSpec",
    "SpecError",
    "SweepSpec",
    "default_run_name",
    "load_spec",
    "parse_set",
    "parse_spec",
]
