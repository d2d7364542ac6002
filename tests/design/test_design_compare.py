"""Paired differences between two designs run on the same simulated trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lenasim.core.errors import LenasimError
from lenasim.design.compare import paired_differences
from lenasim.design.rules import Boin, ThreePlusThree
from lenasim.design.trial import TrialDesign, run_trial
from lenasim.design.truth import dose_level_outcomes


def _table(rule, n_trials: int = 400) -> pd.DataFrame:
    rows = []
    for t in range(n_trials):
        out = dose_level_outcomes([0.05, 0.12, 0.25, 0.4], 24, seed=21, trial=t)
        rec = run_trial(out, TrialDesign(3, 24, enough_patients=9), rule)
        rows.append({"truth": "x", "trial": t, "posterior_index": 0,
                     "selected": str(rec.selected), "patients": rec.candidate.size,
                     "duration_days": rec.duration})  # fmt: skip
    return pd.DataFrame(rows)


def test_hand_example():
    a = pd.DataFrame({"truth": "x", "trial": [0, 1, 2], "posterior_index": [5, 6, 7],
                      "selected": ["A", "B", "A"], "patients": [6, 9, 12],
                      "duration_days": [10.0, 20, 30]})  # fmt: skip
    b = a.assign(selected=["B", "B", "A"], patients=[7, 10, 12])
    d = paired_differences(a, b).set_index(["quantity", "candidate"])
    assert d.loc[("p_select", "A"), "difference"] == pytest.approx(-1 / 3)
    assert d.loc[("patients", ""), "difference"] == pytest.approx(2 / 3)
    # differences 1, 1, 0: sd 0.577 / sqrt(3)
    assert d.loc[("patients", ""), "mcse_paired"] == pytest.approx(
        np.std([1, 1, 0], ddof=1) / np.sqrt(3)
    )


def test_pairing_shrinks_the_error_on_the_same_patients():
    """3+3 against BOIN on the same simulated patients: the paired SE of the difference
    in mean patients is below the unpaired one (their sample sizes move together)."""
    # 150 trials (400 cost 0.5 s more): the paired SE is ~0.69 of the unpaired one at
    # both sizes (the designs' patient counts correlate at ~0.5, an estimate whose SE
    # at 150 trials is ~0.06), so the ordering cannot flip by Monte Carlo error.
    d = paired_differences(_table(ThreePlusThree(), 150), _table(Boin(0.25), 150))
    row = d[d.quantity == "patients"].iloc[0]
    assert row.mcse_paired < row.mcse_unpaired


def test_trials_that_do_not_pair_are_refused():
    a = _table(ThreePlusThree(), 5)
    with pytest.raises(LenasimError, match="do not pair"):
        paired_differences(a, a.assign(posterior_index=1))
