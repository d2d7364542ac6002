"""The in-trial posterior: the lenasim posterior as prior, the trial's patient-cycles as
data, by importance reweighting of prior draws.

The prior is a set of draws, each giving for every candidate j, event k and cycle c the
probability p_sjkc that a patient starting cycle c has event k in it (the engine's
Rao-Blackwellised ``per_cycle``, for a new trial: the draw's own trial effect included),
and the risks the limits bound. Optionally it is robustified as RBesT's ``robustify``
does: a second component, the same draws with the between-trial SD widened (the trial
effect of a trial unlike the published ones), with prior weight ``robust_weight``.

The data (:class:`~lenasim.design.trial.Data`) weigh each draw by a working likelihood
over every event of the hazards the limits name (:func:`lenasim.design.prior.data_model`:
a limit on grade >= 3 flare names the flare hazard, so flares of every grade are data):

    L_s = prod_jc [ prod_k p_sjkc^(e_jkc) (1 - p_sjkc)^(x_jkc) ]
                  [ r_sjc^(g_jc) (1 - r_sjc)^(f_jc - g_jc) ],   r = p_g3 / p_flare,

where k runs over the hazards' own events (flare of any grade, TLS, grade 3-4
neutropenia), e are the events seen and x the follow-up (in cycles) of patient-cycles
without a seen event of that kind (partial follow-up counts in part), f and g the flares
seen and those of grade >= 3 among them, and r the draw's P(grade >= 3 | flare) in that
cycle (``graded`` pairs). Grade >= 3 flare shares the flare hazard, so a flare of low
grade informs the grade >= 3 flare risk: a likelihood over the grade >= 3 flares alone
ignored that and disagreed with a full NUTS refit (benchmarks/README.md, "The in-trial
update against a NUTS refit"). What it ignores: the events of hazards no limit names
(they share no parameter with the limits' risks and would only lower the ESS).

The patient frailty (``sigma``; ``update.frailty``, the default): a patient's cycles of
one hazard share his frailty, as in the model, so the first factor is taken per patient
i and hazard k instead, integrated over the frailty (:mod:`lenasim.design.frailty`):

    L_sik = sum_q w_q prod_c p(eta_sjkc + sigma_sk z_q)^e_ikc (1 - x_ikc p(...)),

with eta the draw's conditional linear predictor that reproduces p_sjkc (one cycle seen,
the same likelihood). Without it (as until 2026-12-07) each patient's cycles are
independent given the draw: two flares in one patient count as two patients' flares,
and the update's posterior means sat further from a NUTS refit's (benchmarks/README.md).

Effective sample size: ESS = 1 / sum w_s^2 (normalised weights; Kong 1992). Below
``min_ess`` the reweighted posterior is not trusted; the rule says what it does then
(:class:`lenasim.design.rules.OverdoseControl`: an escalation becomes a stay; the
cautious moves are kept). Seeing every flare costs ESS: with configs/design_untreated.yaml
(1,000 posterior draws + 1,000 robust) 0.34 decisions per trial fall back under the
new-trial truth (0.52 under the median truth; 0.26 and 0.56 with independent cycles).
More prior draws (``posterior.draws``, up to the posterior's 4,000) raise the ESS in
proportion but cost the trials stage more than in proportion (benchmarks/README.md,
"Trial design").
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
    graded : pairs (a, g) of positions in the K axis: event g is the grade >= 3 part of
        event a (each g also counted as an a), and is weighed as P(g | a) = p_g / p_a
        in the cycles with an a seen; every other event as its own per-cycle event.
    limit_risk : (S, J, L) the risk each limit bounds, per draw and candidate.
    limit_max : (L,) each limit's largest acceptable risk.
    max_probability : overdose control's threshold on P(risk > limit).
    prior : (S,) prior weights (summing to 1).
    sigma : (S, K) the draws' patient frailty SDs of the events (0: none, as for a
        graded event's grade part), or None: the patients' cycles are independent.
    """

    p: np.ndarray
    events: np.ndarray
    limit_risk: np.ndarray
    limit_max: np.ndarray
    max_probability: float
    prior: np.ndarray
    graded: tuple[tuple[int, int], ...] = ()
    sigma: np.ndarray | None = None

    def __post_init__(self) -> None:
        p = np.clip(self.p, 1e-12, 1 - 1e-12)
        # log L = sum A e + B x (the conditional grade term is linear in the events too:
        # g log r + (f - g) log(1 - r) = g (log r - log(1 - r)) + f log(1 - r)).
        a, b = np.log(p), np.log1p(-p)
        for k_any, k_g3 in self.graded:
            r = np.clip(p[:, :, k_g3] / p[:, :, k_any], 1e-12, 1 - 1e-12)
            a[:, :, k_g3] = np.log(r) - np.log1p(-r)
            a[:, :, k_any] += np.log1p(-r)
            b[:, :, k_g3] = 0.0
        object.__setattr__(self, "_log_p", a.reshape(p.shape[0], -1))
        object.__setattr__(self, "_log_q", b.reshape(p.shape[0], -1))
        frail = np.zeros(0, np.int64)
        if self.sigma is not None:
            grade_parts = {g for _, g in self.graded}
            frail = np.array([k for k in range(p.shape[2]) if k not in grade_parts
                              and (self.sigma[:, k] > 0).any()], np.int64)  # fmt: skip
        object.__setattr__(self, "_frail", frail)
        if frail.size:
            from lenasim.design import frailty  # numba: only a model with frailty needs it

            z, w = frailty.quadrature()
            sig = np.asarray(self.sigma, float)[:, frail]
            eta = frailty.conditional_eta(p[:, :, frail], sig[:, None, :, None], z, w)
            object.__setattr__(self, "_nodes", (frailty.node_table(eta, sig, z), w))
            # The frail events' own terms leave the linear part (their grade terms stay).
            a_f, b_f = a.copy(), b.copy()
            a_f[:, :, frail] -= np.log(p[:, :, frail])
            b_f[:, :, frail] = 0.0
            object.__setattr__(self, "_log_p_f", a_f.reshape(p.shape[0], -1))
            object.__setattr__(self, "_log_q_f", b_f.reshape(p.shape[0], -1))
        object.__setattr__(self, "_log_prior", np.log(self.prior))
        over = self.limit_risk > self.limit_max[None, None, :]
        object.__setattr__(self, "_over", over.astype(float))

    @property
    def n_draws(self) -> int:
        return int(self.p.shape[0])

    def weights(self, data: Data) -> tuple[np.ndarray, float]:
        """Normalised posterior weights of the draws, and their effective sample size.
        The last data's are kept: a rule asks again for the same data (decide, then
        select), and Data are not changed once made (trial.observe makes one a
        decision)."""
        last = getattr(self, "_last", None)
        if last is not None and last[0] is data:
            return last[1], last[2]
        w, ess = self._weights(data)
        object.__setattr__(self, "_last", (data, w, ess))
        return w, ess

    def _weights(self, data: Data) -> tuple[np.ndarray, float]:
        c = self.p.shape[3]
        e = data.events[:, self.events, :c].reshape(-1)
        x = data.exposure[:, self.events, :c].reshape(-1)
        if self._frail.size and data.patient_events is not None:
            from lenasim.design.frailty import frailty_loglik

            logw = self._log_prior + self._log_p_f @ e + self._log_q_f @ x
            ks = self.events[self._frail]
            frailty_loglik(*self._nodes, np.asarray(data.patient, np.int64),
                           np.ascontiguousarray(data.patient_events[:, ks, :c], float),
                           np.ascontiguousarray(data.patient_exposure[:, ks, :c], float),
                           logw)  # fmt: skip
        else:
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
