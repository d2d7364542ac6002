"""outputs/tables/frame.py: the run's NumPy tables write the bytes pandas writes and read
back what pandas reads, checked against pandas itself on generated tables (floats at
every scale with NaN, infinities and -0.0, integers, booleans, strings with commas,
quotes and newlines, missing values, mixed columns)."""

from __future__ import annotations

import functools
import io
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lenasim.outputs.tables.frame import Columns, as_columns, column, read_csv

FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e16, 1e-5, 1.5e-300, 0.1 + 0.2, 123456789.0, 1e22, 5e-324, 0.5, 2.0]
)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=6) | st.sampled_from(
    ["a,b", 'say "x"', "two\nlines", "", " ", "nan", "None", "1", "1.5", "True"]
)
# What lenasim writes in its tables' text: words, numbers, punctuation, line breaks.
WORDS = (
    st.text(st.sampled_from("abcXYZ019 .,;:%-+()<>=/\"'\n"), max_size=8)
    | st.sampled_from(
        [
            "a,b",
            'say "x"',
            "two\nlines",
            "",
            "nan",
            "None",
            "NA",
            "1",
            "-2",
            "1.5",
            "1e-05",
            "inf",
            "True",
            "false",
            "acceptable: no patient reaches cycle 3",
        ]
    )
).filter(lambda s: s == s.strip(" "))  # lenasim writes no cell with outer spaces


# One column's values: homogeneous as the run's tables are, or mixed as rows may be.
def values_of(text):
    return {
        "float": FLOATS,
        "int": st.integers(-(2**62), 2**62),
        "bool": st.booleans(),
        "text": text,
        "text_or_none": text | st.none(),
        "int_or_float": st.integers(-1000, 1000) | FLOATS,
        "float_or_none": FLOATS | st.none(),
        "mixed": st.one_of(
            st.integers(-9, 9), st.floats(-1e3, 1e3), st.booleans(), text, st.none()
        ),  # fmt: skip
    }


@functools.cache
def _strategies(text):
    """The strategies :func:`tables` draws from, built once per kind of text: built anew
    in each draw, hypothesis worked out their properties (emptiness, the filters' bounds
    from the lambdas' source) for every example, ~1/3 of these tests' CPU (issue 22.12).
    The same strategies, so the same tables."""
    values = values_of(text)
    names = text.filter(lambda s: s.strip() != "")
    return SimpleNamespace(
        kinds=st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=5),
        names={k: st.lists(names, min_size=k, max_size=k, unique=True) for k in range(1, 6)},
        column={(k, n): st.lists(v, min_size=n, max_size=n) for k, v in values.items()
                for n in range(7)},
    )  # fmt: skip


@st.composite
def tables(draw, text=TEXT):
    n = draw(st.integers(0, 6))
    s = _strategies(text)
    kinds = draw(s.kinds)
    names = draw(s.names[len(kinds)])
    return [{name: v for name, v in zip(names, vals, strict=True)}
            for vals in zip(*(draw(s.column[k, n]) for k in kinds),
                            strict=True)] if n else [], names  # fmt: skip


# The fast suite tries a quarter of each property's examples (the four took 7.8 s of its
# ~88 s of CPU, ~8 ms per example); the slow twins at the end try them all (issue 22.12).
FAST = {300: 75, 200: 50, 100: 25}


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    """The file each example writes, removed first (a folder per example cost ~0.2 s of
    CPU): what a test reads is what its example wrote."""
    return tmp_path_factory.mktemp("csv") / "t.csv"


def _pandas_csv(df: pd.DataFrame, **kw) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, **kw)
    return buf.getvalue().encode("utf-8")


@settings(max_examples=FAST[300], deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from([None, "%.6g", "%.8g"]))
def test_to_csv_writes_the_bytes_pandas_writes(csv_path, table, float_format):
    rows, names = table
    csv_path.unlink(missing_ok=True)
    Columns.from_rows(rows, names).to_csv(csv_path, index=False, float_format=float_format)
    expected = _pandas_csv(pd.DataFrame(rows, columns=names), float_format=float_format)
    assert csv_path.read_bytes() == expected


@settings(max_examples=FAST[200], deadline=None)
@given(tables())
def test_columns_are_typed_as_pandas_types_them(table):
    rows, names = table
    ours = Columns.from_rows(rows, names).to_pandas()
    theirs = pd.DataFrame(rows, columns=names)
    assert list(ours.columns) == list(theirs.columns)
    for name in names:
        if len(theirs):
            assert ours[name].dtype.kind == theirs[name].dtype.kind, name
        assert ours[name].isna().tolist() == theirs[name].isna().tolist()


@settings(max_examples=FAST[300], deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(WORDS))
@example(([{"0": "0\n"}], ["0"]))  # pandas reads a number with whitespace around it
def test_read_csv_reads_what_pandas_reads(csv_path, table):
    """The file written, read back by :func:`read_csv` and by ``pandas.read_csv``: the same
    columns, the same kinds of column (NaN-aware) and the same values."""
    rows, names = table
    csv_path.unlink(missing_ok=True)
    Columns.from_rows(rows, names).to_csv(csv_path)
    try:
        theirs = pd.read_csv(csv_path)
    except pd.errors.EmptyDataError:
        assert read_csv(csv_path).columns == []
        return
    ours = read_csv(csv_path)
    assert ours.columns == list(theirs.columns)
    for name in ours.columns:
        got, exp = ours.values(name), theirs[name].tolist()
        kind = theirs[name].dtype.kind
        if len(theirs):
            col = ours[name]
            assert (
                (kind in "OT" and isinstance(col, list))
                if not isinstance(col, np.ndarray)
                else col.dtype.kind == kind
            ), (name, kind, col)
        assert len(got) == len(exp)
        for a, b in zip(got, exp, strict=True):
            if isinstance(b, float) and math.isnan(b):
                assert isinstance(a, float) and math.isnan(a), (name, a)
            else:
                assert a == b and type(a) is type(b), (name, a, b)


def test_column_types_and_rows():
    t = Columns({"event": ["tls", "flare", "tls"], "n": [1, 2, 3], "p": [0.5, None, 1.0],
                 "ok": [True, False, True]})  # fmt: skip
    assert t["n"].dtype == np.int64 and t["ok"].dtype == bool
    assert np.isnan(t["p"][1])
    assert [r.event for r in t.itertuples()] == ["tls", "flare", "tls"]
    assert [(k, len(g)) for k, g in t.groupby("event")] == [("tls", 2), ("flare", 1)]
    assert t.take(t["ok"]).values("n") == [1, 3]
    assert t.rows()[1] == {"event": "flare", "n": 2, "p": pytest.approx(np.nan, nan_ok=True),
                           "ok": False}  # fmt: skip
    assert isinstance(column(["a", 1]), list)
    with pytest.raises(ValueError, match="has 2 values"):
        t["x"] = [1, 2]
    with pytest.raises(ValueError, match="no index"):
        t.to_csv("x.csv", index=True)


@settings(max_examples=FAST[100], deadline=None)
@given(tables())
def test_a_dataframe_as_columns_writes_the_same_csv(csv_path, table):
    """The terminal's and the report's formatters take either kind of table: a DataFrame
    seen through as_columns has its columns, kinds and CSV bytes."""
    rows, names = table
    df = pd.DataFrame(rows, columns=names)
    csv_path.unlink(missing_ok=True)
    as_columns(df).to_csv(csv_path)
    assert csv_path.read_bytes() == _pandas_csv(df)
    assert as_columns(Columns.from_rows(rows, names)).columns == list(names)


# ------------------------------------------- the slow twins: every example (issue 22.12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.slow
@given(tables(), st.sampled_from([None, "%.6g", "%.8g"]))
def test_to_csv_writes_the_bytes_pandas_writes_300_examples(csv_path, table, float_format):
    test_to_csv_writes_the_bytes_pandas_writes.hypothesis.inner_test(csv_path, table,
                                                                     float_format)  # fmt: skip


@settings(max_examples=200, deadline=None)
@pytest.mark.slow
@given(tables())
def test_columns_are_typed_as_pandas_types_them_200_examples(table):
    test_columns_are_typed_as_pandas_types_them.hypothesis.inner_test(table)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.slow
@given(tables(WORDS))
def test_read_csv_reads_what_pandas_reads_300_examples(csv_path, table):
    test_read_csv_reads_what_pandas_reads.hypothesis.inner_test(csv_path, table)


@settings(max_examples=100, deadline=None)
@pytest.mark.slow
@given(tables())
def test_a_dataframe_as_columns_writes_the_same_csv_100_examples(csv_path, table):
    test_a_dataframe_as_columns_writes_the_same_csv.hypothesis.inner_test(csv_path, table)
