"""Predictive laws of a held-out evidence row: mixtures over posterior draws of
Binomial and Normal reporting noise, the randomised PIT, new-trial predictions of rows
(:func:`predict_rows`), and the pooled Beta-binomial baseline that ignores dose and
schedule. See the package docstring for the definitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import special, stats

from lenasim.core.hazard import EVENTS, HazardDraws
from lenasim.model.likelihood import UNITS, params_from_draws, prepare, row_probabilities

EFFECTS_PER_DRAW = 4  # new trial effects drawn per posterior draw in LOTO predictions


class MixtureBinomial:
    """Equal-weight mixture of Binomial(n, p_m): the predictive of a count row."""

    discrete = True

    def __init__(self, n: int, p: np.ndarray):
        self.n = int(n)
        p = np.clip(np.asarray(p, float).reshape(-1), 1e-9, 1 - 1e-9)
        k = np.arange(self.n + 1)
        self.pmf_table = stats.binom.pmf(k[None, :], self.n, p[:, None]).mean(axis=0)
        self.cdf_table = np.minimum(np.cumsum(self.pmf_table), 1.0)

    def pmf(self, y: float) -> float:
        y = int(round(y))
        return float(self.pmf_table[y]) if 0 <= y <= self.n else 0.0

    def cdf(self, y: float) -> float:
        """P(Y <= y)."""
        y = math.floor(y + 1e-9)
        if y < 0:
            return 0.0
        return 1.0 if y >= self.n else float(self.cdf_table[y])

    def logp(self, y: float) -> float:
        return float(np.log(self.pmf(y))) if self.pmf(y) > 0 else -np.inf

    def quantile(self, q: float) -> float:
        """The smallest y with P(Y <= y) >= q."""
        return float(np.searchsorted(self.cdf_table, q - 1e-12, side="left"))


class BetaBinomialPredictive(MixtureBinomial):
    """Beta-binomial(n, a, b): the baseline's exact posterior predictive."""

    def __init__(self, n: int, a: float, b: float):
        self.n = int(n)
        self.a, self.b = float(a), float(b)
        k = np.arange(self.n + 1)
        self.pmf_table = stats.betabinom.pmf(k, self.n, self.a, self.b)
        self.cdf_table = np.minimum(np.cumsum(self.pmf_table), 1.0)


class MixtureNormal:
    """Equal-weight mixture of Normal(mu_m, sd_m): the predictive of a ``cycles`` row."""

    discrete = False

    def __init__(self, mu: np.ndarray, sd: np.ndarray):
        self.mu = np.asarray(mu, float).reshape(-1)
        self.sd = np.asarray(sd, float).reshape(-1)

    def pmf(self, y: float) -> float:  # density; P(Y = y) = 0 for the PIT
        return 0.0

    def pdf(self, y: float) -> float:
        return float(stats.norm.pdf(y, self.mu, self.sd).mean())

    def cdf(self, y: float) -> float:
        return float(stats.norm.cdf(y, self.mu, self.sd).mean())

    def logp(self, y: float) -> float:
        lp = stats.norm.logpdf(y, self.mu, self.sd)
        return float(special.logsumexp(lp) - np.log(lp.size))

    def quantile(self, q: float) -> float:
        lo = float((self.mu - 8 * self.sd).min())
        hi = float((self.mu + 8 * self.sd).max())
        grid = np.linspace(lo, hi, 4001)
        cdf = stats.norm.cdf(grid[:, None], self.mu[None, :], self.sd[None, :]).mean(axis=1)
        return float(np.interp(q, cdf, grid))


def randomized_pit(pred, y: float, v: float) -> float:
    """P(Y < y) + v P(Y = y) (v ~ U(0,1)); for a continuous predictive P(Y <= y)."""
    if not pred.discrete:
        return pred.cdf(y)
    below = pred.cdf(y - 1) if y >= 1 else 0.0
    return below + v * pred.pmf(y)


def _new_trial_effects(
    draws: HazardDraws, n_trials: int, k: int, rng
) -> tuple[HazardDraws, np.ndarray]:
    """Each draw repeated k times, with a new trial effect u ~ N(0, tau) per copy and trial
    (Student-t with ``draws.trial_df`` degrees of freedom when the fit used them)."""
    rep = np.repeat(np.arange(draws.n_draws), k)
    d = draws.take(rep)
    z = rng.standard_normal((d.n_draws, n_trials, len(EVENTS)))
    if draws.trial_df is not None:
        z *= np.sqrt(draws.trial_df / rng.chisquare(draws.trial_df, size=z.shape))
    tau = np.stack([d.tau[e] for e in EVENTS], axis=-1)[:, None, :]
    return d, z * tau


def predict_rows(
    draws: HazardDraws,
    rows: pd.DataFrame,
    arms: dict,
    *,
    quadrature_nodes: int,
    rng: np.random.Generator,
    effects_per_draw: int = EFFECTS_PER_DRAW,
    new_trial: bool = True,
) -> list:
    """The posterior predictive law of each row's count, as a new trial would get it.

    ``new_trial``: u ~ N(0, tau) per draw copy and trial (rows of one trial share it);
    False sets u = 0 (a typical trial; used by tests to show the difference).
    Returns one :class:`MixtureBinomial` or :class:`MixtureNormal` per row, in order.
    """
    data = prepare(rows, arms, quadrature_nodes)
    if new_trial:
        d, u = _new_trial_effects(draws, len(data.trials), effects_per_draw, rng)
    else:
        d, u = draws, np.zeros((draws.n_draws, len(data.trials), len(EVENTS)))
    P, var_s = row_probabilities(params_from_draws(d, len(data.trials), u), data, d.terms)
    P = np.clip(P, 1e-9, 1 - 1e-9)
    out = []
    cyc = UNITS.index("cycles")
    for i in range(len(data.rows)):
        if data.row_unit[i] == cyc:
            var_row = var_s @ (data.mixing[i] * data.row_patients[i])
            out.append(MixtureNormal(data.n[i] * P[:, i], np.sqrt(var_row + 0.25)))
        else:
            out.append(MixtureBinomial(int(data.n[i]), P[:, i]))
    return out


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

    def __init__(self, n: int, train_events, train_n, tau_scale: float, *, grid: int = 201,
                 nodes: int = 24):  # fmt: skip
        from lenasim.core.hazard import gauss_hermite

        self.n = int(n)
        z, w = gauss_hermite(nodes)
        mu = np.linspace(-10.0, 10.0, grid)  # 5 prior SDs either way
        tau = (np.linspace(0.0, 1.0, grid) ** 2) * 6.0 * tau_scale  # denser near 0
        dtau = np.gradient(tau)
        logit = mu[:, None, None] + tau[None, :, None] * z[None, None, :]  # (M, T, Q)
        log_p, log_q = -np.logaddexp(0.0, -logit), -np.logaddexp(0.0, logit)
        m0, s0 = META_MU_PRIOR
        lp = stats.norm.logpdf(mu, m0, s0)[:, None] + stats.halfnorm.logpdf(tau, scale=tau_scale)
        lp = lp + np.log(dtau)[None, :]  # the grid's spacing in tau (uniform in mu)
        for y, m in zip(np.asarray(train_events, float), np.asarray(train_n, float)):
            ll = special.gammaln(m + 1) - special.gammaln(y + 1) - special.gammaln(m - y + 1)
            lp = lp + special.logsumexp(ll + y * log_p + (m - y) * log_q, b=w, axis=-1)
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


def meta_analysis_predictive(train: pd.DataFrame, row) -> MetaAnalysisPredictive:
    """The field's baseline for a held-out row: a random-effects meta-analysis of the
    training rows of the same outcome and unit family (patients, or per cycle), ignoring
    dose, schedule and setting, predicted for a new trial of the row's n."""
    fam = _unit_family(row["unit"])
    same = train[(train["outcome"] == row["outcome"])
                 & (train["unit"].map(_unit_family) == fam)]  # fmt: skip
    return MetaAnalysisPredictive(int(row["n"]), same["events"].astype(float),
                                  same["n"].astype(float), META_TAU_SCALE[row["outcome"]])  # fmt: skip
