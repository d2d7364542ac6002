"""The random-effects meta-analysis baseline (validation.predictive.MetaAnalysisPredictive):
checked against Monte Carlo of its own generative model and against the binomial limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from lenasim.validation.predictive import (
    META_MU_PRIOR,
    MetaAnalysisPredictive,
    meta_analysis_predictive,
)


def test_prior_predictive_matches_monte_carlo_of_the_model():
    """No training rows: the predictive is the prior predictive of mu ~ N(0, 2), tau ~
    HN(scale), z ~ N(0, 1), y ~ Bin(n, expit(mu + tau z)). 200,000 simulated counts give
    each cell's probability to SE <= 0.0012; the tolerance is 5 SE."""
    n, scale, m = 10, 1.1, 200_000
    rng = np.random.default_rng(7)
    mu = rng.normal(*META_MU_PRIOR, m)
    tau = np.abs(rng.normal(0, scale, m))
    y = rng.binomial(n, expit(mu + tau * rng.standard_normal(m)))
    mc = np.bincount(y, minlength=n + 1) / m
    pred = MetaAnalysisPredictive(n, [], [], scale)
    se = np.sqrt(mc * (1 - mc) / m)
    assert np.all(np.abs(pred.pmf_table - mc) <= 5 * se + 1e-4)


def test_many_homogeneous_trials_give_the_binomial_at_the_pooled_rate():
    """40 trials of 200 at exactly 25%: mu is pinned near logit(0.25) and tau near 0, so the
    predictive of a new trial of 60 is close to Binomial(60, 0.25) (total variation < 0.03)."""
    pred = MetaAnalysisPredictive(60, [50] * 40, [200] * 40, 1.1)
    binom = stats.binom.pmf(np.arange(61), 60, 0.25)
    assert 0.5 * np.abs(pred.pmf_table - binom).sum() < 0.03
    assert pred.rate == pytest.approx(0.25, abs=0.01)


def test_heterogeneous_trials_widen_the_predictive():
    homo = MetaAnalysisPredictive(50, [30] * 6, [100] * 6, 1.1)
    hetero = MetaAnalysisPredictive(50, [5, 55, 10, 50, 30, 30], [100] * 6, 1.1)
    width = lambda p: p.quantile(0.95) - p.quantile(0.05)  # noqa: E731
    assert width(hetero) > 2 * width(homo)


def test_groups_by_outcome_and_unit_family_only():
    train = pd.DataFrame({
        "outcome": ["tls", "tls", "tls", "flare_any"],
        "unit": ["patients", "patients", "cycle_k", "patients"],
        "setting": ["relapsed", "untreated", "relapsed", "relapsed"],
        "events": [1, 2, 30, 40], "n": [30, 40, 31, 50],
    })  # fmt: skip
    row = {"outcome": "tls", "unit": "patients", "n": 20, "setting": "untreated"}
    got = meta_analysis_predictive(train, row)
    want = MetaAnalysisPredictive(20, [1, 2], [30, 40], 2.3)
    np.testing.assert_allclose(got.pmf_table, want.pmf_table)
