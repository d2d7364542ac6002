"""Patient-level data in the fit (issue 24, item 6): a CSV of patient-cycles beside the
aggregate evidence rows, with a likelihood exact for individual data.

The CSV has one row per cycle a patient started (cycles 1, 2, ..., n with no gap), in
columns (:data:`REQUIRED` and :data:`OPTIONAL`):

- ``trial``, ``patient`` (an identifier unique within the trial), ``cycle`` (1-based);
- ``dose_mg`` (the mean daily dose on the days taken, mg; 0 in a cycle without drug),
  ``days_on`` (days lenalidomide was taken), ``cycle_days`` (the cycle's length);
  optional ``dose_max_mg`` (the highest daily dose of the cycle) and ``dose_first_mg``
  (its first day's dose), both ``dose_mg`` when absent (a constant dose in the cycle), and
  ``first_day`` (the day of the cycle of the first dose, default 1; the days on drug
  follow it without a break);
- one 0/1 column per event of the model (``flare``, ``tls``, ``neutropenia``): the event
  happened in this cycle; optional ``flare_grade3plus`` (the flare reached grade 3; empty
  when not graded, 0 when there was no flare);
- optional ``followed_days`` (end of follow-up: days of the cycle observed, at most
  ``cycle_days``; only a patient's last cycle may be followed in part; default the whole
  cycle);
- optional covariates, one 0/1 column per covariate term of the model (``untreated``,
  ``consolidation``, ``elderly``, ``anti_cd20``, ``chemo``, ``cdk_inhibitor``, and
  ``steroid``: steroid flare prophylaxis in this cycle); a covariate without a column is 0
  (the reference: relapsed CLL, lenalidomide alone, younger than 65, no steroid).

The exposure features of each cycle are those of :func:`lenasim.core.regimen.cycle_features`,
from the patient's own doses: ``log_dose`` = log(dose_mg / 10), ``log_frac_on`` =
log(days_on / cycle_days), ``first`` (the first cycle with drug), ``first_log_dose``,
``rise`` = log(dose_max_mg / highest earlier dose) (in the first cycle over
``dose_first_mg``), ``log_cycle`` = log(the lenalidomide cycle number), ``restart`` (the
first dose follows 14 days or more without drug after an earlier cycle with drug).

The likelihood (:func:`loglik`; its PyTensor graph is
:func:`lenasim.model.graph.patient_loglik`). Patient i of trial t has his own frailty z_ik
~ N(0, 1) for each event k, shared by all his cycles; his cycles' events are independent
given it::

    L_ik = E_z[ prod_c p_kc(z)^y_kc (1 - f_c p_kc(z))^(1 - y_kc) ],
    p_kc(z) = the hazard of lenasim.core.hazard.cycle_probability at eta_kc + u_k,t + sigma_k z

integrated per patient over his own cycles by the spec's frailty quadrature (the same nodes
as the aggregate rows': ``quadrature_rule``, ``quadrature_nodes``), in log space
(log-sum-exp over the nodes). f_c is the share of cycle c followed: 1 except in a last cycle
cut by the end of follow-up, where an event not (yet) seen counts as TITE-CRM counts it
(Cheung and Chappell, Biometrics 2000: the event time uniform within the cycle, so
P(event seen by f) = f p). A graded flare adds the conditional severity
s^g (1 - s)^(1 - g), s = sigmoid(a_sev + x' b_sev). u_k,t is the trial's between-trial
effect: a trial of the CSV that the evidence table also names shares its effect (do not
enter the same patients twice); a new trial gets its own.
"""

from __future__ import annotations

import numpy as np

from lenasim.core.hazard import cycle_probability, days_offset
from lenasim.core.vocabulary import active
from lenasim.model.patient_csv import (
    OPTIONAL_DOSE,
    REQUIRED,
    PatientData,
    event_columns,
    read_patient_cycles,
)

__all__ = [
    "OPTIONAL_DOSE",
    "PatientData",
    "REQUIRED",
    "event_columns",
    "loglik",
    "patient_loglik_numpy",
    "read_patient_cycles",
    "simulate_events",
]


class _NumpyOps:
    name = "numpy"

    @staticmethod
    def softplus(x):
        return np.logaddexp(0.0, x)

    @staticmethod
    def segment_sum(values, index, n):
        out = np.zeros((n, *values.shape[1:]))
        np.add.at(out, index, values)
        return out

    @staticmethod
    def logsumexp(x, axis):
        m = x.max(axis=axis, keepdims=True)
        return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)

    @staticmethod
    def log1mexp(x):  # log(1 - exp(x)), x < 0
        return np.log(-np.expm1(x))

    dot = staticmethod(np.dot)
    exp = staticmethod(np.exp)
    log1p = staticmethod(np.log1p)
    expm1 = staticmethod(np.expm1)


def _cell_logp(x, y, f, link: str, ops):
    """log P(the cell's observation | z), (N, Q): y 0/1 (N, 1), f the share followed (N, 1)."""
    full = (f >= 1.0).astype(float)
    f_part = np.where(f >= 1.0, 0.5, f)  # the partial branch is unused where full
    if link == "logit":
        log_p, log_q = -ops.softplus(-x), -ops.softplus(x)
        p = ops.exp(log_p)
    elif link == "cloglog_daily":
        lam = ops.exp(x)
        log_p, log_q = ops.log1mexp(-lam), -lam
        p = -ops.expm1(-lam)
    else:
        raise ValueError(f"unknown link {link!r}")
    miss = full * log_q + (1.0 - full) * ops.log1p(-f_part * p)
    return y * log_p + (1.0 - y) * miss


def loglik(params, pdata: PatientData, terms, trial_index, z, w, link, y, ops):
    """The log likelihood of the patient-cycles (module docstring). ``params``: ``a`` (E,)
    intercepts, ``beta`` {event: (terms,)}, ``sigma`` (E,), ``u`` (trial, E), ``sev_a``,
    ``sev_b`` (severity terms,); ``trial_index`` (trials of pdata,) rows of ``u``;
    ``y`` (E + 1, N) the observations; ``ops`` the array functions (NumPy's here, PyTensor's
    in :func:`lenasim.model.graph.patient_loglik`)."""
    vocab = active()
    n = pdata.n_cells
    cell_u_row = np.asarray(trial_index)[pdata.cell_trial()]
    offset = days_offset(pdata.features["days_on"], link)
    f = pdata.followed[:, None]
    logw = np.log(w)[None, :]
    pw = np.ones(pdata.n_patients) if pdata.weight is None else pdata.weight  # merged records
    total = 0.0
    for e, ev in enumerate(vocab.event_names):
        names = terms[ev]
        eta = params["a"][e] + params["u"][cell_u_row, e] + offset
        if names:
            X = np.stack([pdata.features[t] for t in names], axis=1)
            eta = eta + ops.dot(X, params["beta"][ev])
        x = eta[:, None] + params["sigma"][e] * np.asarray(z)[None, :]
        ll = _cell_logp(x, y[e][:, None], f, link, ops)  # (N, Q)
        lp = ops.segment_sum(ll, pdata.cell_patient, pdata.n_patients)
        total = total + (pw * ops.logsumexp(lp + logw, axis=1)).sum()
    sev = vocab.severity
    k = vocab.event_names.index(sev.event)
    s_names = terms[sev.name]
    eta_s = params["sev_a"] + 0.0 * np.zeros(n)
    if s_names:
        Xs = np.stack([pdata.features[t] for t in s_names], axis=1)
        eta_s = eta_s + ops.dot(Xs, params["sev_b"])
    g = y[-1]
    ll_s = g * -ops.softplus(-eta_s) + (1.0 - g) * -ops.softplus(eta_s)
    return total + (y[k] * pdata.graded * pdata.cell_weight() * ll_s).sum()


def patient_loglik_numpy(params, pdata: PatientData, terms, trial_index, z, w, link="logit",
                         y=None) -> float:  # fmt: skip
    """The same log likelihood in NumPy, for one parameter set (tests, checks)."""
    y = pdata.events if y is None else y
    return float(loglik(params, pdata, terms, trial_index, z, w, link, y, _NumpyOps()))


def simulate_events(params, pdata: PatientData, terms, trial_index, rng, link="logit"):
    """(E + 1, N) observations drawn from the likelihood's own model under ``params`` (one
    parameter set, as for :func:`patient_loglik_numpy`): a frailty per patient and event,
    each cycle's event seen with probability f p (f the share followed), a flare's grade
    >= 3 with the severity's probability (simulation-based calibration).

    ``pdata`` must not be merged (:meth:`PatientData.merged`): a merged record stands for
    several patients whose events would differ, and would be simulated as one."""
    if pdata.weight is not None and np.any(pdata.weight != 1):
        raise ValueError(
            "simulate_events needs unmerged patient data: a merged record stands for "
            f"{int(pdata.weight.max())} patients whose events differ; simulate on the data "
            "as read (read_patient_cycles), before PatientData.merged()"
        )
    vocab = active()
    n = pdata.n_cells
    u_row = np.asarray(trial_index)[pdata.cell_trial()]
    offset = days_offset(pdata.features["days_on"], link)
    y = np.zeros((len(vocab.event_names) + 1, n))
    for e, ev in enumerate(vocab.event_names):
        eta = params["a"][e] + params["u"][u_row, e] + offset
        for b, t in zip(params["beta"][ev], terms[ev]):
            eta = eta + b * pdata.features[t]
        z = rng.standard_normal(pdata.n_patients)[pdata.cell_patient]
        p = cycle_probability(eta, 0.0, params["sigma"][e], z, 1.0, link=link)
        y[e] = rng.random(n) < pdata.followed * p
    eta_s = params["sev_a"] + sum(
        b * pdata.features[t] for b, t in zip(params["sev_b"], terms[vocab.severity.name])
    )
    k = vocab.event_names.index(vocab.severity.event)
    y[-1] = y[k] * (rng.random(n) < 1.0 / (1.0 + np.exp(-eta_s)))
    return y
