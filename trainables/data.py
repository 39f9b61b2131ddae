"""Data: load a dataset into memory as tensors, split it by seed, scale it.

Images are min-max scaled to [-1, 1] with min and max from the training split;
tabular features are standardised with the training split's mean and std. The
split depends only on ``DatasetConfig.split_seed``, so every trial of a sweep
sees the same train / validation / test rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainables.config import ConfigError, DatasetConfig


class DataError(ConfigError):
    """The dataset cannot be loaded as configured (missing file, bad column...)."""


@dataclass(frozen=True)
class Splits:
    """A dataset in memory. x_*: float32, images (N, C, H, W), tabular (N, F); y_*: int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    kind: str  # "image" or "tabular"
    num_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device) -> Splits:
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return Splits(**moved, kind=self.kind, num_classes=self.num_classes, name=self.name)


def _load_raw(ds: DatasetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Features and integer labels, unscaled. Images as (N, C, H, W)."""
    from sklearn import datasets as skd  # why: lazy, keeps worker start-up light

    if ds.name == "digits":
        bunch = skd.load_digits()
        return bunch.images[:, None, :, :].astype(np.float32), bunch.target.astype(np.int64)
    if ds.name == "breast_cancer":
        bunch = skd.load_breast_cancer()
        return bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    if ds.name == "wine":
        bunch = skd.load_wine()
        return bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    raise DataError("dataset.name", ds.name, "digits, breast_cancer or wine (others not yet supported)")


def split_indices(n: int, ds: DatasetConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train / val / test row indices, a function of (n, fractions, split_seed) only."""
    perm = np.random.default_rng(ds.split_seed).permutation(n)
    n_test = max(1, round(n * ds.test_fraction))
    n_val = max(1, round(n * ds.val_fraction))
    return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]


def _scale(x: np.ndarray, train_idx: np.ndarray, kind: str) -> np.ndarray:
    train = x[train_idx]
    if kind == "image":
        lo, hi = float(train.min()), float(train.max())
        return (2.0 * (x - lo) / max(hi - lo, 1e-12) - 1.0).astype(np.float32)
    mean, std = train.mean(axis=0), train.std(axis=0)
    return ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def load_splits(ds: DatasetConfig) -> Splits:
    """Load, split and scale a dataset (on the CPU)."""
    x, y = _load_raw(ds)
    if ds.max_samples is not None and len(x) > ds.max_samples:
        keep = np.random.default_rng(ds.split_seed + 1).permutation(len(x))[: ds.max_samples]
        x, y = x[keep], y[keep]
    tr, va, te = split_indices(len(x), ds)
    x = _scale(x, tr, ds.kind)
    t = torch.from_numpy
    return Splits(
        x_train=t(x[tr]),
        y_train=t(y[tr]),
        x_val=t(x[va]),
        y_val=t(y[va]),
        x_test=t(x[te]),
        y_test=t(y[te]),
        kind=ds.kind,
        num_classes=int(y.max()) + 1,
        name=ds.name,
    )


def check_dataset(ds: DatasetConfig) -> None:
    """Fail fast (DataError naming the path or column) when the data cannot be loaded."""
    if ds.name in ("digits", "breast_cancer", "wine"):
        return
    raise DataError("dataset.name", ds.name, "digits, breast_cancer or wine (others not yet supported)")
