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


def test_predict_rows_by_chunks_of_draws_is_bit_for_bit_at_once(monkeypatch):
    """predict_rows works through the draw copies CHUNK_DRAWS at a time (for the CPU
    cache): the laws are those of all copies at once, bit for bit, a last partial chunk
    included (shipped posterior, 50 draws x 4 copies, a mirrored arm's rows: patients and
    cycles units). Chunks of a multiple of 16 copies: the BLAS product of the linear
    predictor (copies x terms @ terms x cells) rounds a block of fewer rows (7) otherwise,
    by 1 ulp."""
    from pathlib import Path

    from lenasim.evidence.table import load_arms, load_evidence
    from lenasim.model import predictive
    from lenasim.model.posterior import load_posterior

    repo = Path(__file__).resolve().parents[2]
    models = repo / "src" / "lenasim" / "models"
    draws = load_posterior(models / "default.nc", models / "default.yaml").draws
    draws = draws.take(np.arange(50))
    ev = load_evidence()
    rows = ev[[("chen_2011_amended" in ids) for ids in ev["arm_ids"]]]
    rows = rows[rows["outcome"] != "flare_grade2plus"].reset_index(drop=True)
    assert {"patients", "cycles"} <= set(rows["unit"])

    def laws(chunk):
        monkeypatch.setattr(predictive, "CHUNK_DRAWS", chunk)
        out = predictive.predict_rows(draws, rows, load_arms(), quadrature_nodes=21,
                                      rng=np.random.default_rng(3))  # fmt: skip
        return [(law.pmf_table,) if law.discrete else (law.mu, law.sd) for law in out]

    at_once, by_chunks = laws(10**6), laws(16)  # 200 copies: 12 chunks of 16, then 8
    assert len(at_once) == len(rows)
    for a, b in zip(at_once, by_chunks, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
