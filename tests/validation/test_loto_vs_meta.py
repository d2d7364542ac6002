"""validate's per-row comparison with the random-effects meta-analysis (issue 23 item 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lenasim.validation.loto import meta_comparison
from lenasim.validation.report import validation_report


def _table():
    rng = np.random.default_rng(4)
    n = 8
    return pd.DataFrame({
        "trial": ["a", "a", "b", "b", "c", "c", "c", "d"],
        "row_id": [f"r{i}" for i in range(n)],
        "outcome": ["flare_any", "neutropenia_grade34"] * 4,
        "unit": ["patients", "patients", "cycle_k", "cycles"] * 2,
        "n": np.full(n, 20.0), "observed": rng.integers(0, 20, n).astype(float),
        "pred_median": np.full(n, 8.0), "lo90": np.full(n, 2.0), "hi90": np.full(n, 15.0),
        "meta_rate": np.full(n, 0.4), "lpd": rng.normal(-3, 1, n), "lpd_meta": rng.normal(-3, 1, n),
    })  # fmt: skip


def test_meta_comparison_sums_rows_by_outcome_unit_and_trial():
    """Every grouping partitions the rows: its sums add up to the total difference, and
    each group's sum is that of its own rows (a wrong grouping key would break both)."""
    tab = _table()
    rows, s = meta_comparison(tab)
    d = tab["lpd"] - tab["lpd_meta"]
    np.testing.assert_allclose(rows["diff"], d)
    np.testing.assert_allclose(rows["meta_expected"], 0.4 * 20)
    assert s["total"]["diff"] == pytest.approx(d.sum())
    for part, col in (("by_outcome", "outcome"), ("by_unit", "unit"), ("by_trial", "trial")):
        assert sum(g["diff"] for g in s[part].values()) == pytest.approx(d.sum())
        assert sum(g["n_rows"] for g in s[part].values()) == len(tab)
        for key, g in s[part].items():
            sel = d[tab[col] == key]
            assert g["diff"] == pytest.approx(sel.sum())
            assert g["rows_worse"] == int((sel < 0).sum())
    neut = d[tab["outcome"] == "neutropenia_grade34"].to_numpy()
    se = np.sqrt(neut.size * neut.var(ddof=1))
    assert s["by_outcome"]["neutropenia_grade34"]["se"] == pytest.approx(se)
    assert s["by_trial"]["d"]["se"] is None  # one row: no SE (JSON null, not NaN)


def test_report_shows_the_comparison():
    _, s = meta_comparison(_table())
    loto = {"n_rows": 8, "n_trials": 4, "coverage50": {"share": 0.5, "se": 0.1},
            "coverage90": {"share": 0.9, "se": 0.1}, "pit_mean": 0.5, "pit_ks_pvalue": 0.5,
            "elpd_model": -20.0, "elpd_baseline": -25.0,
            "model_vs_baseline": {"diff": 5.0, "se": 2.0}, "vs_meta": s}  # fmt: skip
    text = validation_report({"loto": loto})
    assert "Where the model wins or loses against the meta-analysis" in text
    assert "| outcome neutropenia_grade34 | 4 |" in text
    assert "| unit cycle_k | 2 |" in text
    # trial d has one row: no SE to estimate, said in words, never "nan"
    assert "| trial d | 1 |" in text and "none (one row)" in text and "nan" not in text
