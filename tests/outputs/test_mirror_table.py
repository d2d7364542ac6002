"""The mirrored trial without pandas: its table (outputs.tables.frame.Columns) writes the
bytes DataFrame.to_csv writes and prints as the DataFrame did, and the path from the
shipped posterior to mirrored.csv imports neither pandas nor pyarrow (nor the predictive
laws, which the shipped posterior's store makes unnecessary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import assert_leaves_unimported
from lenasim.model.posterior import load_posterior
from lenasim.outputs.judgements.mirror import MIRROR_COLUMNS, format_mirrored, mirrored_rows
from lenasim.outputs.tables.frame import Columns

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "src" / "lenasim" / "models"


@pytest.fixture(scope="module")
def shipped():
    """The mirrored trial of chen_2011_amended (slow_escalation's), from the shipped
    posterior (its stored predictions)."""
    post = load_posterior(MODELS / "default.nc", MODELS / "default.yaml")
    return mirrored_rows(["chen_2011_amended"], post, MODELS / "default.yaml")


def _odd_rows() -> Columns:
    """Fields pandas writes specially: quotes, commas, line ends, small and long floats."""
    rows = [
        ("a,b", 'x "y"', "tls", "patients", 6, 0, 7, 0.0, 1e-05, 1 / 3, 1.0, True, False,
         "Line one\nline two, with a comma"),
        ("c", "d", "flare_any", "cycle_k", 1, 3, 9, 3 / 9, 2.5e-17, 0.1 + 0.2, 123456789.123,
         False, True, ""),
    ]  # fmt: skip
    return Columns.from_rows([dict(zip(MIRROR_COLUMNS, r, strict=True)) for r in rows],
                             columns=MIRROR_COLUMNS)  # fmt: skip


def _empty() -> Columns:
    return Columns.from_rows([], columns=MIRROR_COLUMNS)


def test_to_csv_writes_what_pandas_writes(tmp_path, shipped):
    table, _ = shipped
    assert len(table) >= 4 and table.columns == list(MIRROR_COLUMNS)
    for t in (table, _odd_rows(), _empty()):
        t.to_csv(tmp_path / "mine.csv", index=False)
        t.to_pandas().to_csv(tmp_path / "pandas.csv", index=False)
        assert (tmp_path / "mine.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_to_pandas_types_the_columns(shipped):
    df = shipped[0].to_pandas()
    assert list(df.columns) == list(MIRROR_COLUMNS)
    assert {df[c].dtype.kind for c in ("cycles", "events", "n")} == {"i"}
    assert {df[c].dtype.kind for c in ("observed", "pred_median", "pred_q05")} == {"f"}
    assert {df[c].dtype.kind for c in ("inside90", "in_fit")} == {"b"}


def test_the_text_is_the_dataframes(shipped):
    table, skipped = shipped
    for t in (table, _odd_rows(), _empty()):
        mine = format_mirrored(t, ["chen_2011_amended"], skipped)
        assert mine == format_mirrored(t.to_pandas(), ["chen_2011_amended"], skipped)
    assert list(table["inside90"]) == [r.inside90 for r in table.itertuples()]


def test_the_mirror_path_imports_no_pandas(tmp_path):
    code = (
        "from lenasim.model.posterior import load_posterior\n"
        "from lenasim.outputs.judgements.mirror import format_mirrored, mirrored_rows\n"
        f"p = load_posterior({str(MODELS / 'default.nc')!r})\n"
        f"t, s = mirrored_rows(['chen_2011_amended'], p, {str(MODELS / 'default.yaml')!r})\n"
        f"t.to_csv({str(tmp_path / 'mirrored.csv')!r})\n"
        "assert 'Flare (any grade)' in format_mirrored(t, ['chen_2011_amended'], s)\n"
    )
    # nor the predictive laws: the shipped posterior's predictions are read from its store
    unused = ("lenasim.model.predictive", "lenasim.model.likelihood")
    assert_leaves_unimported(code, ("pandas", "pyarrow", "scipy", "xarray", *unused))
    assert (tmp_path / "mirrored.csv").read_text().startswith(",".join(MIRROR_COLUMNS))
