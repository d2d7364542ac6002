"""The in-trial posterior: the lenasim posterior as prior, the trial's patient-cycles as
data, by importance reweighting of prior draws.

The prior is a set of draws, each giving for every candidate j, event k and cycle c the
probability p_sjkc that a patient starting cycle c has event k in it (the engine's
Rao-Blackwellised ``per_cycle``, for a new trial: the draw's own trial effect included),
and the risks the limits bound. Optionally it is robustified as RBesT's ``robustify``
does: a second component, the same draws with the between-trial SD widened (the trial
effect of a trial unlike the published ones), with prior weight ``robust_weight``.

The data (:class:`~lenasim.design.trial.Data`) weigh each draw by the working likelihood

    L_s = prod_jkc p_sjkc^(e_jkc) (1 - p_sjkc)^(x_jkc)

over the events that the limits name, with e the events seen and x the follow-up
(in cycles) of patient-cycles without a seen event (partial follow-up counts in part).
It treats a patient's cycles and events as independent given the draw, that is, it
ignores the patient frailty within the trial (a working model: the trial's patients
share the draw's trial effect, which is what the reweighting learns).

Effective sample size: ESS = 1 / sum w_s^2 (normalised weights; Kong 1992). Below
``min_ess`` the reweighted posterior is not trusted; the rule says what it does then
(:class:`lenasim.design.rules.OverdoseControl`: an escalation becomes a stay; the
cautious moves are kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lenasim.design.trial import Data

__all__ = ["DrawModel", "weighted_quantile"]


@dataclass(frozen=True)
class DrawModel:
    """Prior draws for the in-trial update.

    p : (S, J, K, C) per-cycle probabilities of the data events (``events`` of the
        trial's data, by index).
    events : (K,) indices of these events in the data's event axis.
    limit_risk : (S, J, L) the risk each limit bounds, per draw and candidate.
    limit_max : (L,) each limit's largest acceptable risk.
    max_probability : overdose control's threshold on P(risk > limit).
    prior : (S,) prior weights (summing to 1).
    """

    p: np.ndarray
    events: np.ndarray
    limit_risk: np.ndarray
    limit_max: np.ndarray
    max_probability: float
    prior: np.ndarray

    def __post_init__(self) -> None:
        p = np.clip(self.p, 1e-12, 1 - 1e-12)
        object.__setattr__(self, "_log_p", np.log(p).reshape(p.shape[0], -1))
        object.__setattr__(self, "_log_q", np.log1p(-p).reshape(p.shape[0], -1))
        object.__setattr__(self, "_log_prior", np.log(self.prior))
        over = self.limit_risk > self.limit_max[None, None, :]
        object.__setattr__(self, "_over", over.astype(float))

    @property
    def n_draws(self) -> int:
        return int(self.p.shape[0])

    def weights(self, data: Data) -> tuple[np.ndarray, float]:
        """Normalised posterior weights of the draws, and their effective sample size."""
        c = self.p.shape[3]
        e = data.events[:, self.events, :c].reshape(-1)
        x = data.exposure[:, self.events, :c].reshape(-1)
        logw = self._log_prior + self._log_p @ e + self._log_q @ x
        w = np.exp(logw - logw.max())
        w /= w.sum()
        return w, float(1.0 / np.dot(w, w))

    def overdose(self, w: np.ndarray) -> np.ndarray:
        """(J, L) posterior P(risk > limit) of each candidate and limit."""
        return np.einsum("s,sjl->jl", w, self._over)

    def acceptable(self, w: np.ndarray) -> np.ndarray:
        """(J,) bool: every limit met by overdose control."""
        return (self.overdose(w) <= self.max_probability).all(axis=1)

    def mean_risk(self, w: np.ndarray) -> np.ndarray:
        """(J, L) posterior mean of each limit's risk."""
        return np.einsum("s,sjl->jl", w, self.limit_risk)


def weighted_quantile(x: np.ndarray, w: np.ndarray, q) -> np.ndarray:
    """Quantiles of the weighted sample (x, w): the inverse of the weighted empirical
    CDF, with the mid-point convention."""
    keep = w > 0
    order = np.argsort(x[keep])
    xs, ws = x[keep][order], w[keep][order]
    cdf = np.cumsum(ws) - 0.5 * ws
    cdf /= ws.sum()
    return np.interp(q, cdf, xs)
