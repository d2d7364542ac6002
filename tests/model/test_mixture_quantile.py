"""MixtureNormal.quantile settles the bisection's early steps with a vectorised
approximation of the Normal CDF and falls back on the exact one (math.erfc) near q: the
result is the exact bisection's, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lenasim.model.predictive import (
    APPROX_CDF_ERROR,
    MixtureNormal,
    _approx_normal_cdf,
    normal_cdf,
)


def exact_quantile(law: MixtureNormal, q: float) -> float:
    """The bisection with the exact CDF at every step (the quantile before the shortcut)."""
    lo = float((law.mu - 8 * law.sd).min())
    hi = float((law.mu + 8 * law.sd).max())
    tol = 1e-9 * max(hi - lo, 1e-12)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if normal_cdf((mid - law.mu) / law.sd).mean() < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def test_the_approximation_keeps_within_its_bound():
    """A&S 7.1.26 promises 7.5e-8 on the CDF; the quantile allows 1e-6."""
    z = np.concatenate([np.linspace(-40, 40, 400_001), [-np.inf, np.inf, 0.0, -0.0]])
    err = np.abs(_approx_normal_cdf(z) - normal_cdf(z)).max()
    assert err <= 7.5e-8 + 1e-15 and 10 * err < APPROX_CDF_ERROR


@pytest.mark.parametrize("seed", range(12))
def test_quantiles_are_the_exact_bisections_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 5000))
    spread = 10.0 ** rng.uniform(-3, 3)
    law = MixtureNormal(rng.normal(50, spread, m), 10.0 ** rng.uniform(-2, 2, m))
    for q in (0.05, 0.5, 0.95, 1e-6, 1 - 1e-6, rng.uniform()):
        assert law.quantile(q) == exact_quantile(law, q), q


def test_degenerate_mixtures_still_match():
    """One component; components far apart (a CDF flat at q between them)."""
    for law in (MixtureNormal(np.array([3.0]), np.array([0.5])),
                MixtureNormal(np.array([0.0, 1000.0]), np.array([1.0, 1.0]))):  # fmt: skip
        for q in (0.05, 0.5, 0.95):
            got = law.quantile(q)
            assert got == exact_quantile(law, q) and math.isfinite(got)
