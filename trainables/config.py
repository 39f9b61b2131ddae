"""What one trial accepts: the trial config keys and the dataset settings.

The same keys appear in specs (``fixed:`` and ``space:``), in ``--set`` and in
the report's columns. Each key has a type and a domain; ``check_value`` is the
one place that says what is allowed, so the spec loader and the trainable agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


class ConfigError(ValueError):
    """A bad value for a named field. The message names field, value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: got {_shown(value)}; allowed: {allowed}")


def _shown(value: Any) -> str:
    """``repr`` of a bad value for a message, cut to 200 characters (a spec may hold a megabyte in one value)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # why: an int past Python's int-to-str digit limit, a deeply nested list
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text)} characters)"


MODELS = ("resnet", "ffnn")
INITS = ("xavier", "kaiming", "default")
OPTIMIZERS = ("adam", "sgd")
LR_DECAYS = ("none", "cosine", "step", "exponential")
PRUNE_METHODS = ("unstructured", "structured")
PRUNE_SCHEDULES = ("cubic", "linear")
DEVICES = ("auto", "cpu", "cuda")
# why: numpy's legacy seeding and Optuna's samplers take 0 <= seed < 2**32; one bound for every seed we take
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class TrialConfig:
    """One trial's settings. Defaults are the seed write-up's choices where it made one."""

    model: str = "resnet"  # resnet (CIFAR-style basic blocks) or ffnn (MLP)
    depth: int = 8  # resnet: total layers, 6n+2; ffnn: hidden layers
    width: int = 16  # resnet: channels of the first stage (later stages double); ffnn: units per layer
    shortcut: bool = True  # resnet identity shortcuts; False removes them (the seed's shortcut study)
    init: str = "xavier"  # the seed's choice: Glorot uniform on conv and linear weights
    lr: float = 1e-3  # the seed's "optimal" learning rate, a hypothesis to test
    optimizer: str = "adam"
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    lr_decay: str = "cosine"
    batch_size: int = 64  # the seed's batch size
    epochs: int = 10
    prune_ratio: float = 0.0  # final fraction of prunable weights removed, in [0, 1)
    prune_method: str = "unstructured"
    prune_every: int = 5  # epochs between pruning steps (the seed prunes every 5)
    prune_schedule: str = "cubic"  # Zhu & Gupta (2017) cubic ramp, or linear
    bn_recalibrate: bool = True  # re-estimate batch-norm statistics on training data after each pruning step
    seed: int = 0
    device: str = "auto"  # auto: cuda when the trial sees a GPU

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrialConfig:
        """Build and validate from a mapping; unknown keys and bad values raise ConfigError."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(key, values[key], f"one of the trial keys {sorted(known)}")
        checked = {k: check_value(k, v) for k, v in values.items()}
        cfg = cls(**checked)
        cfg.check_combination()
        return cfg

    def check_combination(self) -> None:
        if self.model == "resnet" and (self.depth - 2) % 6 != 0:
            raise ConfigError("depth", self.depth, "for resnet, 6n+2: 8, 14, 20, 26, 32, 44, 56, ...")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_INT_MIN = {"depth": 1, "width": 1, "batch_size": 1, "epochs": 1, "prune_every": 1, "seed": 0}
# why: beyond these the driver's own work runs away before any trial starts: the cheap start's closed-form cost
# loops over every layer (depth), pruning lists its steps and Tune's results store epochs as int64 (epochs);
# the deepest CIFAR ResNet published has 1202 layers; width: one 3x3 convolution of 65,536 channels in and out holds
# 38.7e9 parameters (155 GB in fp32), more than any one GPU has, so a wider trial could only fail once it starts;
# batch_size: 2**20 samples in one step is more than any dataset here holds, and a typo beyond it should not start
_INT_MAX = {"depth": 10_000, "epochs": 1_000_000, "seed": SEED_MAX, "width": 65_536, "batch_size": 2**20}
_CHOICES = {
    "model": MODELS,
    "init": INITS,
    "optimizer": OPTIMIZERS,
    "lr_decay": LR_DECAYS,
    "prune_method": PRUNE_METHODS,
    "prune_schedule": PRUNE_SCHEDULES,
    "device": DEVICES,
}


def _as_float(key: str, value: Any) -> float:
    if isinstance(value, str):
        # why: YAML 1.1 reads 1e-3 (no dot) as a string; users mean the number
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(key, value, "a finite number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, value, "a finite number")
    try:
        v = float(value)
    except OverflowError:  # why: an int past float's range (10**400) is not a finite float
        v = math.inf
    if not math.isfinite(v):
        raise ConfigError(key, value, "a finite number")
    return v


def check_value(key: str, value: Any) -> Any:
    """Validate one trial key's value and return it in its canonical type."""
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise ConfigError(key, value, f"one of {list(_CHOICES[key])}")
        return value
    if key in _INT_MIN:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        lo, hi = _INT_MIN[key], _INT_MAX.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
            raise ConfigError(key, value, f"an integer >= {lo}" + ("" if hi is None else f" and <= {hi}"))
        return value
    if key in ("shortcut", "bn_recalibrate"):
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
        return value
    if key in ("lr",):
        v = _as_float(key, value)
        if v <= 0:
            raise ConfigError(key, value, "a number > 0")
        return v
    if key in ("momentum", "weight_decay"):
        v = _as_float(key, value)
        if v < 0:
            raise ConfigError(key, value, "a number >= 0")
        return v
    if key == "prune_ratio":
        v = _as_float(key, value)
        if not 0.0 <= v < 1.0:
            raise ConfigError(key, value, "a number in [0, 1)")
        return v
    known = sorted(f.name for f in fields(TrialConfig))
    raise ConfigError(key, value, f"one of the trial keys {known}")


TRIAL_KEYS: tuple[str, ...] = tuple(f.name for f in fields(TrialConfig))


IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
TABULAR_DATASETS = ("breast_cancer", "wine", "csv")
DATASETS = IMAGE_DATASETS + TABULAR_DATASETS


@dataclass(frozen=True)
class DatasetConfig:
    """Which data a sweep trains on, and how it is split."""

    name: str = "digits"
    root: str | None = None  # torchvision datasets: folder holding (or receiving) the files
    download: bool = False  # torchvision datasets: fetch when online
    path: str | None = None  # csv: the file
    target: str | None = None  # csv: the label column
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0  # the split is a function of this seed only, so every trial sees the same split
    max_samples: int | None = None  # cap on samples kept (after shuffling), for quick runs

    @property
    def kind(self) -> str:
        return "image" if self.name in IMAGE_DATASETS else "tabular"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DatasetConfig:
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(f"dataset.{key}", values[key], f"one of {sorted(known)}")
        v = dict(values)
        if v.get("name", "digits") not in DATASETS:
            raise ConfigError("dataset.name", v.get("name"), f"one of {list(DATASETS)}")
        for key in ("val_fraction", "test_fraction"):
            if key in v:
                x = _as_float(f"dataset.{key}", v[key])
                if not 0.0 < x < 0.5:
                    raise ConfigError(f"dataset.{key}", v[key], "a number in (0, 0.5)")
        for key in ("root", "path", "target"):
            if key in v and v[key] is not None and not isinstance(v[key], str):
                raise ConfigError(f"dataset.{key}", v[key], "a string")
        if "download" in v and not isinstance(v["download"], bool):
            raise ConfigError("dataset.download", v["download"], "true or false")
        seed = v.get("split_seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
            raise ConfigError("dataset.split_seed", seed, f"an integer >= 0 and <= {SEED_MAX}")
        ms = v.get("max_samples")
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or ms < 10):
            raise ConfigError("dataset.max_samples", ms, "an integer >= 10, or null")
        if v.get("name") == "csv" and (not v.get("path") or not v.get("target")):
            raise ConfigError("dataset.path", v.get("path"), "csv needs both dataset.path and dataset.target")
        return cls(**v)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_compatible(cfg_model: str, dataset: DatasetConfig) -> None:
    """Refuse combinations that cannot be built (a ResNet on tabular data)."""
    if cfg_model == "resnet" and dataset.kind == "tabular":
        raise ConfigError(
            "model",
            cfg_model,
            f"ffnn for tabular dataset {dataset.name!r} (resnet needs images: {list(IMAGE_DATASETS)})",
        )
