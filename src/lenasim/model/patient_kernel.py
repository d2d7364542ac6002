"""The patient-cycles' log likelihood and its gradient in one compiled kernel (issue 24,
item 6), the pattern of :mod:`lenasim.model.kernel`: one numba call returns the log
likelihood of :mod:`lenasim.model.patient_data` and its gradient with respect to the
constrained parameters ``theta`` (:class:`~lenasim.model.kernel.ThetaLayout`), wrapped as
a PyTensor ``Op``. PyMC keeps the priors and transforms.

Two exact savings over the PyTensor graph of the same formulas (which stays the oracle:
``tests/model/test_patient_kernel.py`` checks value to ~1e-9 and the gradient by central
differences):

- *designs*: cells (patient-cycles) with the same trial, features and share followed have
  the same linear predictor, so the hazard, its logs and their derivatives at each
  quadrature node are computed once per design (the example: 75 designs for 981 cells);
- *merged patients*: patients with the same trial, cycle histories, covariates and events
  (:meth:`PatientData.merged`) count once with their number as a weight.

For event k, patient i (weight W_i), his cells c (design d, observation y_c), nodes z_q
(weights w_q)::

    x_dq = a_k + u_{t,k} + o_d + X_d b_k + sigma_k z_q
    l_cq = y_c log p(x_dq) + (1 - y_c) m(x_dq),  m = log(1 - p) (whole cycle) or
           log(1 - f_d p) (a last cycle followed for the share f_d)
    L_ik = logsumexp_q(log w_q + sum_c l_cq);  loglik = sum_ik W_i L_ik + severity

and backwards, with r_iq = exp(log w_q + sum_c l_cq - L_ik) (the patient's posterior
weight of node q)::

    d x_dq = sum_{c of design d} W_i r_iq [y_c p'/p + (1 - y_c) m']
    d eta_d = sum_q d x_dq;  d sigma_k = sum_dq d x_dq z_q

(logit: log p = -softplus(-x), p'/p = 1 - p, log(1 - p) = -softplus(x), its derivative
-p; cloglog_daily: lam = exp(x), p = 1 - exp(-lam), p' = lam exp(-lam)). The severity of
a graded flare is outside the frailty integral: per design, n1 log s + n0 log(1 - s) with
n1, n0 the weighted graded flares of grade >= 3 and below.
"""

from __future__ import annotations

import hashlib
import inspect
import math

import numba
import numpy as np

from lenasim.core.hazard import days_offset
from lenasim.core.vocabulary import active
from lenasim.model.kernel import ThetaLayout

PATIENT_KERNEL_VERSION = 1  # bump when the kernel's formulas change (PyTensor's cache key)
N_CONSTS = 18  # patient_arrays' length: the numba wrapper below spells them out


def _designs(pdata, terms) -> tuple[np.ndarray, np.ndarray]:
    """(design of each cell, the first cell of each design): cells alike in trial, share
    followed and every feature a term of ``terms`` reads (and days on, the offset's)."""
    names = sorted({t for ts in terms.values() for t in ts} | {"days_on"})
    key = np.stack(
        [pdata.cell_trial().astype(float), pdata.followed, *(pdata.features[t] for t in names)],
        axis=1,
    )
    _, first, design = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return design.reshape(-1).astype(np.int64), first


def patient_arrays(pdata, terms, trial_index, z, w, link) -> tuple:
    """The constant arrays of :func:`patient_kernel` (after ``theta, events``) for the
    patient-cycles ``pdata`` (a :class:`~lenasim.model.patient_csv.PatientData`), the
    model's ``terms``, the row of ``u`` of each of pdata's trials (``trial_index``) and
    the frailty quadrature."""
    vocab = active()
    events, sev = vocab.event_names, vocab.severity
    lay = ThetaLayout(terms, 1 + int(max(trial_index)))
    cp = pdata.cell_patient
    if np.any(np.diff(cp) < 0):
        raise ValueError("the patient kernel needs each patient's cells together")
    pstart = np.searchsorted(cp, np.arange(pdata.n_patients + 1)).astype(np.int64)
    pweight = np.ones(pdata.n_patients) if pdata.weight is None else np.asarray(pdata.weight)
    design, first = _designs(pdata, terms)
    n_d, n_e = first.size, len(events)
    k_max = max(1, *(len(terms[e]) for e in events))
    k_sev = len(terms[sev.name])
    a_idx = np.array([lay.intercept(e) for e in events], np.int64)
    sig_idx = np.array([lay.sigma(e) for e in events], np.int64)
    b_idx = np.zeros((n_e, k_max), np.int64)
    x = np.zeros((n_d, n_e, k_max))
    d_trial = np.asarray(trial_index)[pdata.cell_trial()[first]]
    u_idx = np.array([[lay.u(int(t), e) for e in events] for t in d_trial], np.int64)
    for j, e in enumerate(events):
        for k, t in enumerate(terms[e]):
            b_idx[j, k] = lay.beta(e, t)
            x[:, j, k] = pdata.features[t][first]
    s_idx = np.array([lay.beta(sev.name, t) for t in terms[sev.name]], np.int64)
    xs = np.zeros((n_d, k_sev))
    for k, t in enumerate(terms[sev.name]):
        xs[:, k] = pdata.features[t][first]
    offset = np.asarray(days_offset(pdata.features["days_on"][first], link), float)
    offset = np.broadcast_to(offset, (n_d,)).copy()
    return (
        design, pstart, np.asarray(pweight, float), a_idx, sig_idx, u_idx, b_idx, x,
        offset, pdata.followed[first].astype(float), pdata.graded.astype(float),
        np.int64(events.index(sev.event)), np.int64(lay.intercept(sev.name)), s_idx, xs,
        np.asarray(z, float), np.log(np.asarray(w, float)), np.int64(link == "cloglog_daily"),
    )  # fmt: skip


@numba.njit(inline="always")
def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@numba.njit(cache=True, error_model="numpy")
def patient_kernel(
    theta, events,
    design, pstart, pweight, a_idx, sig_idx, u_idx, b_idx, x, offset, follow, graded,
    sev_event, sev_a, s_idx, xs, z, logw, cloglog,
):  # fmt: skip
    """(log likelihood of the patient-cycles, its gradient wrt ``theta``): see the module.
    ``events``: (E + 1) x cells, flattened (each event's 0/1, then grade >= 3)."""
    n_cell, n_pat, n_d, n_q = design.size, pweight.size, follow.size, z.size
    n_e = a_idx.size
    ll = 0.0
    grad = np.zeros(theta.size)
    lp = np.empty((n_d, n_q))  # log p
    lm = np.empty((n_d, n_q))  # log of the miss: 1 - p, or 1 - f p in a part-followed cycle
    dlp = np.empty((n_d, n_q))  # d log p / dx
    dlm = np.empty((n_d, n_q))
    G = np.empty((n_d, n_q))  # noqa: N806  adjoints of log p and of the miss
    H = np.empty((n_d, n_q))  # noqa: N806
    acc = np.empty(n_q)
    r = np.empty(n_q)
    for e in range(n_e):
        sd = theta[sig_idx[e]]
        for d in range(n_d):
            eta = theta[a_idx[e]] + theta[u_idx[d, e]] + offset[d]
            for k in range(b_idx.shape[1]):
                eta += x[d, e, k] * theta[b_idx[e, k]]
            f = follow[d]
            for q in range(n_q):
                xq = eta + sd * z[q]
                if cloglog:
                    lam = math.exp(min(xq, 700.0))
                    p = -math.expm1(-lam)
                    dp = math.exp(-lam) * lam
                    lp[d, q] = math.log(p)
                    dlp[d, q] = dp / p
                    if f >= 1.0:
                        lm[d, q], dlm[d, q] = -lam, -lam
                    else:
                        lm[d, q] = math.log1p(-f * p)
                        dlm[d, q] = -f * dp / (1.0 - f * p)
                else:  # two transcendentals: t = exp(-|x|), log1p(t)
                    t = math.exp(-abs(xq))
                    l1 = math.log1p(t)
                    inv = 1.0 / (1.0 + t)
                    if xq >= 0.0:  # p = 1 / (1 + t)
                        lp[d, q], p, dlp[d, q] = -l1, inv, t * inv
                        lq = -xq - l1
                    else:  # p = t / (1 + t)
                        lp[d, q], p, dlp[d, q] = xq - l1, t * inv, inv
                        lq = -l1
                    if f >= 1.0:
                        lm[d, q] = lq
                        dlm[d, q] = -p
                    else:
                        lm[d, q] = math.log1p(-f * p)
                        dlm[d, q] = -f * p * dlp[d, q] / (1.0 - f * p)
                G[d, q] = 0.0
                H[d, q] = 0.0
        base = e * n_cell
        for i in range(n_pat):
            for q in range(n_q):
                acc[q] = logw[q]
            for c in range(pstart[i], pstart[i + 1]):
                d = design[c]
                y = events[base + c]
                for q in range(n_q):
                    acc[q] += y * lp[d, q] + (1.0 - y) * lm[d, q]
            m = acc[0]
            for q in range(1, n_q):
                m = max(m, acc[q])
            s = 0.0
            for q in range(n_q):
                r[q] = math.exp(acc[q] - m)
                s += r[q]
            ll += pweight[i] * (m + math.log(s))
            scale = pweight[i] / s
            for q in range(n_q):
                r[q] *= scale
            for c in range(pstart[i], pstart[i + 1]):
                d = design[c]
                y = events[base + c]
                for q in range(n_q):
                    G[d, q] += y * r[q]
                    H[d, q] += (1.0 - y) * r[q]
        for d in range(n_d):
            d_eta = 0.0
            d_sd = 0.0
            for q in range(n_q):
                dx = G[d, q] * dlp[d, q] + H[d, q] * dlm[d, q]
                d_eta += dx
                d_sd += dx * z[q]
            grad[a_idx[e]] += d_eta
            grad[u_idx[d, e]] += d_eta
            grad[sig_idx[e]] += d_sd
            for k in range(b_idx.shape[1]):
                grad[b_idx[e, k]] += d_eta * x[d, e, k]
    # the severity of graded flares (outside the frailty integral)
    n1 = np.zeros(n_d)
    n0 = np.zeros(n_d)
    for i in range(n_pat):
        for c in range(pstart[i], pstart[i + 1]):
            v = pweight[i] * events[sev_event * n_cell + c] * graded[c]
            g = events[n_e * n_cell + c]
            n1[design[c]] += v * g
            n0[design[c]] += v * (1.0 - g)
    for d in range(n_d):
        if n1[d] == 0.0 and n0[d] == 0.0:
            continue
        eta_s = theta[sev_a]
        for k in range(s_idx.size):
            eta_s += xs[d, k] * theta[s_idx[k]]
        ll += -n1[d] * _softplus(-eta_s) - n0[d] * _softplus(eta_s)
        s = 1.0 / (1.0 + math.exp(-eta_s))
        d_s = n1[d] * (1.0 - s) - n0[d] * s
        grad[sev_a] += d_s
        for k in range(s_idx.size):
            grad[s_idx[k]] += d_s * xs[d, k]
    return ll, grad


def _kernel_key() -> str:
    src = inspect.getsource(patient_kernel.py_func)
    return hashlib.sha256(f"{PATIENT_KERNEL_VERSION}\n{src}".encode()).hexdigest()[:24]


_OP = None


def patient_op():
    """The PyTensor Op around :func:`patient_kernel` (built on first use)."""
    global _OP
    if _OP is None:
        _OP = _make_op()
    return _OP


def _make_op():
    import pytensor.tensor as pt
    from pytensor.gradient import DisconnectedType, grad_undefined
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key

    class PatientLogLikelihood(Op):
        """(theta, events, *patient arrays) -> (log likelihood, its gradient wrt theta)."""

        __props__ = ()

        def make_node(self, theta, events, *consts):
            inputs = [pt.as_tensor_variable(v) for v in (theta, events, *consts)]
            return Apply(self, inputs, [pt.dscalar("patient_loglik"), pt.dvector("grad")])

        def perform(self, node, inputs, outputs):
            ll, grad = patient_kernel(*inputs)
            outputs[0][0] = np.asarray(ll)
            outputs[1][0] = grad

        def L_op(self, inputs, outputs, output_grads):
            g_ll, g_grad = output_grads
            if not isinstance(g_grad.type, DisconnectedType):
                raise NotImplementedError("the patient kernel differentiates its value only")
            rest = [grad_undefined(self, j, v, "data") for j, v in enumerate(inputs) if j]
            return [g_ll * outputs[1], *rest]

    @register_funcify_and_cache_key(PatientLogLikelihood)
    def _numba_patient(op, node, **kwargs):
        kernel = patient_kernel

        @numba_njit
        def loglik(
            theta, events, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13,
            c14, c15, c16, c17,
        ):  # fmt: skip
            ll, grad = kernel(
                theta, events, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13,
                c14, c15, c16, c17,
            )  # fmt: skip
            return np.array(ll), grad

        return loglik, f"lenasim-patient-{_kernel_key()}"

    return PatientLogLikelihood()


def patient_loglik_graph(theta, events, pdata, terms, trial_index, z, w, link):
    """The PyTensor variable of the patient-cycles' log likelihood from the kernel
    (``events``: the flattened observations, a tensor)."""
    consts = patient_arrays(pdata, terms, trial_index, z, w, link)
    assert len(consts) == N_CONSTS
    ll, _grad = patient_op()(theta, events, *consts)
    return ll
