"""The predictive laws of model/predictive.py, computed without scipy.stats (whose import
cost a run ~0.5 s), against scipy.stats itself."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lenasim.model.predictive import (
    MixtureBinomial,
    MixtureNormal,
    binomial_pmf,
    normal_logpdf,
)


@pytest.mark.parametrize("n", [0, 1, 3, 25, 59, 470])
def test_binomial_pmf_is_scipys(n):
    p = np.array([1e-9, 1e-4, 0.013, 0.3, 0.5, 0.77, 0.999, 1 - 1e-9])
    k = np.arange(n + 1)
    want = stats.binom.pmf(k[None, :], n, p[:, None])
    got = binomial_pmf(n, p)
    assert got.shape == want.shape
    # relative where the probability is representable; absolute below (underflow)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-300)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)


def test_mixture_binomial_quantiles_are_scipys():
    rng = np.random.default_rng(5)
    p = rng.beta(2, 20, size=4000)
    law = MixtureBinomial(59, p)
    ref = stats.binom.pmf(np.arange(60)[None, :], 59, p[:, None]).mean(axis=0)
    np.testing.assert_allclose(law.pmf_table, ref, rtol=1e-11, atol=1e-300)
    cdf = np.minimum(np.cumsum(ref), 1.0)
    for q in (0.05, 0.5, 0.95):
        assert law.quantile(q) == float(np.searchsorted(cdf, q - 1e-12, side="left"))


def test_mixture_normal_is_scipys():
    rng = np.random.default_rng(6)
    mu, sd = rng.normal(60, 15, size=4000), rng.uniform(2, 9, size=4000)
    law = MixtureNormal(mu, sd)
    for y in (-5.0, 30.0, 60.5, 69.0, 140.0):
        assert law.pdf(y) == pytest.approx(stats.norm.pdf(y, mu, sd).mean(), rel=1e-12)
        assert law.cdf(y) == pytest.approx(stats.norm.cdf(y, mu, sd).mean(), rel=1e-12)
        lp = stats.norm.logpdf(y, mu, sd)
        assert law.logp(y) == pytest.approx(np.log(np.exp(lp).mean()), rel=1e-10)
    np.testing.assert_allclose(
        normal_logpdf(1.5, mu, sd), stats.norm.logpdf(1.5, mu, sd), rtol=1e-13
    )
    for q in (0.05, 0.5, 0.95):
        assert stats.norm.cdf(law.quantile(q), mu, sd).mean() == pytest.approx(q, abs=1e-7)


def test_normal_cdf_and_expit_are_scipys():
    from scipy import special

    from lenasim.core.hazard import NUMPY
    from lenasim.model.predictive import normal_cdf

    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0, 4, 200_000), [-40.0, -8.0, 0.0, 8.0, 40.0]])
    np.testing.assert_allclose(normal_cdf(x), special.ndtr(x), rtol=5e-14, atol=1e-300)
    y = np.concatenate([rng.normal(0, 6, 200_000), [-800.0, -745.0, 0.0, 745.0, 800.0]])
    # the hazard's sigmoid (the mirrored trial's and the fit's checks) is scipy's expit,
    # bit for bit on this machine's NumPy
    np.testing.assert_array_equal(NUMPY.sigmoid(y), special.expit(y))


def test_mixture_normal_logp_of_far_components():
    """The log density of a mixture whose components are far from y (log-sum-exp)."""
    law = MixtureNormal(np.array([0.0, 100.0]), np.array([1.0, 1.0]))
    from scipy.special import logsumexp

    want = logsumexp(stats.norm.logpdf(60.0, [0.0, 100.0], 1.0)) - np.log(2)
    assert law.logp(60.0) == pytest.approx(want, rel=1e-12)
    assert np.isfinite(law.logp(60.0))
