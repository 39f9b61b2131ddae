"""Data: load a dataset into memory as tensors, split it by seed, scale it.

Images are min-max scaled to [-1, 1] with min and max from the training split;
tabular features are standardised with the training split's mean and std. The
split depends only on ``DatasetConfig.split_seed``, so every trial of a sweep
sees the same train / validation / test rows.

Sources: scikit-learn's bundled ``digits``, ``breast_cancer`` and ``wine``;
torchvision's ``mnist``, ``fashion_mnist`` and ``cifar10`` (files under
``root``, fetched there when ``download: true``); a ``csv`` file. For the
torchvision sets the official train and test files are pooled and re-split by
our seeded split, like every other source: the fractions, ``max_samples`` and
``split_seed`` then mean the same thing for every dataset (the price: test
accuracies are not on the official test split, so not comparable to papers).
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trainables.config import ConfigError, DatasetConfig

if TYPE_CHECKING:
    import torch  # why lazy: the sweep's driver loads data (SplitArrays) without importing torch

# Where torchvision datasets live when the spec gives no dataset.root.
DEFAULT_ROOT = "~/.cache/wattsweep/datasets"
_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}
_SKLEARN = ("digits", "breast_cancer", "wine")
_SPLIT_FIELDS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
# Rows of each built-in dataset (torchvision's: train and test files pooled); a test checks scikit-learn's.
# why: check_dataset decides whether the split leaves every part a row without loading the data
_ROWS = {"digits": 1797, "breast_cancer": 569, "wine": 178, "mnist": 70_000, "fashion_mnist": 70_000, "cifar10": 60_000}


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
        moved = {k: getattr(self, k).to(device) for k in _SPLIT_FIELDS}
        return Splits(**moved, kind=self.kind, num_classes=self.num_classes, name=self.name)


# --- sources -------------------------------------------------------------------


def _digits_from_package_file() -> tuple[np.ndarray, np.ndarray] | None:
    """scikit-learn's digits read straight from the CSV file scikit-learn ships; None if it is not there.

    why: ``import sklearn`` alone costs ~1 s of CPU (scipy and more), 10x the load itself, in every process
    that loads digits (the sweep's driver, ``trial``); ``find_spec`` locates the package without importing it.
    A test checks the result equals ``sklearn.datasets.load_digits``.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        return None
    raw = np.loadtxt(path, delimiter=",", dtype=np.float32)
    if raw.shape != (1797, 65):
        return None  # why: a layout we do not know: let scikit-learn's own loader read it
    return np.ascontiguousarray(raw[:, :64].reshape(-1, 1, 8, 8)), raw[:, 64].astype(np.int64)


def _load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits" and (fast := _digits_from_package_file()) is not None:
        return fast
    from sklearn import datasets as skd  # why: lazy, keeps worker start-up light

    if name == "digits":
        bunch = skd.load_digits()
        return bunch.images[:, None, :, :].astype(np.float32), bunch.target.astype(np.int64)
    bunch = skd.load_breast_cancer() if name == "breast_cancer" else skd.load_wine()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def _root(ds: DatasetConfig) -> Path:
    return Path(ds.root if ds.root is not None else DEFAULT_ROOT).expanduser()


def _torchvision_class(name: str) -> Any:
    from torchvision import datasets as tvd  # why: lazy, only image sets from files need torchvision

    return getattr(tvd, _TORCHVISION[name])


def _expected_files(ds: DatasetConfig) -> list[Path]:
    """The files torchvision reads for this dataset, by the names its classes declare."""
    cls, root = _torchvision_class(ds.name), _root(ds)
    if ds.name == "cifar10":
        folder = root / cls.base_folder
        names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        return [folder / n for n in names]
    # why: MNIST-style sets read the un-gzipped IDX files under <root>/<ClassName>/raw
    folder = root / cls.__name__ / "raw"
    return [folder / Path(url).stem for url, _ in cls.resources]


def _load_torchvision(ds: DatasetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Train and test files pooled; images uint8 (N, C, H, W), labels int64."""
    cls, root = _torchvision_class(ds.name), _root(ds)
    xs, ys = [], []
    for train in (True, False):
        try:
            dataset = cls(str(root), train=train, download=ds.download)
        except (RuntimeError, OSError, ValueError, TypeError, KeyError, AssertionError, pickle.UnpicklingError) as err:
            # why: the one boundary where torchvision's (and the network's) errors become ours
            raise DataError(
                "dataset.root", str(root), f"{ds.name} files torchvision can read ({type(err).__name__}: {err})"
            ) from err
        data = np.asarray(dataset.data)  # why: the raw uint8 array, no per-sample PIL transforms
        xs.append(data[:, None] if data.ndim == 3 else data.transpose(0, 3, 1, 2))  # CIFAR is stored HWC
        ys.append(np.asarray(dataset.targets, dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)


def _read_csv(ds: DatasetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Feature columns as float32 and the target column encoded 0..K-1 in sorted label order."""
    import pandas as pd  # why: lazy, only csv needs pandas

    path = Path(ds.path or "")
    if not ds.path or not path.is_file():
        raise DataError("dataset.path", ds.path, "an existing CSV file")
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as err:  # pandas' parser errors are ValueErrors
        raise DataError("dataset.path", ds.path, f"a readable CSV file ({type(err).__name__}: {err})") from err
    columns = [str(c) for c in frame.columns]
    if ds.target not in columns:
        raise DataError("dataset.target", ds.target, f"one of the columns of {ds.path}: {columns}")
    features = frame.drop(columns=[ds.target])
    not_numeric = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if not_numeric:
        raise DataError("dataset.path", ds.path, f"numeric feature columns; not numeric: {not_numeric}")
    if features.shape[1] == 0:
        raise DataError("dataset.path", ds.path, f"at least one feature column besides the target {ds.target!r}")
    gaps = [str(c) for c in features.columns if features[c].isna().any()]
    if gaps or frame[ds.target].isna().any():
        raise DataError("dataset.path", ds.path, f"no missing values; columns with gaps: {gaps or [ds.target]}")
    with np.errstate(over="ignore"):  # a value past float32's range becomes inf here, refused just below
        x = features.to_numpy(dtype=np.float32)
    # why: one inf turns its whole standardised column into NaN, and every trial's loss with it
    not_finite = [str(c) for c, ok in zip(features.columns, np.isfinite(x).all(axis=0), strict=True) if not ok]
    if not_finite:
        allowed = f"finite feature values within float32's range (±3.4e38); not so in columns: {not_finite}"
        raise DataError("dataset.path", ds.path, allowed)
    labels = frame[ds.target]
    # why: str() on mixed object columns gives one sortable type; numeric labels keep numeric order
    values = labels.to_numpy() if pd.api.types.is_numeric_dtype(labels) else labels.astype(str).to_numpy()
    classes, y = np.unique(values, return_inverse=True)
    if len(classes) < 2:
        raise DataError("dataset.target", ds.target, "a label column with at least 2 classes")
    return x, y.astype(np.int64)


def _load_raw(ds: DatasetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Features and integer labels, unscaled. Images as (N, C, H, W), uint8 or float32."""
    if ds.name in _SKLEARN:
        return _load_sklearn(ds.name)
    if ds.name in _TORCHVISION:
        return _load_torchvision(ds)
    if ds.name == "csv":
        return _read_csv(ds)
    raise DataError("dataset.name", ds.name, f"one of {[*_SKLEARN, *_TORCHVISION, 'csv']}")


# --- split and scale -------------------------------------------------------------


def split_sizes(n: int, ds: DatasetConfig, field: str) -> tuple[int, int, int]:
    """Rows of the train / val / test splits of ``n`` rows; DataError naming ``field`` when one would be empty."""
    n_test = max(1, round(n * ds.test_fraction))
    n_val = max(1, round(n * ds.val_fraction))
    if n - n_val - n_test < 1:
        allowed = (
            f"enough rows for a row in each split: {n} rows, val_fraction {ds.val_fraction} and "
            f"test_fraction {ds.test_fraction} leave {n - n_val - n_test} for training"
        )
        raise DataError(field, getattr(ds, field.partition(".")[2]), allowed)
    return n - n_val - n_test, n_val, n_test


def _split_field(ds: DatasetConfig, rows: int) -> str:
    """The field to name when ``rows`` rows (before ``max_samples``) cannot be split."""
    if ds.max_samples is not None and ds.max_samples < rows:
        return "dataset.max_samples"
    return "dataset.path" if ds.name == "csv" else "dataset.val_fraction"


def split_indices(n: int, ds: DatasetConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train / val / test row indices, a function of (n, fractions, split_seed) only; each non-empty."""
    _, n_val, n_test = split_sizes(n, ds, _split_field(ds, n))
    perm = np.random.default_rng(ds.split_seed).permutation(n)
    return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]


def _fit_scaling(train: np.ndarray, kind: str) -> tuple[Any, Any, float]:
    """(shift, factor, offset) from the training rows only: scaled = (x - shift) * factor + offset."""
    if kind == "image":
        lo, hi = float(train.min()), float(train.max())
        return lo, 2.0 / max(hi - lo, 1e-12), -1.0
    mean, std = train.mean(axis=0, dtype=np.float64), train.std(axis=0, dtype=np.float64)
    # why: a constant training column has std 0; leave it centred instead of dividing by zero
    return mean.astype(np.float32), (1.0 / np.where(std > 0, std, 1.0)).astype(np.float32), 0.0


def _apply_scaling(x: np.ndarray, scaling: tuple[Any, Any, float]) -> np.ndarray:
    shift, factor, offset = scaling
    out = x.astype(np.float32)  # a copy; then in place, so CIFAR-sized arrays are not copied again
    out -= shift
    out *= factor
    out += offset
    return out


@dataclass(frozen=True)
class SplitArrays:
    """A dataset split and scaled, as numpy arrays: what the sweep's driver loads once and ships to every
    trial through Ray's object store (no torch needed to make or send it). Fields as in ``Splits``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    kind: str
    num_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to_splits(self) -> Splits:
        """As torch tensors sharing the arrays' memory (no copy)."""
        import torch

        with warnings.catch_warnings():
            # why: arrays read from Ray's object store are read-only; the training loop never writes to its data
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensors = {k: torch.from_numpy(getattr(self, k)) for k in _SPLIT_FIELDS}
        return Splits(**tensors, kind=self.kind, num_classes=self.num_classes, name=self.name)


def load_arrays(ds: DatasetConfig) -> SplitArrays:
    """Load, split and scale a dataset, as numpy arrays."""
    x, y = _load_raw(ds)
    field = _split_field(ds, len(x))
    if ds.max_samples is not None and len(x) > ds.max_samples:
        keep = np.random.default_rng(ds.split_seed + 1).permutation(len(x))[: ds.max_samples]
        x, y = x[keep], y[keep]
    split_sizes(len(x), ds, field)  # why: name the field that made a split empty, as check_dataset does
    tr, va, te = split_indices(len(x), ds)
    x_tr = x[tr]
    scaling = _fit_scaling(x_tr, ds.kind)
    return SplitArrays(
        x_train=_apply_scaling(x_tr, scaling),
        y_train=y[tr],
        x_val=_apply_scaling(x[va], scaling),
        y_val=y[va],
        x_test=_apply_scaling(x[te], scaling),
        y_test=y[te],
        kind=ds.kind,
        num_classes=int(y.max()) + 1,
        name=ds.name,
    )


def load_splits(ds: DatasetConfig) -> Splits:
    """Load, split and scale a dataset (on the CPU), as torch tensors."""
    return load_arrays(ds).to_splits()


@functools.lru_cache(maxsize=4)
def cached_splits(ds: DatasetConfig) -> Splits:
    """``load_splits``, once per process and dataset. why: Ray reuses worker processes across trials."""
    return load_splits(ds)


def check_dataset(ds: DatasetConfig) -> None:
    """Fail fast (DataError naming the path or column) when the data cannot be loaded.

    Cheap: for torchvision sets it checks that the files exist (no checksums, no
    loading); a CSV is read once with pandas to check its columns and values. For
    every dataset, that its rows (after ``max_samples``) leave each split a row.
    """
    if ds.name not in (*_SKLEARN, *_TORCHVISION, "csv"):
        raise DataError("dataset.name", ds.name, f"one of {[*_SKLEARN, *_TORCHVISION, 'csv']}")
    rows = len(_read_csv(ds)[0]) if ds.name == "csv" else _ROWS[ds.name]
    split_sizes(rows if ds.max_samples is None else min(rows, ds.max_samples), ds, _split_field(ds, rows))
    if ds.name in _SKLEARN or ds.name == "csv":
        return
    if ds.download:
        return  # why: whether the network answers is only known by trying; load_splits reports it
    missing = [str(p) for p in _expected_files(ds) if not p.is_file()]
    if missing:
        raise DataError(
            "dataset.root",
            str(_root(ds)),
            f"a folder holding the {ds.name} files (missing: {missing}); "
            "set download: true or put the files under root",
        )
