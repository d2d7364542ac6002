"""Predictive laws of a held-out evidence row: the randomised PIT and the pooled
Beta-binomial baseline that ignores dose and schedule; the mixtures and new-trial
predictions of rows (:func:`predict_rows`) live in :mod:`lenasim.model.predictive`, which
the run's outputs share. See the package docstring for the definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from lenasim.model.predictive import (  # noqa: F401 - re-exported for validation's callers
    EFFECTS_PER_DRAW,
    MixtureBinomial,
    MixtureNormal,
    _new_trial_effects,
    predict_rows,
)


class BetaBinomialPredictive(MixtureBinomial):
    """Beta-binomial(n, a, b): the baseline's exact posterior predictive."""

    def __init__(self, n: int, a: float, b: float):
        self.n = int(n)
        self.a, self.b = float(a), float(b)
        k = np.arange(self.n + 1)
        self.pmf_table = stats.betabinom.pmf(k, self.n, self.a, self.b)
        self.cdf_table = np.minimum(np.cumsum(self.pmf_table), 1.0)


def randomized_pit(pred, y: float, v: float) -> float:
    """P(Y < y) + v P(Y = y) (v ~ U(0,1)); for a continuous predictive P(Y <= y)."""
    if not pred.discrete:
        return pred.cdf(y)
    below = pred.cdf(y - 1) if y >= 1 else 0.0
    return below + v * pred.pmf(y)


def _unit_family(unit: str) -> str:
    return "patients" if unit == "patients" else "per_cycle"


def baseline_predictive(train: pd.DataFrame, row) -> BetaBinomialPredictive:
    """Beta(1,1)-binomial predictive of ``row`` from the training rows of its outcome,
    setting and unit family (patients / per cycle), ignoring dose and schedule."""
    fam = _unit_family(row["unit"])
    same = train[(train["outcome"] == row["outcome"]) & (train["setting"] == row["setting"])
                 & (train["unit"].map(_unit_family) == fam)]  # fmt: skip
    ev = float(same["events"].astype(float).sum())
    n = float(same["n"].astype(float).sum())
    return BetaBinomialPredictive(int(row["n"]), 1.0 + ev, 1.0 + n - ev)
