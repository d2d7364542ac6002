"""Predictive laws of a held-out evidence row: the randomised PIT and the pooled
Beta-binomial baseline that ignores dose and schedule; the mixtures and new-trial
predictions of rows (:func:`predict_rows`) live in :mod:`lenasim.model.predictive`, which
the run's outputs share. See the package docstring for the definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from lenasim.core.hazard import gauss_hermite
from lenasim.model.predictive import (  # noqa: F401 - re-exported for validation's callers
    EFFECTS_PER_DRAW,
    MixtureBinomial,
    MixtureNormal,
    new_trial_effects,
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


# The between-trial SD priors of the meta-analysis baseline: half-normal with the scale
# the model spec uses for the same event (RBesT's guidance, half of 1/sqrt(p(1-p)) at a
# typical rate: p = 0.3 for flare and neutropenia, 0.05 for TLS and grade >= 3 flare).
META_TAU_SCALE = {"flare_any": 1.1, "flare_grade3plus": 2.3, "tls": 2.3, "neutropenia_grade34": 1.1}
META_MU_PRIOR = (0.0, 2.0)  # logit of the mean rate: Normal(0, 2), 2% to 98% within 2 SD


class MetaAnalysisPredictive(MixtureBinomial):
    """Random-effects meta-analysis predictive of a new trial's count (RBesT's gMAP with a
    normal between-trial distribution): logit(rate_t) = mu + tau z_t, z_t ~ N(0, 1),
    each training row a trial with y ~ Binomial(n, rate_t); mu ~ Normal(0, 2), tau ~
    half-normal(``tau_scale``). The posterior of (mu, tau) is computed on a grid (exact to
    the grid's resolution; no MCMC), the trial effects by Gauss-Hermite quadrature; the
    predictive is Binomial(n_new, expit(mu + tau z)) mixed over both."""

    def __init__(self, n: int, train_events, train_n, tau_scale: float, *, grid: int = 81,
                 nodes: int = 20):  # fmt: skip

        self.n = int(n)
        z, w = gauss_hermite(nodes)
        y_t, m_t = np.asarray(train_events, float), np.asarray(train_n, float)
        # Two passes: a coarse grid over 5 prior SDs of mu and 6 of tau finds where the
        # posterior lives; a fine grid over that box computes it (a box of a few hundredths
        # when many trials pin mu, the prior's width when none do).
        mu_box, tau_box = (-10.0, 10.0), (0.0, 6.0 * tau_scale)
        for _ in range(2):
            mu = np.linspace(*mu_box, grid)
            tau = tau_box[0] + (np.linspace(0.0, 1.0, grid) ** 2) * (tau_box[1] - tau_box[0])
            logit, lp = _meta_log_posterior(mu, tau, z, w, y_t, m_t, tau_scale)
            mass = lp > lp.max() - 25.0  # within e^-25 of the mode
            i, j = np.flatnonzero(mass.any(axis=1)), np.flatnonzero(mass.any(axis=0))
            d_mu = mu[1] - mu[0]
            mu_box = (mu[max(i[0] - 1, 0)] - d_mu, mu[min(i[-1] + 1, grid - 1)] + d_mu)
            tau_box = (tau[max(j[0] - 1, 0)], tau[min(j[-1] + 1, grid - 1)])
        log_p, log_q = -np.logaddexp(0.0, -logit), -np.logaddexp(0.0, logit)
        post = np.exp(lp - special.logsumexp(lp))  # (M, T)
        k = np.arange(self.n + 1)
        log_binom = (special.gammaln(self.n + 1) - special.gammaln(k + 1)
                     - special.gammaln(self.n - k + 1))  # fmt: skip
        keep = post > post.max() * 1e-10  # the grid points that carry the mass
        lpq = log_binom + k * log_p[keep][..., None] + (self.n - k) * log_q[keep][..., None]
        pmf = (post[keep][:, None, None] * w[None, :, None] * np.exp(lpq)).sum(axis=(0, 1))
        self.pmf_table = pmf / pmf.sum()
        self.cdf_table = np.minimum(np.cumsum(self.pmf_table), 1.0)
        rate = special.expit(logit[keep])
        self.rate = float((post[keep][:, None] * w[None, :] * rate).sum() / post[keep].sum())


def _meta_log_posterior(mu, tau, z, w, y_t, m_t, tau_scale):
    """logit (M, T, Q) and the unnormalised log posterior (M, T) of (mu, tau) on a grid
    (uniform in mu, weighted by the spacing in tau)."""
    logit = mu[:, None, None] + tau[None, :, None] * z[None, None, :]
    log_p, log_q = -np.logaddexp(0.0, -logit), -np.logaddexp(0.0, logit)
    m0, s0 = META_MU_PRIOR
    lp = stats.norm.logpdf(mu, m0, s0)[:, None] + stats.halfnorm.logpdf(tau, scale=tau_scale)
    lp = lp + np.log(np.maximum(np.gradient(tau), 1e-300))[None, :]
    terms: dict[tuple[float, float], np.ndarray] = {}  # trials of the same counts: computed once
    for y, m in zip(y_t, m_t):
        if (y, m) not in terms:
            ll = special.gammaln(m + 1) - special.gammaln(y + 1) - special.gammaln(m - y + 1)
            terms[y, m] = special.logsumexp(ll + y * log_p + (m - y) * log_q, b=w, axis=-1)
        lp = lp + terms[y, m]  # added in the trials' order: the same sums, bit for bit
    return logit, lp


def meta_analysis_predictive(train: pd.DataFrame, row) -> MetaAnalysisPredictive:
    """The field's baseline for a held-out row: a random-effects meta-analysis of the
    training rows of the same outcome and unit family (patients, or per cycle), ignoring
    dose, schedule and setting, predicted for a new trial of the row's n."""
    fam = _unit_family(row["unit"])
    same = train[(train["outcome"] == row["outcome"])
                 & (train["unit"].map(_unit_family) == fam)]  # fmt: skip
    return MetaAnalysisPredictive(int(row["n"]), same["events"].astype(float),
                                  same["n"].astype(float), META_TAU_SCALE[row["outcome"]])  # fmt: skip
