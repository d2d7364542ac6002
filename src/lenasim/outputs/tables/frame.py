"""A small table of named columns, NumPy only: what a run's tables are built as, printed
from and written to CSV without importing pandas (issue 22.11: pandas and pyarrow cost
`lenasim run` ~0.25 s of start-up).

:class:`Columns` is an ordered mapping of column name -> 1-D column: a NumPy array of
floats, integers or booleans, or a list (strings and anything else). Its columns are
typed as :class:`pandas.DataFrame` types the same values (:func:`column`), and
:meth:`Columns.to_csv` writes exactly what ``DataFrame.to_csv(index=False)`` writes
(tests/outputs/test_frame.py checks both against pandas itself). :func:`read_csv` reads
such a file back, typing its columns as ``pandas.read_csv`` does for the files lenasim
writes. :meth:`Columns.to_pandas` gives the DataFrame, for the callers that want one.
"""

from __future__ import annotations

import csv
import functools
import math
import numbers
import re
from collections import namedtuple
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Columns", "as_columns", "column", "read_csv"]

# What pandas.read_csv reads as missing by default (pandas' STR_NA_VALUES).
NA_VALUES = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                       "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None",
                       "n/a", "nan", "null"})  # fmt: skip
_TRUE, _FALSE = frozenset({"True", "TRUE", "true"}), frozenset({"False", "FALSE", "false"})
# pandas' parser reads a number with ASCII whitespace around it (a quoted "0\n") as that
# number, but not infinity so written; int() and float() strip the same whitespace.
_INT = re.compile(r"\s*[+-]?\d+\s*", re.ASCII)
_FLOAT = re.compile(r"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)\s*|[+-]?(inf|infinity)",
                    re.IGNORECASE | re.ASCII)  # fmt: skip


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def column(values: Iterable[Any]) -> np.ndarray | list:
    """``values`` typed as a DataFrame column of them is: booleans, integers or floats
    (integers with floats or None: floats, None as NaN) as a NumPy array, anything else
    (strings, mixed values) as a list."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"a column is 1-D, not of shape {values.shape}")
        if values.dtype.kind in "fiub":
            return values
        values = values.tolist()
    vals = list(values)
    if not vals:
        return vals
    if all(isinstance(v, bool | np.bool_) for v in vals):
        return np.array(vals, dtype=bool)
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) or v is None
                  for v in vals)  # fmt: skip
    if numeric and all(isinstance(v, numbers.Integral) for v in vals):
        return np.array(vals, dtype=np.int64)
    if numeric and any(v is not None for v in vals):
        return np.array([np.nan if v is None else v for v in vals], dtype=float)
    return vals


class Columns:
    """An ordered table of named 1-D columns of one length (see the module docstring)."""

    def __init__(self, data: Mapping[str, Iterable[Any]] | None = None, attrs: dict | None = None):
        self._data: dict[str, np.ndarray | list] = {}
        self.attrs: dict = dict(attrs or {})
        for name, values in (data or {}).items():
            self[name] = values

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
                  ) -> Columns:  # fmt: skip
        """The table of ``rows`` (dicts), its columns ``columns`` or the keys of the rows in
        their order of appearance (as ``pandas.DataFrame(rows, columns=columns)``)."""
        if columns is None:
            columns = list(dict.fromkeys(k for r in rows for k in r))
        return cls({c: [r.get(c) for r in rows] for c in columns})

    # ------------------------------------------------------------------ access
    @property
    def columns(self) -> list[str]:
        return list(self._data)

    def __len__(self) -> int:
        return len(next(iter(self._data.values()))) if self._data else 0

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __getitem__(self, name: str) -> np.ndarray | list:
        return self._data[name]

    def __setitem__(self, name: str, values: Iterable[Any]) -> None:
        col = column(values)
        if self._data and name not in self._data and len(col) != len(self):
            raise ValueError(f"column {name!r} has {len(col)} values, the table {len(self)} rows")
        self._data[name] = col

    def pop(self, name: str) -> np.ndarray | list:
        return self._data.pop(name)

    def values(self, name: str) -> list:
        """A column as Python values (floats, ints, bools, strings)."""
        col = self._data[name]
        return col.tolist() if isinstance(col, np.ndarray) else list(col)

    def itertuples(self) -> Iterator[tuple]:
        """The rows as named tuples of Python values (``DataFrame.itertuples(index=False)``)."""
        row = _row_type(tuple(self.columns))
        return (row(*r) for r in zip(*(self.values(c) for c in self.columns), strict=True))

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts (``DataFrame.to_dict("records")``)."""
        names = self.columns
        return [dict(zip(names, r, strict=True))
                for r in zip(*(self.values(c) for c in names), strict=True)]  # fmt: skip

    def take(self, which: Sequence[int] | np.ndarray) -> Columns:
        """The rows at positions ``which`` (or where the boolean mask ``which`` is True)."""
        idx = np.asarray(which)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        out = Columns(attrs=self.attrs)
        for name, col in self._data.items():
            out._data[name] = col[idx] if isinstance(col, np.ndarray) else [col[i] for i in idx]
        return out

    def groupby(self, *keys: str) -> Iterator[tuple[Any, Columns]]:
        """(key, rows) per distinct value of the columns ``keys`` in order of first
        appearance (``DataFrame.groupby(keys, sort=False)``; one key: the value itself)."""
        cols = [self.values(k) for k in keys]
        groups: dict[Any, list[int]] = {}
        for i, key in enumerate(zip(*cols, strict=True)):
            groups.setdefault(key if len(keys) > 1 else key[0], []).append(i)
        for key, idx in groups.items():
            yield key, self.take(idx)

    def join(self, other: Columns) -> Columns:
        """The columns of ``self`` then those of ``other`` (same rows, by position)."""
        if len(self.columns) and len(other.columns) and len(self) != len(other):
            raise ValueError(f"cannot join tables of {len(self)} and {len(other)} rows")
        out = Columns(attrs=self.attrs)
        out._data = {**self._data, **other._data}
        return out

    # ------------------------------------------------------------------ out
    def to_csv(self, path: str | Path, index: bool = False, float_format: str | None = None
               ) -> None:  # fmt: skip
        """Write the table as ``pandas.DataFrame.to_csv(path, index=False,
        float_format=float_format)`` does, byte for byte (``index``: False, the only
        value, for the callers that pass it to a DataFrame too)."""
        if index:
            raise ValueError("Columns has no index to write")
        with open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(self.columns)
            cells = [_csv_cells(c, float_format) for c in self._data.values()]
            w.writerows(zip(*cells, strict=True))

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        df = pd.DataFrame({name: col for name, col in self._data.items()}, columns=self.columns)
        df.attrs.update(self.attrs)
        return df


@functools.lru_cache(maxsize=64)
def _row_type(names: tuple[str, ...]) -> type:
    """The named tuple of a table's rows (made once per set of column names: making one
    costs ~0.3 ms)."""
    return namedtuple("Row", names, rename=True)  # noqa: PYI024


def as_columns(table: Columns | pd.DataFrame) -> Columns:
    """``table`` as :class:`Columns`: itself, or a DataFrame's columns (its index left
    out), read through the DataFrame's own methods (pandas is not imported here)."""
    if isinstance(table, Columns):
        return table
    return Columns({name: table[name].to_numpy() for name in table.columns},
                   attrs=getattr(table, "attrs", None))  # fmt: skip


def _csv_cells(col: np.ndarray | list, float_format: str | None) -> list:
    """A column as pandas hands it to the csv writer (pandas.core.indexes.base.
    get_values_for_csv): floats by NumPy's shortest repr or ``float_format``, NaN and
    None empty, other values as they are."""
    if isinstance(col, np.ndarray) and col.dtype.kind == "f":
        nan = np.isnan(col)
        if float_format is None:
            out = col.astype(str).astype(object)
        else:
            out = np.array([float_format % v for v in col.tolist()], dtype=object)
        out[nan] = ""
        return out.tolist()
    if isinstance(col, np.ndarray):
        return col.astype(str).tolist()
    return ["" if _missing(v) else v for v in col]


# ---------------------------------------------------------------------- in


def read_csv(path: str | Path) -> Columns:
    """A CSV file as a table, its columns typed as ``pandas.read_csv(path)`` types them:
    integers (no value missing), floats (missing: NaN), booleans (True/False; with
    one missing, a list with NaN), else strings (missing: NaN); pandas' missing-value words are missing. An
    empty file is an empty table."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return Columns()
    header, body = rows[0], rows[1:]
    if any(len(r) != len(header) for r in body):
        raise ValueError(f"{path}: rows of another length than the header's {len(header)}")
    return Columns({name: _parse([r[i] for r in body]) for i, name in enumerate(header)})


def _parse(raw: list[str]) -> np.ndarray | list:
    na = [v in NA_VALUES for v in raw]
    vals = [v for v, m in zip(raw, na, strict=True) if not m]
    if not raw:
        return []
    if not vals:
        return np.full(len(raw), np.nan)
    if all(_INT.fullmatch(v) for v in vals):
        if not any(na):
            return np.array([int(v) for v in vals], dtype=np.int64)
        return np.array([np.nan if m else float(v) for v, m in zip(raw, na, strict=True)])
    if all(_FLOAT.fullmatch(v) for v in vals):
        return np.array([np.nan if m else float(v) for v, m in zip(raw, na, strict=True)])
    if all(v in _TRUE or v in _FALSE for v in vals):
        if not any(na):
            return np.array([v in _TRUE for v in vals], dtype=bool)
        return [np.nan if m else v in _TRUE for v, m in zip(raw, na, strict=True)]
    return [np.nan if m else v for v, m in zip(raw, na, strict=True)]
