"""The patient frailty in the in-trial working likelihood (lenasim.design.frailty): the
conditional linear predictors reproduce the draws' marginal risks, the compiled patient
likelihood is the frailty integral (against a dense quadrature), a patient seen for one
cycle weighs the draws as independent cycles do, and events concentrated in one patient
say less about the draw than the same events spread over patients; the prior carries the
draws' frailty SDs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import norm

from builders import make_draws
from lenasim.core.vocabulary import OUTPUT_EVENTS
from lenasim.design.config import load_design
from lenasim.design.frailty import conditional_eta, frailty_loglik, node_table, quadrature
from lenasim.design.prior import prior_model
from lenasim.design.trial import Data
from lenasim.design.update import DrawModel
from lenasim.simulation.scenario import Population


def _exact_loglik(eta: np.ndarray, sigma: float, e: np.ndarray, x: np.ndarray) -> float:
    """A cycle with an event counts p, one followed for the share x without one 1 - x p
    (the model's likelihood, lenasim.model.patient_kernel), integrated over z ~ N(0, 1)
    on 4,001 points of [-12, 12] (the trapezoid rule converges geometrically for such
    smooth integrands: exact here to ~1e-12)."""
    z = np.linspace(-12, 12, 4001)
    p = expit(eta[:, None] + sigma * z)
    f = np.prod(np.where(e[:, None] > 0, p, 1.0) * (1.0 - x[:, None] * p), axis=0) * norm.pdf(z)
    return float(np.log(f.sum() * (z[1] - z[0])))


def test_the_conditional_predictor_reproduces_the_marginal_risk():
    rng = np.random.default_rng(1)
    p = 10 ** rng.uniform(-6, -0.1, 500)
    sigma = rng.uniform(0.0, 3.0, 500)
    z, w = quadrature()
    eta = conditional_eta(p, sigma, z, w)
    marginal = expit(eta[:, None] + sigma[:, None] * z) @ w
    np.testing.assert_allclose(marginal, p, rtol=1e-8)
    # and it is the conditional one: below logit(p) for p < 1/2 once sigma > 0
    low = (sigma > 0.1) & (p < 0.45)
    assert (eta[low] < np.log(p / (1 - p))[low]).all()


def test_the_patient_likelihood_is_the_frailty_integral():
    """Each draw's log likelihood of 4 patients of 1-8 cycles against a dense quadrature
    (the 21-node rule's error is ~1e-3 nats at most for these: frailty.NODES)."""
    rng = np.random.default_rng(2)
    s, c = 5, 8
    eta = rng.normal(-2.5, 0.8, (s, 1, 1, c))
    sigma = rng.uniform(0.2, 1.8, (s, 1))
    z, w = quadrature()
    prob = node_table(eta, sigma, z)
    n_cycles = np.array([1, 3, 8, 5])
    events = np.zeros((4, 1, c))
    exposure = np.zeros((4, 1, c))
    for i, n in enumerate(n_cycles):
        y = (rng.random(n) < 0.3).astype(float)
        events[i, 0, :n] = y
        exposure[i, 0, :n] = 1 - y
    exposure[2, 0, 7] *= 0.4  # a cycle followed in part
    out = np.zeros(s)
    frailty_loglik(prob, w, np.zeros(4, np.int64), events, exposure, out)
    want = [sum(_exact_loglik(eta[d, 0, 0], sigma[d, 0], events[i, 0], exposure[i, 0])
                for i in range(4)) for d in range(s)]  # fmt: skip
    np.testing.assert_allclose(out, want, atol=2e-3)


def _model(sigma: float, n: int = 400, seed: int = 3) -> DrawModel:
    """One candidate, one event, 4 cycles; draws of the marginal per-cycle risk."""
    rng = np.random.default_rng(seed)
    risk = rng.beta(2, 12, n)
    p = np.repeat(risk[:, None], 4, axis=1)[:, None, None, :]
    return DrawModel(p, np.array([0]), risk[:, None, None], np.array([0.2]), 0.25,
                     np.full(n, 1.0 / n), sigma=np.full((n, 1), sigma))  # fmt: skip


def _data(events_by_patient: list[list[float]]) -> Data:
    n = len(events_by_patient)
    pe = np.array(events_by_patient, float)[:, None, :]
    px = 1.0 - pe
    nt = np.array([n])
    return Data(pe.sum(0)[None], px.sum(0)[None], nt, nt, nt, np.zeros(n, np.int64), pe, px)


def test_one_cycle_a_patient_is_the_independent_likelihood():
    model = _model(1.5)
    pe = np.zeros((3, 1, 4))
    px = np.zeros((3, 1, 4))
    pe[0, 0, 0], px[1:, 0, 0] = 1, 1  # three patients, their first cycle only
    nt = np.array([3])
    with_patients = Data(pe.sum(0)[None], px.sum(0)[None], nt, nt, nt, np.zeros(3, np.int64),
                         pe, px)  # fmt: skip
    without = Data(with_patients.events, with_patients.exposure, nt, nt, nt)
    w1, _ = model.weights(with_patients)
    w0, _ = model.weights(without)
    np.testing.assert_allclose(w1, w0, rtol=1e-5)  # float32 node tables
    # and a patient followed longer does not: the frailty acts
    pe[0, 0, 1], px[0, 0, 2] = 1, 1
    longer = Data(pe.sum(0)[None], px.sum(0)[None], nt, nt, nt, np.zeros(3, np.int64), pe, px)
    w2, _ = model.weights(longer)
    w3, _ = model.weights(Data(longer.events, longer.exposure, nt, nt, nt))
    assert np.abs(w2 / w3 - 1).max() > 0.01


def test_events_in_one_patient_say_less_than_events_spread_over_patients():
    """Two events in one patient's 4 cycles against one in each of two patients (the same
    counts): without frailty the two are the same data; with it, the concentrated events
    are partly that patient's frailty, so the posterior mean risk is lower."""
    one = _data([[1, 1, 0, 0], [0, 0, 0, 0]])
    two = _data([[1, 0, 0, 0], [0, 1, 0, 0]])
    for sigma, same in ((0.0, True), (1.5, False)):
        m = _model(sigma)
        r1 = m.mean_risk(m.weights(one)[0])[0, 0]
        r2 = m.mean_risk(m.weights(two)[0])[0, 0]
        if same:
            assert r1 == pytest.approx(r2, rel=1e-12)
        else:
            assert r1 < r2 - 0.002, (r1, r2)
    # no sigma at all is the independent likelihood too
    m0 = DrawModel(*(getattr(_model(1.5), f) for f in ("p", "events", "limit_risk", "limit_max",
                                                       "max_probability", "prior")))  # fmt: skip
    np.testing.assert_array_equal(m0.weights(one)[0], _model(0.0).weights(one)[0])


def test_the_prior_carries_the_draws_frailty_sds():
    """prior_model gives each data event its hazard's frailty SD (the grade part none),
    and ``frailty=False`` none at all (the independent-cycles likelihood)."""
    cfg = load_design(Path(__file__).resolve().parents[2] / "configs" / "design_untreated.yaml")
    sigma = np.linspace(0.2, 1.0, 6)
    draws = make_draws(6, sigma=sigma)
    sch = [c.regimen.expand() for c in cfg.candidates[:2]]
    pop = Population(setting="untreated", patients=20)
    idx = np.arange(6)
    m = prior_model(sch, pop, cfg.rules, draws, idx, cfg.limits, seed=1, robust_weight=0.5)
    names = [OUTPUT_EVENTS[i] for i in m.events]
    assert m.sigma.shape == (12, len(names))
    for k, name in enumerate(names):
        want = 0.0 if name == "flare_grade3plus" else np.tile(sigma, 2)
        np.testing.assert_array_equal(m.sigma[:, k], want)
    assert m._frail.size == len(names) - 1
    off = prior_model(sch, pop, cfg.rules, draws, idx, cfg.limits, seed=1, frailty=False)
    assert off.sigma is None and off._frail.size == 0
