"""Data: seeded disjoint splits, scaling from training rows only, and every source read from real-format files.

The torchvision loaders run for real on small files written here in the formats
they expect (IDX for MNIST, pickled batches for CIFAR-10); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from trainables.config import DatasetConfig
from trainables.data import DataError, Splits, _load_raw, check_dataset, load_splits, split_indices

# --- splits and scaling ------------------------------------------------------------


def test_splits_are_disjoint_cover_the_data_and_depend_on_the_seed_only() -> None:
    ds = DatasetConfig(val_fraction=0.2, test_fraction=0.1, split_seed=3)
    tr, va, te = split_indices(1000, ds)
    assert (len(tr), len(va), len(te)) == (700, 200, 100)
    assert not set(tr) & set(va) and not set(tr) & set(te) and not set(va) & set(te)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(1000))
    again = split_indices(1000, DatasetConfig(val_fraction=0.2, test_fraction=0.1, split_seed=3))
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again, strict=True))
    other = split_indices(1000, DatasetConfig(val_fraction=0.2, test_fraction=0.1, split_seed=4))
    assert not np.array_equal(tr, other[0])


def test_digits_splits_hold_the_split_rows_scaled_with_training_min_max() -> None:
    ds = DatasetConfig()
    s = load_splits(ds)
    assert s.kind == "image" and s.input_shape == (1, 8, 8) and s.num_classes == 10
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    raw, y = _load_raw(ds)
    tr, va, te = split_indices(len(raw), ds)
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == len(raw) == 1797
    lo, hi = raw[tr].min(), raw[tr].max()
    for x, labels, idx in ((s.x_train, s.y_train, tr), (s.x_val, s.y_val, va), (s.x_test, s.y_test, te)):
        np.testing.assert_allclose(x.numpy(), 2 * (raw[idx] - lo) / (hi - lo) - 1, atol=1e-6)
        np.testing.assert_array_equal(labels.numpy(), y[idx])


def test_images_scaled_to_minus_one_one_with_training_min_and_max() -> None:
    s = load_splits(DatasetConfig())
    assert s.x_train.min().item() == pytest.approx(-1.0) and s.x_train.max().item() == pytest.approx(1.0)
    assert s.x_val.min().item() >= -1.0 - 1e-6


def test_tabular_standardised_with_training_statistics_only() -> None:
    ds = DatasetConfig(name="breast_cancer")
    s = load_splits(ds)
    raw, y = _load_raw(ds)
    tr, va, te = split_indices(len(raw), ds)
    mean, std = raw[tr].astype(np.float64).mean(0), raw[tr].astype(np.float64).std(0)
    for x, idx in ((s.x_train, tr), (s.x_val, va), (s.x_test, te)):
        np.testing.assert_allclose(x.numpy(), (raw[idx] - mean) / std, rtol=1e-4, atol=1e-4)
    assert torch.equal(s.y_val, torch.from_numpy(y[va]))
    np.testing.assert_allclose(s.x_train.mean(0).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(s.x_train.std(0, unbiased=False).numpy(), 1.0, atol=1e-4)
    # why: had the statistics come from all rows, validation would be centred too; it is not, exactly
    assert np.abs(s.x_val.mean(0).numpy()).max() > 1e-3


# --- torchvision sets from files in their real formats ---------------------------------


def _images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """uint8 images, each holding 0 and 255 (so min/max are known) and its own id at the last pixel."""
    img = np.random.default_rng(seed).integers(1, 255, size=(n, *shape), dtype=np.uint8)
    flat = img.reshape(n, -1)
    flat[:, 0], flat[:, 1], flat[:, -1] = 0, 255, np.arange(n)
    return img


def _write_idx(path: Path, array: np.ndarray) -> None:
    # IDX: 2 zero bytes, type code 0x08 (ubyte), number of dims; then each dim as big-endian int32; then the bytes
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist(root: Path, folder: str, n_train: int, n_test: int) -> np.ndarray:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    images = _images(n_train + n_test, (28, 28), seed=1)
    labels = (np.arange(n_train + n_test) % 10).astype(np.uint8)
    for prefix, sl in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[sl])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels[sl])
    return images


def _check_images(s: Splits, originals: np.ndarray) -> None:
    """Every output image is its original (found by the id pixel) scaled with min 0 / max 255, label = id % 10."""
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        unscaled = np.rint((x.numpy() + 1.0) * 127.5).astype(np.int64)
        ids = unscaled.reshape(len(x), -1)[:, -1]
        np.testing.assert_array_equal(unscaled, originals[ids])
        np.testing.assert_array_equal(y.numpy(), ids % 10)


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_style_loader_reads_idx_files(tmp_path: Path, name: str, folder: str) -> None:
    originals = _write_mnist(tmp_path, folder, n_train=30, n_test=10)
    ds = DatasetConfig(name=name, root=str(tmp_path), download=False, val_fraction=0.2, test_fraction=0.2)
    check_dataset(ds)
    s = load_splits(ds)
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (24, 8, 8)  # train and test files pooled: 40
    _check_images(s, originals[:, None])


def _write_cifar(root: Path, per_batch: int) -> tuple[np.ndarray, dict[str, str]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    images = _images(per_batch * len(names), (3, 32, 32), seed=2)
    md5 = {}
    for b, name in enumerate(names):
        sl = slice(b * per_batch, (b + 1) * per_batch)
        # the python-version layout: rows of 3072 bytes (red plane, green, blue; each row-major) and a label list
        entry = {"data": images[sl].reshape(per_batch, -1), "labels": (np.arange(sl.start, sl.stop) % 10).tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    for name in [*names, "batches.meta"]:
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    return images, md5


def test_cifar10_loader_reads_pickled_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision checks each batch file's md5 against the real CIFAR-10 files' sums, which files written
    here cannot match. We swap only the expected sums (class attributes) for the sums of our files: the
    integrity check itself, the unpickling, the reshape and the HWC transpose all run unchanged."""
    originals, md5 = _write_cifar(tmp_path, per_batch=5)
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(cls, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5["batches.meta"]})
    ds = DatasetConfig(name="cifar10", root=str(tmp_path), val_fraction=0.2, test_fraction=0.2)
    check_dataset(ds)
    s = load_splits(ds)
    assert s.input_shape == (3, 32, 32) and s.num_classes == 10
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 30
    _check_images(s, originals)


def test_cifar10_with_wrong_checksums_is_a_data_error(tmp_path: Path) -> None:
    _write_cifar(tmp_path, per_batch=2)  # real torchvision sums: our files fail its integrity check
    with pytest.raises(DataError) as info:
        load_splits(DatasetConfig(name="cifar10", root=str(tmp_path)))
    assert info.value.field == "dataset.root" and "corrupted" in str(info.value)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
@pytest.mark.parametrize("exists", [True, False])
def test_check_dataset_without_files_names_the_path_and_the_fix(tmp_path: Path, name: str, exists: bool) -> None:
    root = tmp_path / "data" if exists else tmp_path / "nowhere"
    if exists:
        root.mkdir()
    with pytest.raises(DataError) as info:
        check_dataset(DatasetConfig(name=name, root=str(root), download=False))
    assert info.value.field == "dataset.root" and info.value.value == str(root)
    assert "set download: true or put the files under root" in str(info.value)


def test_missing_files_at_load_time_are_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset\.root"):
        load_splits(DatasetConfig(name="mnist", root=str(tmp_path), download=False))


# --- csv ---------------------------------------------------------------------------


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


def test_csv_loads_with_string_labels_encoded_in_sorted_order(tmp_path: Path) -> None:
    rows = [f"{i},{i * 0.5},{['zeta', 'alpha', 'mid'][i % 3]},{i % 2}" for i in range(40)]
    path = _csv(tmp_path, "a,b,kind,flag\n" + "\n".join(rows) + "\n")
    ds = DatasetConfig(name="csv", path=path, target="kind")
    check_dataset(ds)
    x, y = _load_raw(ds)
    assert x.shape == (40, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(y[:3], [2, 0, 1])  # alpha=0, mid=1, zeta=2
    s = load_splits(ds)
    assert s.kind == "tabular" and s.num_classes == 3 and s.input_shape == (3,)


def test_csv_missing_path_names_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.csv")
    with pytest.raises(DataError) as info:
        check_dataset(DatasetConfig(name="csv", path=missing, target="y"))
    assert info.value.field == "dataset.path" and missing in str(info.value)


def test_csv_missing_target_column_lists_the_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, "a,b,label\n1,2,x\n3,4,y\n")
    with pytest.raises(DataError) as info:
        check_dataset(DatasetConfig(name="csv", path=path, target="class"))
    assert info.value.field == "dataset.target" and info.value.value == "class"
    assert "'label'" in info.value.allowed and "'a'" in info.value.allowed


def test_csv_non_numeric_feature_is_named(tmp_path: Path) -> None:
    path = _csv(tmp_path, "a,colour,label\n1,red,0\n2,blue,1\n")
    for call in (check_dataset, load_splits):
        with pytest.raises(DataError) as info:
            call(DatasetConfig(name="csv", path=path, target="label"))
        assert info.value.field == "dataset.path" and "colour" in str(info.value)


def test_digits_read_from_the_package_file_equal_sklearns_loader() -> None:
    from sklearn.datasets import load_digits

    from trainables.data import _digits_from_package_file

    found = _digits_from_package_file()
    assert found is not None, "scikit-learn's digits.csv.gz not found where scikit-learn keeps it"
    x, y = found
    bunch = load_digits()
    assert x.dtype == np.float32 and x.shape == (1797, 1, 8, 8)
    np.testing.assert_array_equal(x, bunch.images[:, None].astype(np.float32))
    np.testing.assert_array_equal(y, bunch.target)
