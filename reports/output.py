"""Every file of ``RUN/report/`` is written here: never through a link, and with no CSV cell that runs.

A run directory may come from someone else (a bucket, an archive), so what is already in ``report/`` is not
trusted: a ``report`` directory that is a symbolic link is replaced by a real directory, and each file is
written to a new file that then takes the place of the old name (``os.replace``), so a symbolic or hard link
there is replaced, never written through; what a link pointed to is left as it was.
why replace rather than refuse: the report is rebuilt from the run every time, so nothing of value is lost.

CSV cells that a spreadsheet would run as a formula (text starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) get a leading ``'``, as OWASP's CSV-injection guidance says; numbers, and text that is just a
number (``-0.5``), stay as they are.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def report_dir(path: Path) -> Path:
    """``path`` as a real directory (made if missing; a symbolic link there is removed first)."""
    if path.is_symlink():
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` as the file ``path`` (a new file put in its place: no link at ``path`` is followed)."""
    report_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # why .tmp: the bucket mirror skips half-written files
    tmp.unlink(missing_ok=True)  # left by a killed build; if a link, only the link goes
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    """write_bytes of ``text`` in UTF-8."""
    return write_bytes(path, text.encode("utf-8"))


def formula_safe(value: Any) -> Any:
    """``value`` with a ``'`` before it when a spreadsheet would run it as a formula; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def formula_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with formula_safe applied to its column names and to every text cell (numeric columns skipped)."""
    out = frame.copy(deep=False)
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_datetime64_any_dtype(column.dtype):
            continue
        cells, changed = [], False
        for v in column:
            cells.append(formula_safe(v))
            changed = changed or cells[-1] is not v
        if changed:
            out.isetitem(i, pd.Series(cells, index=frame.index, dtype=object))
    out.columns = [formula_safe(c) for c in frame.columns]
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (without its index) as CSV, formula-safe (see formula_safe_frame)."""
    return write_text(path, formula_safe_frame(frame).to_csv(index=False))


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (without its index) as Parquet, values as they are (no spreadsheet opens Parquet)."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return write_bytes(path, buf.getvalue())
