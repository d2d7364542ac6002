"""Posterior predictive laws of evidence rows, as a new trial would report them: the
equal-weight mixtures over posterior draws of Binomial (counts of patients or of patients
in cycle k) and Normal (counts of cycles) reporting noise, and :func:`predict_rows`,
which gives them for any rows of the evidence table (their arms' protocols, n, setting,
partners) with a new between-trial effect per draw.

One copy for every stage: validation (leave-one-trial-out) and the run's "mirrored
trial" (outputs) use these. NumPy and the standard library only: no PyMC, PyTensor or
ArviZ, and no SciPy (importing ``scipy.stats`` took ~0.5 s of a run with ``mirrors``,
``scipy.special`` alone ~0.15 s; the laws below are checked against ``scipy.stats`` in
tests/model/test_predictive_laws.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.hazard import EVENTS, HazardDraws
from lenasim.model.likelihood import UNITS, params_from_draws, prepare, row_probabilities

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "EFFECTS_PER_DRAW",
    "MixtureBinomial",
    "MixtureNormal",
    "binomial_pmf",
    "new_trial_effects",
    "normal_cdf",
    "normal_logpdf",
    "predict_rows",
]

EFFECTS_PER_DRAW = 4  # new trial effects drawn per posterior draw in new-trial predictions
# Draw copies per pass of :func:`predict_rows`: the likelihood's (draws, cells, nodes)
# temporaries of a pass then stay in the CPU's cache (64 copies x 19 cycles x 21 nodes:
# 0.2 MB each) instead of ~13 MB each for 4,000 copies at once: the mirrored trial of
# configs/slow_escalation.yaml took 0.41 s of CPU at once, 0.21 s by 64 (0.30 s by 256,
# 0.24 s by 32), with the same numbers, bit for bit (each copy's arithmetic does not
# depend on the others'; tests/model/test_predictive_laws.py). Keep it a multiple of 16:
# OpenBLAS rounds the linear predictor's product (copies x terms @ terms x cells) of a
# block of 7 rows differently, by 1 ulp.
CHUNK_DRAWS = 64


class MixtureBinomial:
    """Equal-weight mixture of Binomial(n, p_m): the predictive of a count row."""

    discrete = True

    def __init__(self, n: int, p: np.ndarray):
        self.n = int(n)
        p = np.clip(np.asarray(p, float).reshape(-1), 1e-9, 1 - 1e-9)
        self.pmf_table = binomial_pmf(self.n, p).mean(axis=0)
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


class MixtureNormal:
    """Equal-weight mixture of Normal(mu_m, sd_m): the predictive of a ``cycles`` row."""

    discrete = False

    def __init__(self, mu: np.ndarray, sd: np.ndarray):
        self.mu = np.asarray(mu, float).reshape(-1)
        self.sd = np.asarray(sd, float).reshape(-1)

    def pmf(self, y: float) -> float:  # density; P(Y = y) = 0 for the PIT
        return 0.0

    def pdf(self, y: float) -> float:
        return float(np.exp(normal_logpdf(y, self.mu, self.sd)).mean())

    def cdf(self, y: float) -> float:
        return float(normal_cdf((y - self.mu) / self.sd).mean())

    def logp(self, y: float) -> float:
        lp = normal_logpdf(y, self.mu, self.sd)
        top = lp.max()
        if not np.isfinite(top):
            return float(top)
        return float(top + np.log(np.exp(lp - top).sum()) - np.log(lp.size))

    def quantile(self, q: float) -> float:
        """The y with P(Y <= y) = q, by bisection on the mixture's CDF (to 1e-9 of the
        range of the components; the CDF is continuous and increasing).

        Each step asks whether CDF(mid) < q. :func:`normal_cdf` answers (``math.erfc``
        per component, ~0.3 ms for 4,000), unless the vectorised approximation
        :func:`_approx_normal_cdf` is farther than its error bound from q: then its answer
        is the same, so the bisection and its result are those of :func:`normal_cdf`
        alone, bit for bit (~2/3 of the steps, the early ones; a 'cycles' row of
        configs/slow_escalation.yaml's mirror: 31 ms -> ~10 ms for its three quantiles)."""
        lo = float((self.mu - 8 * self.sd).min())
        hi = float((self.mu + 8 * self.sd).max())
        tol = 1e-9 * max(hi - lo, 1e-12)
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            z = (mid - self.mu) / self.sd
            approx = _approx_normal_cdf(z).mean()
            if approx < q - APPROX_CDF_ERROR:
                below = True
            elif approx >= q + APPROX_CDF_ERROR:
                below = False
            else:  # too close to tell (or NaN): the exact CDF
                below = normal_cdf(z).mean() < q
            if below:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)


def binomial_pmf(n: int, p: np.ndarray) -> np.ndarray:
    """(len(p), n + 1): P(Y = k) for Y ~ Binomial(n, p_m), k = 0..n, p in (0, 1), as
    exp(log C(n, k) + k log p + (n - k) log(1 - p)) (``scipy.stats.binom.pmf`` to ~1e-13
    relative for n in the hundreds)."""
    k = np.arange(n + 1, dtype=float)
    log_choose = _log_choose(int(n))
    p = np.asarray(p, float)[:, None]
    return np.exp(log_choose + k * np.log(p) + (n - k) * np.log1p(-p))


@functools.cache
def _log_choose(n: int) -> np.ndarray:
    """log C(n, k) for k = 0..n (``math.lgamma``; read-only)."""
    lg = [math.lgamma(k + 1.0) for k in range(n + 1)]
    out = np.array([lg[n] - lg[k] - lg[n - k] for k in range(n + 1)])
    out.flags.writeable = False
    return out


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """The standard Normal CDF, 0.5 erfc(-x / sqrt 2) (``math.erfc`` element-wise:
    ``scipy.special.ndtr`` to ~1e-14 relative, without importing SciPy; through a list,
    ~25% faster than ``np.frompyfunc``'s object array, the same numbers)."""
    y = -np.asarray(x, float) * math.sqrt(0.5)
    erfc = np.fromiter(map(math.erfc, y.ravel().tolist()), float, y.size)
    return 0.5 * erfc.reshape(y.shape)


# Abramowitz & Stegun (1964), Handbook of Mathematical Functions, eq. 7.1.26: erf(x) =
# 1 - t (a1 + t (a2 + ... + t a5)) exp(-x^2), t = 1 / (1 + p x), x >= 0, with
# |error| <= 1.5e-7: the standard Normal CDF's error is at most half that, 7.5e-8.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
# What :meth:`MixtureNormal.quantile` allows the approximation: 13 times its bound (the
# mean over components and the float arithmetic add ~1e-15; tests/model check 1e-7 on a
# grid of z), so that any decision it settles is the exact CDF's.
APPROX_CDF_ERROR = 1e-6


def _approx_normal_cdf(x: np.ndarray) -> np.ndarray:
    """The standard Normal CDF by :data:`_AS_A` (within 7.5e-8; NumPy, vectorised)."""
    y = np.asarray(x, float) * math.sqrt(0.5)
    a = np.abs(y)
    t = 1.0 / (1.0 + _AS_P * a)
    a1, a2, a3, a4, a5 = _AS_A
    half_erfc = 0.5 * (t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))))) * np.exp(-a * a)
    return np.where(y < 0, half_erfc, 1.0 - half_erfc)  # Phi(x) = 0.5 erfc(-x / sqrt 2)


def normal_logpdf(y: float, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """log of the Normal(mu, sd) density at y (``scipy.stats.norm.logpdf``)."""
    z = (y - mu) / sd
    return -0.5 * z * z - np.log(sd) - 0.5 * math.log(2 * math.pi)


def new_trial_effects(
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


def _draw_slice(params, rows: slice):
    """``params`` of :func:`~lenasim.model.likelihood.params_from_draws` restricted to the
    draw copies ``rows`` (the leading axis of every array)."""
    if isinstance(params, dict):
        return {k: _draw_slice(v, rows) for k, v in params.items()}
    return params[rows]


def predict_rows(
    draws: HazardDraws,
    rows: pd.DataFrame | Sequence,
    arms: dict,
    *,
    quadrature_nodes: int,
    quadrature_rule: str = "trapezoid",
    rng: np.random.Generator,
    effects_per_draw: int = EFFECTS_PER_DRAW,
    new_trial: bool = True,
) -> list:
    """The posterior predictive law of each row's count, as a new trial would get it.

    ``rows``: evidence rows, a DataFrame of :func:`lenasim.evidence.table.load_evidence`
    or a sequence of its :class:`~lenasim.evidence.table.EvidenceRow` records (what the
    run's mirrored trial gives, without pandas): the same laws, bit for bit.
    ``new_trial``: u ~ N(0, tau) per draw copy and trial (rows of one trial share it);
    False sets u = 0 (a typical trial; used by tests to show the difference).
    Returns one :class:`MixtureBinomial` or :class:`MixtureNormal` per row, in order.
    """
    data = prepare(rows, arms, quadrature_nodes, quadrature_rule, draws.link)
    if new_trial:
        d, u = new_trial_effects(draws, len(data.trials), effects_per_draw, rng)
    else:
        d, u = draws, np.zeros((draws.n_draws, len(data.trials), len(EVENTS)))
    params = params_from_draws(d, len(data.trials), u)
    parts = [
        row_probabilities(_draw_slice(params, slice(lo, lo + CHUNK_DRAWS)), data, d.terms)
        for lo in range(0, d.n_draws, CHUNK_DRAWS)
    ]
    P = np.concatenate([p for p, _ in parts])
    var_s = np.concatenate([v for _, v in parts])
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
