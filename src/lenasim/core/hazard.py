"""The per-cycle hazard, written once for NumPy (the simulator) and PyTensor (the fit).

For event k (the vocabulary's events: flare, tls, neutropenia shipped), a patient with
frailty z in arm j of trial t, in cycle c::

    logit p_k(c, z) = a_k + sum_f beta_k,f * x_f(j, c) + u_k,t + sigma_k * z

where the features x_f are the exposure features of :func:`lenasim.core.regimen.cycle_features`
(``log_dose`` = log(mean dose on the days taken / 10 mg), ``log_frac_on`` = log(share
of the cycle's days on drug), ``first`` first cycle with lenalidomide,
``first_log_dose`` the log dose a patient starts on (first * log_dose), ``rise`` the log
fold rise over the highest earlier dose, ``log_cycle`` log of the lenalidomide cycle
number, ``restart`` a cycle whose first dose follows two weeks or more without drug) and the arm's covariates (``untreated``, ``consolidation``, ``elderly``,
``anti_cd20``, ``chemo``, ``cdk_inhibitor``, ``steroid`` = flare prophylaxis with a
steroid in that cycle). Cycles without lenalidomide have p = 0.

Grade >= 3 flare is flare times a conditional severity::

    logit s(c) = s_a + sum_f s_f * x_f(j, c)

The functions take an ``xp`` backend, :data:`NUMPY` or PyTensor's
(:data:`lenasim.model.graph.PYTENSOR`), so the same code builds the PyMC graph and runs in
the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The names are defined once, in the vocabulary, and re-exported from here.
from lenasim.core.vocabulary import (
    COVARIATE_TERMS,
    EVENTS,
    EXPOSURE_TERMS,
    OUTCOME_EVENT,
    SEVERITY,
    TERMS,
)

__all__ = [
    "COVARIATE_TERMS",
    "EVENTS",
    "EXPOSURE_TERMS",
    "NUMPY",
    "OUTCOME_EVENT",
    "SEVERITY",
    "TERMS",
    "Backend",
    "HazardDraws",
    "LINKS",
    "REFERENCE_DAYS",
    "QUADRATURE_RULES",
    "cycle_probability",
    "days_offset",
    "frailty_quadrature",
    "gauss_hermite",
    "linear_predictor",
    "linear_predictor_rows",
]


@dataclass(frozen=True)
class Backend:
    """The few array functions the hazard needs, for one array library."""

    name: str
    sigmoid: Any
    log1p: Any
    exp: Any
    stack: Any = None  # a list of arrays -> one, broadcast, stacked on a new last axis


def _expit(x: Any) -> Any:
    """1 / (1 + exp(-x)): what ``scipy.special.expit`` computes, bit for bit here
    (tests/model/test_predictive_laws.py), without importing scipy.special (~0.15 s of
    `lenasim run` with ``mirrors``)."""
    with np.errstate(over="ignore"):  # exp(-x) = inf for x < -709: the result is 0
        return 1.0 / (1.0 + np.exp(-np.asarray(x, float)))


def _stack_last(arrays: Sequence[Any]) -> np.ndarray:
    return np.stack(np.broadcast_arrays(*arrays), axis=-1)


NUMPY = Backend("numpy", _expit, np.log1p, np.exp, _stack_last)


def linear_predictor(
    intercept: Any,
    coefs: Mapping[str, Any],
    features: Mapping[str, Any],
    terms: Sequence[str],
) -> Any:
    """a + sum over terms of coef[term] * feature[term]; any broadcastable arrays.

    ``intercept`` and each ``coefs[term]`` may carry leading axes (posterior draws);
    features broadcast against them. Works for NumPy arrays and PyTensor tensors alike.
    """
    eta = intercept
    for t in terms:
        eta = eta + coefs[t] * features[t]
    return eta


def linear_predictor_rows(
    intercept: np.ndarray,
    coefs: Mapping[str, np.ndarray],
    features: Mapping[str, np.ndarray],
    terms: Sequence[str],
) -> np.ndarray:
    """:func:`linear_predictor` of (S,) draws on 1-D feature rows, (S, rows), computed once
    per distinct row of ``terms`` and copied to the rows that repeat it: the same bits
    (each row's sum is the same operations on the same numbers). A population of patient
    profiles repeats every (cycle, state) row once per profile, the profile's own terms
    added apart (:class:`lenasim.simulation.population.PatientDraws`)."""
    a = intercept.reshape(-1, 1)
    cb = {t: c.reshape(-1, 1) for t, c in coefs.items()}
    if not terms:
        return linear_predictor(a, cb, features, terms)
    rows = np.ascontiguousarray(np.stack([np.asarray(features[t], float) for t in terms], 1))
    as_bytes = rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(as_bytes, return_index=True, return_inverse=True)
    distinct = {t: rows[first, i] for i, t in enumerate(terms)}
    return linear_predictor(a, cb, distinct, terms)[:, inverse.ravel()]


LINKS = ("logit", "cloglog_daily")
# The days on drug of the reference cycle (10 mg/day on every day of a 28-day cycle): the
# cloglog_daily link's exposure offset is log(days on drug / REFERENCE_DAYS), so that the
# intercept keeps its meaning (a 28-day cycle on drug) and its prior stays comparable.
REFERENCE_DAYS = 28.0


def days_offset(days_on: Any, link: str) -> Any:
    """The exposure offset of the linear predictor: log(days on / REFERENCE_DAYS) for
    ``cloglog_daily`` (0 where no day is on drug: such cycles have p = 0), 0 for ``logit``."""
    if link == "logit":
        return np.zeros(np.shape(days_on))
    if link != "cloglog_daily":
        raise ValueError(f"unknown link {link!r}: use one of {LINKS}")
    d = np.asarray(days_on, float)
    return np.where(d > 0, np.log(np.maximum(d, 1e-300) / REFERENCE_DAYS), 0.0)


def cycle_probability(
    eta: Any,
    trial_effect: Any,
    sigma: Any,
    z: Any,
    exposed: Any,
    xp: Backend = NUMPY,
    link: str = "logit",
) -> Any:
    """The per-cycle event probability.

    ``logit``: p = exposed * sigmoid(eta + u + sigma z), eta a per-cycle log-odds.
    ``cloglog_daily``: a constant hazard per day on drug within the cycle,
    h = exp(eta + u + sigma z) / REFERENCE_DAYS per day, where eta already carries the
    offset log(days on / REFERENCE_DAYS) (:func:`days_offset`), so
    p = exposed * (1 - exp(-exp(eta + u + sigma z))): a cycle with twice the days on drug
    has twice the cumulative hazard. The first exposure carries its own daily hazard
    through the ``first`` terms (piecewise constant: cycle 1 against later cycles).
    """
    x = eta + trial_effect + sigma * z
    if link == "logit":
        return exposed * xp.sigmoid(x)
    if link == "cloglog_daily":
        return exposed * (1.0 - xp.exp(-xp.exp(x)))
    raise ValueError(f"unknown link {link!r}: use one of {LINKS}")


QUADRATURE_RULES = ("trapezoid", "gauss_hermite")


def frailty_quadrature(nodes: int, rule: str = "trapezoid") -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[f(z)], z ~ N(0, 1), by ``rule``.

    ``trapezoid``: ``nodes`` evenly spaced points on [-6, 6] with weights proportional to
    the normal density (summing to 1). For the frailty integrals of lenasim's likelihood
    (sigmoids of eta + sigma z, sigma up to ~3) it is more accurate than Gauss-Hermite with
    as many nodes: the integrand is smooth but not polynomial-like, and the trapezoid rule
    converges geometrically for such integrands on the real line (measured in
    benchmarks/README.md, "Quadrature"). ``gauss_hermite``: :func:`gauss_hermite`.
    """
    if rule == "gauss_hermite":
        return gauss_hermite(nodes)
    if rule != "trapezoid":
        raise ValueError(f"unknown quadrature rule {rule!r}: use one of {QUADRATURE_RULES}")
    z = np.linspace(-6.0, 6.0, int(nodes))
    w = np.exp(-0.5 * z**2)
    return z, w / w.sum()


def gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[f(z)], z ~ N(0, 1): sum_q w_q f(z_q) (weights sum to 1)."""
    x, w = np.polynomial.hermite.hermgauss(n)
    return np.sqrt(2.0) * x, w / np.sqrt(np.pi)


@dataclass(frozen=True)
class HazardDraws:
    """Posterior (or synthetic) parameter draws of the hazard, as NumPy arrays.

    Attributes
    ----------
    terms : event (and :data:`SEVERITY`) -> the feature names its predictor uses.
    intercept : event -> (S,) draws of a_k (for SEVERITY: s_a).
    coefs : event -> term -> (S,) draws of the term's coefficient.
    tau : event -> (S,) between-trial standard deviation (not for SEVERITY).
    sigma : event -> (S,) patient frailty standard deviation (not for SEVERITY).
    trial_df : degrees of freedom of Student-t trial effects u / tau; None: normal.
    link : the per-cycle link of :func:`cycle_probability` (``logit`` or ``cloglog_daily``).
    """

    terms: dict[str, tuple[str, ...]]
    intercept: dict[str, np.ndarray]
    coefs: dict[str, dict[str, np.ndarray]]
    tau: dict[str, np.ndarray]
    sigma: dict[str, np.ndarray]
    trial_df: float | None = None
    link: str = "logit"

    @property
    def n_draws(self) -> int:
        return int(next(iter(self.intercept.values())).shape[0])

    def take(self, index: np.ndarray | slice) -> HazardDraws:
        """The draws at ``index`` (same index for every parameter)."""

        def sub(a: np.ndarray) -> np.ndarray:
            return a[index]

        return HazardDraws(
            terms=self.terms,
            intercept={k: sub(v) for k, v in self.intercept.items()},
            coefs={k: {t: sub(c) for t, c in v.items()} for k, v in self.coefs.items()},
            tau={k: sub(v) for k, v in self.tau.items()},
            sigma={k: sub(v) for k, v in self.sigma.items()},
            trial_df=self.trial_df,
            link=self.link,
        )

    def eta(self, event: str, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """Linear predictor (without trial effect and frailty) for every draw.

        Draws go on a new leading axis and broadcast against the features' shape: result
        shape (S, *features_shape).
        """
        ndim = max((np.ndim(features[t]) for t in self.terms[event]), default=0)
        shape = (-1,) + (1,) * ndim
        a = self.intercept[event].reshape(shape)
        coefs = {t: c.reshape(shape) for t, c in self.coefs[event].items()}
        return linear_predictor(a, coefs, features, self.terms[event])
