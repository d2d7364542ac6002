"""evidence_rows: the evidence table's validated rows without pandas (the run's mirrored
trial reads them so), the same rows, values and errors as load_evidence's DataFrame."""

from __future__ import annotations

import math
from importlib import resources

import pandas as pd
import pytest

from helpers import assert_leaves_unimported
from lenasim.core.errors import EvidenceError
from lenasim.evidence.table import EvidenceRow, evidence_rows, load_evidence

CSV_TEXT = (resources.files("lenasim.evidence") / "data" / "evidence.csv").read_text()


def test_the_records_are_the_dataframes_rows_on_the_shipped_table():
    """Every row and field of the shipped table: missing counts None where the DataFrame
    has <NA>, missing percents NaN in both, everything else equal and of a like type."""
    df, recs = load_evidence(), evidence_rows()
    assert list(df.columns) == list(EvidenceRow._fields)
    assert len(recs) == len(df) > 60
    assert [r.row_id for r in recs] == list(df["row_id"])
    for rec, (_, row) in zip(recs, df.iterrows(), strict=True):
        for field in EvidenceRow._fields:
            mine, theirs = getattr(rec, field), row[field]
            if theirs is pd.NA:
                assert mine is None, (rec.row_id, field)
            elif isinstance(theirs, float) and math.isnan(theirs):
                assert isinstance(mine, float) and math.isnan(mine), (rec.row_id, field)
            else:
                assert mine == theirs, (rec.row_id, field, mine, theirs)
                assert isinstance(mine, (bool, int, float, str, tuple)), (field, type(mine))
                assert isinstance(mine, bool) == isinstance(theirs, bool), field
    assert any(r.cycle_k is None for r in recs) and any(r.events is None for r in recs)


def test_callers_get_their_own_list():
    first = evidence_rows()
    first.clear()
    assert len(evidence_rows()) == len(load_evidence())


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("ck06_b_flare,", "ck06_a_flare,", "field 'row_id': duplicate of line"),
        ("percent_reported", "percent", "unknown columns ['percent']"),
        ("aue_flare_c2,", "aue_flare_c2 ,", None),  # stripped: no error
    ],
)
def test_the_same_errors_as_the_dataframe(tmp_path, old, new, words):
    p = tmp_path / "evidence.csv"
    p.write_text(CSV_TEXT.replace(old, new, 1))
    if words is None:
        assert [r.row_id for r in evidence_rows(p)] == list(load_evidence(p)["row_id"])
        return
    with pytest.raises(EvidenceError) as rows_err:
        evidence_rows(p)
    with pytest.raises(EvidenceError) as frame_err:
        load_evidence(p)
    assert str(rows_err.value) == str(frame_err.value)
    assert str(p) in str(rows_err.value) and words in str(rows_err.value)


def test_a_bad_value_and_double_counting_are_refused_alike(tmp_path):
    """A count that is not a number, and two fitted rows of the same patients (the check
    runs on the records now, for both readers)."""
    lines = CSV_TEXT.splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if line.startswith("ck06_pooled_flare_review,"))
    for text, words in (
        (CSV_TEXT.replace(",25,", ",x25,", 1), "is not a whole number"),
        ("".join(lines[:i] + [lines[i].replace(",false,", ",true,", 1)] + lines[i + 1 :]),
         "counting the same patients twice"),
    ):  # fmt: skip
        p = tmp_path / "evidence.csv"
        p.write_text(text)
        assert text != CSV_TEXT
        with pytest.raises(EvidenceError, match=words) as rows_err:
            evidence_rows(p)
        with pytest.raises(EvidenceError) as frame_err:
            load_evidence(p)
        assert str(rows_err.value) == str(frame_err.value)


def test_evidence_rows_import_no_pandas():
    code = "from lenasim.evidence.table import evidence_rows\nassert len(evidence_rows()) > 60\n"
    assert_leaves_unimported(code, ("pandas", "pyarrow"))
