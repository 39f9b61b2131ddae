"""Issue 16, "nothing let in", for data: a dataset that cannot be split and trained on is a ``DataError``
naming the field (``dataset.path``, the column, ``dataset.max_samples``), raised by ``check_dataset`` (which
the CLI runs before anything starts) and by the loader itself, so no trial ever meets it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainables.config import DatasetConfig
from trainables.data import DataError, check_dataset, load_arrays, split_indices


def _csv(tmp_path: Path, header: str, rows: list[str]) -> DatasetConfig:
    path = tmp_path / "data.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return DatasetConfig(name="csv", path=str(path), target="label")


def _refused(ds: DatasetConfig, field: str, *named: str) -> None:
    for call in (check_dataset, load_arrays):
        with pytest.raises(DataError) as info:
            call(ds)
        assert info.value.field == field, info.value
        for text in named:
            assert text in str(info.value), info.value


@pytest.mark.parametrize("bad", ["inf", "-inf", "1e39"], ids=["inf", "-inf", "beyond-float32"])
def test_csv_features_that_are_not_finite_name_the_path_and_the_column(tmp_path: Path, bad: str) -> None:
    rows = [f"{i},{bad if i == 7 else i * 0.5},{i % 2}" for i in range(40)]
    _refused(_csv(tmp_path, "a,b,label", rows), "dataset.path", "'b'", "finite")


def test_csv_with_too_few_rows_for_three_splits_is_refused(tmp_path: Path) -> None:
    rows = [f"{i},{i % 2}" for i in range(2)]
    _refused(_csv(tmp_path, "a,label", rows), "dataset.path", "rows")


def test_max_samples_too_small_for_the_fractions_names_max_samples() -> None:
    ds = DatasetConfig(max_samples=10, val_fraction=0.49, test_fraction=0.49)
    _refused(ds, "dataset.max_samples", "10")


def test_fractions_too_large_for_a_small_builtin_dataset_are_refused() -> None:
    # wine has 178 rows: 0.4999 of them rounds to 89, twice, leaving no training row
    ds = DatasetConfig(name="wine", val_fraction=0.4999, test_fraction=0.4999)
    _refused(ds, "dataset.val_fraction", "178")


def test_the_smallest_splittable_csv_loads_with_a_row_in_each_split(tmp_path: Path) -> None:
    ds = _csv(tmp_path, "a,label", [f"{i},{i % 2}" for i in range(3)])
    check_dataset(ds)
    s = load_arrays(ds)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (1, 1, 1)


def test_split_indices_refuses_a_split_with_an_empty_part() -> None:
    with pytest.raises(DataError):
        split_indices(2, DatasetConfig())
    tr, va, te = split_indices(3, DatasetConfig())
    assert len(tr) == len(va) == len(te) == 1 and sorted(np.concatenate([tr, va, te])) == [0, 1, 2]


def test_csv_target_with_one_class_names_the_target(tmp_path: Path) -> None:
    # a guard: refused before issue 16 too
    _refused(_csv(tmp_path, "a,label", [f"{i},same" for i in range(20)]), "dataset.target", "label")


def test_the_builtin_row_counts_are_the_datasets(tmp_path: Path) -> None:
    from trainables.data import _ROWS, _load_raw

    for name in ("digits", "breast_cancer", "wine"):
        assert len(_load_raw(DatasetConfig(name=name))[0]) == _ROWS[name]
