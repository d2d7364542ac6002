"""The log likelihood and its gradient in one compiled kernel (issue 13).

The model of :mod:`lenasim.model.likelihood` written as one loop over the counted cells
(component x cycle) and quadrature nodes, with the gradient by hand (reverse mode, the
chain rule below), compiled by numba and wrapped as a PyTensor ``Op``
(:class:`lenasim.model.graph.LogLikelihood`; this module imports no PyTensor). PyMC keeps the
priors, the transforms and their Jacobians; the Op takes the constrained parameters in
one vector ``theta`` and returns the log likelihood, its gradient with respect to
``theta`` and the rows' expected rates. NUTS calls the log density and its gradient a few
hundred thousand times per fit: on the PyTensor graph of the same formulas (sigmoids,
products with 0/1 matrices and their adjoints, each its own pass over memory) one call
costs ~190 us here, in this kernel ~15 us.

The formulas are those of the likelihood module. For a cell i of component c (its event
e, trial t, exposure x_i, node z_q with weight w_q)::

    eta_i = a_e + X_i b_e + u_{t,e} + o_i;  s_iq = sigmoid(eta_i + sigma_e z_q)
    (link cloglog_daily: s_iq = 1 - exp(-exp(eta_i + sigma_e z_q)), o_i the offset
    log(days on / 28); logit: o_i = 0)
    p_iq  = (1 - 1e-9) x_i s_iq g_i,  g_i = sigmoid(a_sev + Xs_i b_sev) for grade >= 3
            flare, else 1

    patients:  P_c = 1 - sum_q w_q Pi_cq,       Pi_cq = prod_i (1 - p_iq)
    cycle_k:   P_c = sum_q w_q S_cq / m_c,      S_cq = sum_i p_iq
    cycles:    as cycle_k, and V_c = sum_q w_q [sum_i p_iq (1 - p_iq) + S_cq^2] - Sbar_c^2,
               Sbar_c = sum_q w_q S_cq

    rows: P_r = clip(sum_c M_rc P_c); Binomial(n_r, P_r) or Normal(n_r P_r, sd_r),
          sd_r^2 = sum_c M_rc N_r V_c + 1/4

and the adjoints (``d`` = derivative of the weighted log likelihood)::

    dP_c = sum_r M_rc dP_r;  dV_c = sum_r M_rc N_r dvar_r
    dp_iq = dP_c w_q prod_{j != i} (1 - p_jq)                        (patients)
          = dP_c w_q / m_c [+ dV_c w_q (1 - 2 p_iq + 2 S_cq - 2 Sbar_c)]  (cycle_k [cycles])
    d(eta_i + sigma_e z_q) = dp_iq (1 - 1e-9) x_i g_i s'_iq,
        s' = s (1 - s) (logit), exp(-lam) lam with lam = exp(eta_i + sigma_e z_q) (cloglog)
    dg_i = sum_q dp_iq (1 - 1e-9) x_i s_iq

``tests/model/test_kernel.py`` checks the value and rates against the PyTensor graph of
:func:`lenasim.model.likelihood.row_probabilities` and the gradient against finite
differences and PyTensor's own gradient of that graph.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from dataclasses import dataclass, field

import numba
import numpy as np

from lenasim.core.vocabulary import UNITS, active

KERNEL_VERSION = 2  # bump when the kernel's formulas change (part of PyTensor's cache key)
_SHRINK = 1.0 - 1e-9  # keeps log(1 - p) finite when p rounds to 1 (as the graph does)
_CLIP = 1e-9  # rows' rates are clipped to [1e-9, 1 - 1e-9] (as the graph does)
# the units' codes in the compiled kernel (constants to numba): their index in UNITS
_UNIT_PATIENTS, _UNIT_CYCLES, _UNIT_CYCLE_K = (
    UNITS.index(u) for u in ("patients", "cycles", "cycle_k")
)


@dataclass(frozen=True)
class ThetaLayout:
    """Where each constrained parameter sits in ``theta``: intercepts (events, then the
    severity's), the coefficients of each block in its terms' order, frailty SDs, and the
    trial effects u (trial, event) in C order."""

    terms: dict[str, tuple[str, ...]]
    n_trials: int
    events: tuple[str, ...] = field(default_factory=lambda: active().event_names)
    severity: str = field(default_factory=lambda: active().severity.name)

    @property
    def blocks(self) -> tuple[str, ...]:
        return (*self.events, self.severity)

    def intercept(self, block: str) -> int:
        return self.blocks.index(block)

    def beta(self, block: str, term: str) -> int:
        start = len(self.blocks)
        for b in self.blocks:
            if b == block:
                return start + self.terms[b].index(term)
            start += len(self.terms[b])
        raise KeyError(block)

    @property
    def sigma0(self) -> int:
        return len(self.blocks) + sum(len(self.terms[b]) for b in self.blocks)

    def sigma(self, event: str) -> int:
        return self.sigma0 + self.events.index(event)

    def u(self, trial: int, event: str) -> int:
        n_ev = len(self.events)
        return self.sigma0 + n_ev + trial * n_ev + self.events.index(event)

    @property
    def size(self) -> int:
        return self.sigma0 + len(self.events) * (1 + self.n_trials)


def kernel_arrays(data, terms: dict[str, tuple[str, ...]]) -> tuple[np.ndarray, ...]:
    """The constant arrays the kernel reads, from :class:`~lenasim.model.likelihood.ModelData`
    (in the order of :func:`loglik_kernel`'s arguments after ``theta, weight, events``)."""
    lay = ThetaLayout(terms, len(data.trials))
    EVENTS, SEVERITY = lay.events, lay.severity  # noqa: N806
    comp_event = data.comp_event.argmax(axis=1)
    comp_trial = data.comp_trial.argmax(axis=0)
    comp_row = data.mixing.argmax(axis=0)  # each component serves one row
    comp_unit = data.row_unit[comp_row]
    if set(np.unique(data.mask)) - {0.0, 1.0}:
        raise ValueError("the kernel assumes 0/1 cycle masks")
    ci, cc = np.nonzero((data.mask != 0) & (data.features["exposed"] != 0))  # C order: by comp
    n_cell = ci.size
    k_max = max(1, *(len(terms[e]) for e in EVENTS))
    k_sev = max(1, len(terms[SEVERITY]))
    a_idx = np.empty(n_cell, np.int64)
    sig_idx = np.empty(n_cell, np.int64)
    u_idx = np.empty(n_cell, np.int64)
    b_idx = np.zeros((n_cell, k_max), np.int64)
    x = np.zeros((n_cell, k_max))
    sev = np.zeros(n_cell, np.int64)  # 1 for grade >= 3 flare cells
    s_idx = np.zeros((n_cell, k_sev), np.int64)
    xs = np.zeros((n_cell, k_sev))
    for j, (c, cyc) in enumerate(zip(ci, cc)):
        ev = EVENTS[comp_event[c]]
        a_idx[j], sig_idx[j] = lay.intercept(ev), lay.sigma(ev)
        u_idx[j] = lay.u(int(comp_trial[c]), ev)
        for k, t in enumerate(terms[ev]):
            b_idx[j, k], x[j, k] = lay.beta(ev, t), data.features[t][c, cyc]
        if data.comp_severe[c]:
            sev[j] = 1
            for k, t in enumerate(terms[SEVERITY]):
                s_idx[j, k], xs[j, k] = lay.beta(SEVERITY, t), data.features[t][c, cyc]
    exposed = data.features["exposed"][ci, cc].astype(float)
    offset = data.features["offset"][ci, cc].astype(float)
    cloglog = np.int64(data.link == "cloglog_daily")
    span = data.mask.sum(axis=1)
    row_normal = (data.row_unit == UNITS.index("cycles")).astype(np.int64)
    n = data.n.astype(float)
    lgamma_n1 = np.array([math.lgamma(v + 1.0) for v in n])  # log n! of binomial rows
    return (
        ci.astype(np.int64), a_idx, sig_idx, u_idx, b_idx, x, sev,
        np.int64(lay.intercept(SEVERITY)), s_idx, xs, exposed,
        comp_unit.astype(np.int64), span.astype(float), np.ascontiguousarray(data.mixing, float),
        row_normal, n, np.asarray(data.row_patients, float), lgamma_n1,
        np.asarray(data.z, float), np.asarray(data.w, float), offset, cloglog,
    )  # fmt: skip


@numba.njit(cache=True, fastmath={"nsz", "arcp", "contract", "reassoc"}, error_model="numpy")
def loglik_kernel(
    theta, weight, events,
    cell_comp, a_idx, sig_idx, u_idx, b_idx, x, sev, sev_a, s_idx, xs, exposed,
    unit, span, mixing, row_normal, n, row_patients, lgamma_n1, z, w, offset, cloglog,
):  # fmt: skip
    """(log likelihood, its gradient wrt ``theta``, rows' expected rates): see the module."""
    n_cell, n_q = cell_comp.size, z.size
    n_comp, n_row = unit.size, n.size
    # forward: cells
    eta = np.empty(n_cell)
    g = np.ones(n_cell)
    for i in range(n_cell):
        v = theta[a_idx[i]] + theta[u_idx[i]] + offset[i]
        for k in range(b_idx.shape[1]):
            v += x[i, k] * theta[b_idx[i, k]]
        eta[i] = v
        if sev[i]:
            s = theta[sev_a]
            for k in range(s_idx.shape[1]):
                s += xs[i, k] * theta[s_idx[i, k]]
            g[i] = 1.0 / (1.0 + math.exp(-s))
    sg = np.empty((n_cell, n_q))
    p = np.empty((n_cell, n_q))
    pre = np.empty((n_cell, n_q))
    ds = np.zeros((n_cell, n_q))  # d s_iq / d(eta_i + sigma_e z_q), cloglog only
    # acc: prod_i (1 - p_iq) = exp(A_cq) for patients; S_cq for cycles and cycle_k
    acc = np.zeros((n_comp, n_q))
    for c in range(n_comp):
        if unit[c] == _UNIT_PATIENTS:
            acc[c, :] = 1.0
    var_pq = np.zeros(n_comp)  # sum_q w_q sum_i p (1 - p) (cycles)
    # exp(-(eta + sd z)) = exp(-eta) exp(-sd z): one exp per cell and per (event, node)
    # instead of one per (cell, node); exact but for rounding while both factors are finite
    z_max = np.abs(z).max()
    sig_lo = sig_idx.min() if n_cell else 0
    e_sz = np.empty((sig_idx.max() - sig_lo + 1 if n_cell else 0, n_q))
    for j in range(e_sz.shape[0]):
        for q in range(n_q):
            e_sz[j, q] = math.exp(-theta[sig_lo + j] * z[q])
    for i in range(n_cell):
        c = cell_comp[i]
        sd = theta[sig_idx[i]]
        scale = _SHRINK * exposed[i] * g[i]
        uc = unit[c]
        # branch-free loops over the nodes (they vectorise)
        if cloglog:  # s = 1 - exp(-lam), lam = exp(eta + sd z); ds = exp(-lam) lam
            for q in range(n_q):
                lam = math.exp(min(eta[i] + sd * z[q], 700.0))
                sg[i, q] = -math.expm1(-lam)
                ds[i, q] = math.exp(-lam) * lam
        elif abs(eta[i]) > 300.0 or abs(sd) * z_max > 300.0:
            for q in range(n_q):
                sg[i, q] = 1.0 / (1.0 + math.exp(-(eta[i] + sd * z[q])))
        else:
            e_eta = math.exp(-eta[i])
            j = sig_idx[i] - sig_lo
            for q in range(n_q):
                sg[i, q] = 1.0 / (1.0 + e_eta * e_sz[j, q])
        for q in range(n_q):
            p[i, q] = scale * sg[i, q]
        if uc == _UNIT_PATIENTS:
            for q in range(n_q):  # pre: the product over the component's earlier cells
                pre[i, q] = acc[c, q]
                acc[c, q] *= 1.0 - p[i, q]
        else:
            for q in range(n_q):
                acc[c, q] += p[i, q]
            if uc == _UNIT_CYCLES:
                t = 0.0
                for q in range(n_q):
                    t += w[q] * p[i, q] * (1.0 - p[i, q])
                var_pq[c] += t
    # forward: components
    p_comp = np.zeros(n_comp)
    v_comp = np.zeros(n_comp)
    sbar = np.zeros(n_comp)
    for c in range(n_comp):
        if unit[c] == _UNIT_PATIENTS:
            e = 0.0
            for q in range(n_q):
                e += w[q] * acc[c, q]
            p_comp[c] = 1.0 - e
        else:
            sb = 0.0
            s2 = 0.0
            for q in range(n_q):
                sb += w[q] * acc[c, q]
                s2 += w[q] * acc[c, q] ** 2
            sbar[c] = sb
            p_comp[c] = sb / span[c]
            if unit[c] == _UNIT_CYCLES:
                v_comp[c] = var_pq[c] + s2 - sb * sb
    # forward and backward: rows
    p_row = np.empty(n_row)
    d_pc = np.zeros(n_comp)
    d_vc = np.zeros(n_comp)
    ll = 0.0
    for r in range(n_row):
        pr = 0.0
        for c in range(n_comp):
            pr += mixing[r, c] * p_comp[c]
        inside = _CLIP <= pr <= 1.0 - _CLIP
        pr = min(max(pr, _CLIP), 1.0 - _CLIP)
        p_row[r] = pr
        if weight[r] == 0.0:
            continue
        if row_normal[r]:
            var = 0.25
            for c in range(n_comp):
                var += mixing[r, c] * row_patients[r] * v_comp[c]
            resid = events[r] - n[r] * pr
            ll += weight[r] * (
                -0.5 * math.log(2.0 * math.pi) - 0.5 * math.log(var) - 0.5 * resid * resid / var
            )
            d_p = weight[r] * n[r] * resid / var
            d_var = weight[r] * (-0.5 / var + 0.5 * resid * resid / (var * var))
            for c in range(n_comp):
                d_vc[c] += mixing[r, c] * row_patients[r] * d_var
        else:
            k = round(events[r])
            if k < 0.0 or k > n[r]:  # impossible count: as PyMC's Binomial, -inf
                ll = -np.inf
                continue
            log_binom = lgamma_n1[r] - math.lgamma(k + 1.0) - math.lgamma(n[r] - k + 1.0)
            ll += weight[r] * (log_binom + k * math.log(pr) + (n[r] - k) * math.log1p(-pr))
            d_p = weight[r] * (k / pr - (n[r] - k) / (1.0 - pr))
        if not inside:
            d_p = 0.0
        for c in range(n_comp):
            d_pc[c] += mixing[r, c] * d_p
    # backward: cells
    grad = np.zeros(theta.size)
    d_p = np.empty(n_q)
    # suf: the product of (1 - p) over the component's later cells (cells run backwards),
    # so that d/dp_iq prod_j (1 - p_jq) = pre * suf, without dividing by 1 - p_iq
    suf = np.ones((n_comp, n_q))
    for i in range(n_cell - 1, -1, -1):
        c = cell_comp[i]
        if unit[c] == _UNIT_PATIENTS:
            for q in range(n_q):
                d_p[q] = d_pc[c] * w[q] * pre[i, q] * suf[c, q]
                suf[c, q] *= 1.0 - p[i, q]
        else:
            for q in range(n_q):
                d_p[q] = d_pc[c] * w[q] / span[c]
            if unit[c] == _UNIT_CYCLES:
                for q in range(n_q):
                    d_p[q] += (
                        d_vc[c] * w[q] * (1.0 - 2.0 * p[i, q] + 2.0 * acc[c, q] - 2.0 * sbar[c])
                    )
        d_eta = 0.0
        d_sd = 0.0
        d_g = 0.0
        base = _SHRINK * exposed[i]
        if cloglog:
            for q in range(n_q):
                s = sg[i, q]
                b = d_p[q] * base
                d_l = b * g[i] * ds[i, q]
                d_eta += d_l
                d_sd += d_l * z[q]
                d_g += b * s
        else:  # the logit-only kernel's loop, unchanged (the same bits)
            for q in range(n_q):
                s = sg[i, q]
                b = d_p[q] * base
                d_l = b * g[i] * s * (1.0 - s)
                d_eta += d_l
                d_sd += d_l * z[q]
                d_g += b * s
        grad[a_idx[i]] += d_eta
        grad[u_idx[i]] += d_eta
        grad[sig_idx[i]] += d_sd
        for k in range(b_idx.shape[1]):
            grad[b_idx[i, k]] += d_eta * x[i, k]
        if sev[i]:
            d_s = d_g * g[i] * (1.0 - g[i])
            grad[sev_a] += d_s
            for k in range(s_idx.shape[1]):
                grad[s_idx[i, k]] += d_s * xs[i, k]
    return ll, grad, p_row


def kernel_key() -> str:
    """Part of PyTensor's numba cache key of the Op around the kernel
    (:class:`lenasim.model.graph.LogLikelihood`): the kernel's version and source."""
    src = inspect.getsource(loglik_kernel.py_func)
    return hashlib.sha256(f"{KERNEL_VERSION}\n{src}".encode()).hexdigest()[:24]


N_CONSTS = 22  # kernel_arrays' length: the Op's numba wrapper spells them out
