"""The model as a PyMC graph, and the samplers: every part of the model stage that needs
PyMC, PyTensor or nutpie, in one module that imports them at its top.

The formulas live in modules that import none of them (a run uses them without loading
PyMC): :mod:`lenasim.model.likelihood` (the evidence rows' expected rates, written once
for NumPy and PyTensor), :mod:`lenasim.model.kernel` (the same likelihood and its gradient
compiled by numba) and :mod:`lenasim.model.patient_data` (the patient-cycles' likelihood).
This module builds the PyMC model from them (:func:`build_model`: the priors, the
likelihood as a ``Potential``), wraps the kernel as a PyTensor Op (:class:`LogLikelihood`),
gives the hazard its PyTensor backend (:data:`PYTENSOR`) and runs the samplers
(:func:`compile_model`, :func:`sample`, :func:`prior_draws`).

The rest of the stage imports it in one place, :class:`lenasim.model.fit.Fitter`, so that
``fit`` reads and checks its spec and patient CSV before PyMC loads.
"""

from __future__ import annotations

import warnings

import numpy as np
import nutpie
import pymc as pm
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key

from lenasim.core.hazard import Backend
from lenasim.core.vocabulary import active
from lenasim.model import patient_data
from lenasim.model.kernel import N_CONSTS, kernel_arrays, kernel_key, loglik_kernel
from lenasim.model.likelihood import ModelData, row_probabilities
from lenasim.model.patient_kernel import N_CONSTS as PATIENT_N_CONSTS
from lenasim.model.patient_kernel import kernel_key as patient_kernel_key
from lenasim.model.patient_kernel import patient_arrays, patient_kernel
from lenasim.model.spec import ModelSpec

try:  # the compile cache uses nutpie's internals (tested with 0.16)
    from lenasim.model.compiled import compile_nutpie
except ImportError as _err:  # another nutpie moved them: compile_model compiles as nutpie does
    compile_nutpie, CACHE_UNAVAILABLE = None, _err
else:
    CACHE_UNAVAILABLE = None

__all__ = [
    "PYTENSOR",
    "LogLikelihood",
    "build_model",
    "compile_model",
    "loglik_graph",
    "patient_loglik",
    "prior_draws",
    "row_logp",
    "sample",
]

# The hazard's and the likelihood's array functions on PyTensor tensors.
PYTENSOR = Backend("pytensor", pt.sigmoid, pt.log1p, pt.exp, lambda v: pt.stack(v, axis=-1))


# ------------------------------------------------------------------------ the model


def build_model(data: ModelData, spec: ModelSpec, prior_only: bool = False, *, kernel: bool = True):
    """The PyMC model of the fitted rows under ``spec`` (the likelihood is
    :func:`row_logp` times the data ``row_weight``, 1 by default).

    ``kernel``: the likelihood and its gradient from the compiled kernel of
    :mod:`lenasim.model.kernel` (the default, ~12x faster per gradient); False builds the
    same formulas as a PyTensor graph (:func:`~lenasim.model.likelihood.row_probabilities`),
    the kernel's oracle."""
    terms = spec.terms_map()
    vocab = active()
    EVENTS, SEVERITY = vocab.event_names, vocab.severity.name  # noqa: N806
    coords = {
        "event": list(EVENTS),
        "trial": list(data.trials),
        "row": list(data.rows["row_id"]),
        **{f"{b}_term": list(terms[b]) for b in vocab.hazards},
    }

    def coefficients(name, block):
        """The block's coefficients, in its terms' order: Normal priors as they are,
        log-normal ones as exp(Normal) (a slope positive in every draw)."""
        block_terms = terms[block]
        pri = {t: spec.prior(block, t) for t in block_terms}
        pos = [t for t in block_terms if pri[t].dist == "lognormal"]
        free = [t for t in block_terms if t not in pos]
        if not pos:
            return pm.Normal(name, mu=np.array([pri[t].mu for t in free]),
                             sigma=np.array([pri[t].sigma for t in free]), dims=f"{block}_term")  # fmt: skip
        parts = {}
        if free:
            model.add_coord(f"{block}_free_term", free)
            v = pm.Normal(f"{name}_free", mu=np.array([pri[t].mu for t in free]),
                          sigma=np.array([pri[t].sigma for t in free]), dims=f"{block}_free_term")  # fmt: skip
            parts.update({t: v[i] for i, t in enumerate(free)})
        model.add_coord(f"{block}_positive_term", pos)
        v = pm.LogNormal(f"{name}_positive", mu=np.array([pri[t].mu for t in pos]),
                         sigma=np.array([pri[t].sigma for t in pos]), dims=f"{block}_positive_term")  # fmt: skip
        parts.update({t: v[i] for i, t in enumerate(pos)})
        return pm.Deterministic(
            name, pt.stack([parts[t] for t in block_terms]), dims=f"{block}_term"
        )

    with pm.Model(coords=coords) as model:
        pri_a = [spec.prior(ev, "intercept") for ev in EVENTS]
        a = pm.Normal(
            "intercept",
            mu=np.array([q.mu for q in pri_a]),
            sigma=np.array([q.sigma for q in pri_a]),
            dims="event",
        )
        beta = {ev: coefficients(f"beta_{ev}", ev) for ev in EVENTS}
        tau = pm.HalfNormal(
            "tau", sigma=np.array([spec.prior(ev, "tau").sigma for ev in EVENTS]), dims="event"
        )
        sigma = pm.HalfNormal(
            "sigma",
            sigma=np.array([spec.prior(ev, "frailty").sigma for ev in EVENTS]),
            dims="event",
        )
        df = spec.trial_df()
        if df is None:
            u_raw = pm.Normal("u_raw", 0.0, 1.0, dims=("trial", "event"))
        else:  # heavy-tailed trial effects (Student-t), non-centred like the normal ones
            u_raw = pm.StudentT("u_raw", nu=df, mu=0.0, sigma=1.0, dims=("trial", "event"))
        u = pm.Deterministic("u", u_raw * tau, dims=("trial", "event"))
        sev_pri = spec.prior(SEVERITY, "intercept")
        sev_a = pm.Normal("sev_intercept", mu=sev_pri.mu, sigma=sev_pri.sigma)
        sev_b = coefficients("sev_beta", SEVERITY)
        # Per-row weights (0 drops a row: leave-one-trial-out) and counts (simulation-
        # based calibration) are data, so one compiled model serves every refit.
        ones = np.ones(len(data.rows))
        if prior_only:
            weight, events = ones, data.events.astype(float)
        else:
            weight = pm.Data("row_weight", ones)
            events = pm.Data("row_events", data.events.astype(float))
        if kernel and len(data.rows):  # (no rows: patient-level data alone)
            # theta in the order of lenasim.model.kernel.ThetaLayout
            theta = pt.concatenate([
                a, pt.stack([sev_a]), *(beta[ev] for ev in EVENTS), sev_b, sigma, u.flatten(),
            ])  # fmt: skip
            ll, P = loglik_graph(theta, weight, events, data, terms)
            pm.Deterministic("p_row", P, dims="row")
        elif len(data.rows):
            params = {
                "intercept": {**{ev: a[e] for e, ev in enumerate(EVENTS)}, SEVERITY: sev_a},
                "beta": {
                    **{ev: {t: beta[ev][i] for i, t in enumerate(terms[ev])} for ev in EVENTS},
                    SEVERITY: {t: sev_b[i] for i, t in enumerate(terms[SEVERITY])},
                },
                "sigma": {ev: sigma[e] for e, ev in enumerate(EVENTS)},
                "u": {ev: u[:, e] for e, ev in enumerate(EVENTS)},
            }
            P, var_s = row_probabilities(params, data, terms, PYTENSOR)
            P = pm.Deterministic("p_row", pt.clip(P, 1e-9, 1 - 1e-9), dims="row")
            if not prior_only:
                ll = (weight * row_logp(P, var_s, data, events)).sum()
        if not prior_only and len(data.rows):
            pm.Potential("loglik", ll)
        if data.patients is not None and not prior_only:  # lenasim.model.patient_data
            params = {"a": a, "beta": beta, "sigma": sigma, "u": u, "sev_a": sev_a, "sev_b": sev_b}
            add_patient_potential(data, terms, kernel=kernel, **params)
    return model


def row_logp(P, var_s, data: ModelData, events):
    """Log likelihood of every row (PyTensor): Binomial(n, P) for ``patients`` and
    ``cycle_k`` rows; for ``cycles`` rows Normal(N P, sd) with sd^2 = sum over the row's
    arms of n_patients Var(S), plus 1/4 for the rounding of a reported percent."""
    out = pt.zeros(len(data.rows))
    b, c = data.binomial, data.cycles
    if b.size:
        k = pt.round(events[b]).astype("int64")
        lb = pm.logp(pm.Binomial.dist(n=data.n[b].astype("int64"), p=P[b]), k)
        out = pt.set_subtensor(out[b], lb)
    if c.size:
        var_rows = pt.dot(data.mixing[c] * data.row_patients[c][:, None], var_s)
        sd = pt.sqrt(var_rows + 0.25)
        lc = pm.logp(pm.Normal.dist(mu=data.n[c] * P[c], sigma=sd), events[c])
        out = pt.set_subtensor(out[c], lc)
    return out


# ------------------------------------------------------------- the kernel as an Op


class LogLikelihood(Op):
    """(theta, row weights, row counts, *kernel arrays) -> (log likelihood, its gradient
    wrt theta, rows' expected rates), by :func:`lenasim.model.kernel.loglik_kernel`.
    Differentiable in theta only; the gradient output is the kernel's own, so the log
    density and its gradient cost one kernel call."""

    __props__ = ()

    def make_node(self, theta, weight, events, *consts):
        inputs = [pt.as_tensor_variable(v) for v in (theta, weight, events, *consts)]
        outputs = [pt.dscalar("loglik"), pt.dvector("loglik_grad"), pt.dvector("p_row")]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, outputs):
        ll, grad, p_row = loglik_kernel(*inputs)
        outputs[0][0] = np.asarray(ll)
        outputs[1][0] = grad
        outputs[2][0] = p_row

    def L_op(self, inputs, outputs, output_grads):
        g_ll, g_grad, g_p = output_grads
        if not (
            isinstance(g_grad.type, DisconnectedType) and isinstance(g_p.type, DisconnectedType)
        ):
            raise NotImplementedError(
                "the likelihood kernel differentiates its log likelihood only "
                "(not its gradient or the rows' rates)"
            )
        rest = [
            grad_undefined(self, j, v, "data, not a parameter") for j, v in enumerate(inputs) if j
        ]
        return [g_ll * outputs[1], *rest]


@register_funcify_and_cache_key(LogLikelihood)
def _numba_loglik(op, node, **kwargs):
    kernel = loglik_kernel

    @numba_njit
    def loglik(
        theta, weight, events, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12,
        c13, c14, c15, c16, c17, c18, c19, c20, c21,
    ):  # fmt: skip
        ll, grad, p_row = kernel(
            theta, weight, events, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11,
            c12, c13, c14, c15, c16, c17, c18, c19, c20, c21,
        )  # fmt: skip
        return np.array(ll), grad, p_row

    return loglik, f"lenasim-loglik-{kernel_key()}"


LOGLIK = LogLikelihood()


def loglik_graph(theta, weight, events, data: ModelData, terms):
    """PyTensor variables (log likelihood, rows' rates) of the kernel on ``data``."""
    consts = kernel_arrays(data, terms)
    assert len(consts) == N_CONSTS  # the numba wrapper above spells them out
    ll, _grad, p_row = LOGLIK(theta, weight, events, *consts)
    return ll, p_row


# ------------------------------------------------------------- the patient-cycles


class PytensorOps:
    """The array functions of :func:`lenasim.model.patient_data.loglik` on PyTensor
    tensors (NumPy's are that module's own)."""

    name = "pytensor"
    softplus, logsumexp = staticmethod(pt.softplus), staticmethod(pt.logsumexp)
    log1mexp, dot = staticmethod(pt.log1mexp), staticmethod(pt.dot)
    exp, log1p, expm1 = staticmethod(pt.exp), staticmethod(pt.log1p), staticmethod(pt.expm1)

    @staticmethod
    def segment_sum(values, index, n):
        return pt.inc_subtensor(pt.zeros((n, values.shape[1]))[index], values)


def patient_loglik(params, pdata, terms, trial_index, z, w, link, y):
    """The PyTensor graph of the patient-cycles' log likelihood (``y``: a tensor, the
    observations as ``pm.Data``, so that simulated data need no recompiling)."""
    return patient_data.loglik(params, pdata, terms, trial_index, z, w, link, y, PytensorOps())


class PatientLogLikelihood(Op):
    """(theta, observations, *patient arrays) -> (log likelihood of the patient-cycles,
    its gradient wrt theta), by :func:`lenasim.model.patient_kernel.patient_kernel`."""

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
        theta, events, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14,
        c15, c16, c17,
    ):  # fmt: skip
        ll, grad = kernel(
            theta, events, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14,
            c15, c16, c17,
        )  # fmt: skip
        return np.array(ll), grad

    return loglik, f"lenasim-patient-{patient_kernel_key()}"


PATIENT_LOGLIK = PatientLogLikelihood()


def add_patient_potential(data: ModelData, terms, *, kernel: bool = True, **params) -> None:
    """Add the patient-cycles' log likelihood to the PyMC model being built (inside its
    ``with``): ``data`` a ModelData whose ``patients`` are set and whose ``trials`` hold
    theirs (:func:`lenasim.model.fit.load_data`); ``params``: the model's ``a``, ``beta``,
    ``sigma``, ``u`` (trial, event), ``sev_a``, ``sev_b``. The observations are ``pm.Data``
    (1-D, as nutpie's shared data must be), so simulated data need no recompiling.
    ``kernel``: the log likelihood and its gradient from the compiled kernel of
    :mod:`lenasim.model.patient_kernel` (the default); False: the PyTensor graph of
    :func:`patient_loglik` (its oracle)."""
    pdata = data.patients
    flat = pm.Data("patient_events", pdata.events.ravel())
    trial_index = [list(data.trials).index(t) for t in pdata.trials]
    if kernel:
        # theta in the order of lenasim.model.kernel.ThetaLayout
        theta = pt.concatenate([
            params["a"], pt.stack([params["sev_a"]]),
            *(params["beta"][ev] for ev in active().event_names), params["sev_b"],
            params["sigma"], params["u"].flatten(),
        ])  # fmt: skip
        consts = patient_arrays(pdata, terms, trial_index, data.z, data.w, data.link)
        assert len(consts) == PATIENT_N_CONSTS  # the numba wrapper above spells them out
        ll, _grad = PATIENT_LOGLIK(theta, flat, *consts)
    else:
        y = flat.reshape(pdata.events.shape)
        ll = patient_loglik(params, pdata, terms, trial_index, data.z, data.w, data.link, y)
    pm.Potential("patient_loglik", ll)


# ------------------------------------------------------------------- the samplers


def compile_model(model):
    """The model compiled for nutpie, with lenasim's disk cache of its compiled callbacks
    (:mod:`lenasim.model.compiled`); if this nutpie moved the internals that cache uses,
    compiled as nutpie does, only without the cache (slower), with a warning."""
    err = CACHE_UNAVAILABLE
    if err is None:
        try:
            return compile_nutpie(model)
        except (AttributeError, TypeError) as e:
            err = e
    warnings.warn(
        f"lenasim's compile cache does not work with nutpie {nutpie.__version__} "
        f"({err}); compiling without it (slower)",
        stacklevel=2,
    )
    return nutpie.compile_pymc_model(model)


def sample(model, compiled, data: dict, *, draws, tune, chains, seed, target_accept, progress):
    """NUTS on ``model`` with its ``pm.Data`` set to ``data``: nutpie on ``compiled`` (from
    :func:`compile_model`), or PyMC's own sampler when ``compiled`` is None. Returns the
    InferenceData."""
    if compiled is not None:
        return nutpie.sample(
            compiled.with_data(**data), draws=draws, tune=tune, chains=chains, seed=seed,
            target_accept=target_accept, progress_bar=progress,
        )  # fmt: skip
    with model:
        pm.set_data(data)
        return pm.sample(
            draws=draws, tune=tune, chains=chains, cores=min(chains, 2), random_seed=seed,
            target_accept=target_accept, progressbar=progress, compute_convergence_checks=False,
        )  # fmt: skip


def prior_draws(model, draws: int, seed: int, var_names):
    """``draws`` parameter sets from the model's own prior (``pm.sample_prior_predictive``):
    an InferenceData with a ``prior`` group (dims chain=1, draw)."""
    with model, warnings.catch_warnings():
        # The likelihood is a Potential: ignoring it is the point of a prior draw.
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        return pm.sample_prior_predictive(draws=draws, random_seed=seed, var_names=list(var_names))
