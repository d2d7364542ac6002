"""The hazard and the likelihood: one definition in NumPy and PyTensor, exact units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from builders import Arm, make_draws
from lenasim.core.hazard import (
    EVENTS,
    NUMPY,
    SEVERITY,
    HazardDraws,
    linear_predictor,
)
from lenasim.core.regimen import Escalation, Regimen
from lenasim.model.likelihood import (
    arm_features,
    params_from_draws,
    prepare,
    row_probabilities,
)
from lenasim.model.spec import load_spec

SPEC = load_spec("models/default.yaml")
TERMS = SPEC.terms_map()


ARMS = {
    "slow": Arm(
        25,
        Regimen(
            cycle_days=28,
            days_on=(1, 21),
            start_mg=2.5,
            target_mg=10,
            escalation=Escalation(levels_mg=[2.5, 5, 10], every=1),
            cycles=6,
        ),
        setting="untreated",
        steroid_prophylaxis=True,
    ),
    "high": Arm(29, Regimen(cycle_days=28, days_on=(1, 21), start_mg=25, cycles=6)),
    "pulse": Arm(
        10,
        Regimen(cycle_days=42, days_on=(1, 21), start_mg=10, cycles=4),
        partner_classes=("anti_cd20",),
    ),
}


def _rows() -> pd.DataFrame:
    spec = [
        ("r1", "t1", ("slow",), "flare_any", "patients", None, 6, 20, 25),
        ("r2", "t1", ("slow",), "neutropenia_grade34", "cycles", None, 6, 30, 150),
        ("r3", "t2", ("high",), "tls", "patients", None, 6, 2, 29),
        ("r4", "t2", ("high",), "flare_grade3plus", "patients", None, 6, 5, 29),
        ("r5", "t3", ("pulse", "high"), "flare_any", "cycle_k", 2, 2, 9, 39),
        ("r6", "t3", ("pulse",), "neutropenia_grade34", "patients", None, 4, 5, 10),
    ]
    cols = [
        "row_id",
        "trial",
        "arm_ids",
        "outcome",
        "unit",
        "cycle_k",
        "cycles_at_risk",
        "events",
        "n",
    ]
    return pd.DataFrame(spec, columns=cols)


def random_draws(
    rng: np.random.Generator, s: int, scale: float = 1.0, frailty: bool = True
) -> HazardDraws:
    """S unrelated draws: intercepts around -1.5, coefficients around 0, random SDs."""
    tau = np.abs(scale * rng.normal(size=s))
    sigma = np.abs(scale * rng.normal(size=s)) if frailty else None
    return make_draws(s, seed=rng, terms=TERMS, intercept=-1.5, coef={}, tau=tau,
                      sigma=sigma, spread=scale)  # fmt: skip


@pytest.mark.slow  # compiles the PyTensor graph (issue 22.12)
def test_linear_predictor_numpy_and_pytensor_agree_to_1e10():
    """The same function evaluated numerically and symbolically gives the same number."""
    import pytensor
    import pytensor.tensor as pt

    from lenasim.model.graph import PYTENSOR

    rng = np.random.default_rng(1)
    terms = TERMS["neutropenia"]
    feats = {t: rng.normal(size=(7, 5)) for t in terms}
    coefs = {t: rng.normal() for t in terms}
    a = rng.normal()
    ref = NUMPY.sigmoid(linear_predictor(a, coefs, feats, terms))
    sym_a = pt.dscalar("a")
    sym_c = {t: pt.dscalar(t) for t in terms}
    out = PYTENSOR.sigmoid(linear_predictor(sym_a, sym_c, feats, terms))
    fn = pytensor.function([sym_a, *sym_c.values()], out)
    got = fn(a, *[coefs[t] for t in terms])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


@pytest.mark.slow  # compiles the PyTensor graph (issue 22.12)
def test_row_probabilities_numpy_and_pytensor_agree_to_1e10():
    """The whole likelihood mean (hazard, quadrature, units, mixing) in both backends."""
    import pytensor
    import pytensor.tensor as pt

    from lenasim.model.graph import PYTENSOR

    rng = np.random.default_rng(2)
    data = prepare(_rows(), ARMS, 9)
    draws = random_draws(rng, 1)
    u = rng.normal(size=(1, len(data.trials), len(EVENTS)))
    P_np, var_np = row_probabilities(params_from_draws(draws, len(data.trials), u), data, TERMS)

    syms, vals = [], []

    def sym(value):
        v = pt.dscalar() if np.ndim(value) == 0 else pt.dvector()
        syms.append(v)
        vals.append(value)
        return v

    params = {
        "intercept": {b: sym(draws.intercept[b][0]) for b in (*EVENTS, SEVERITY)},
        "beta": {b: {t: sym(draws.coefs[b][t][0]) for t in TERMS[b]} for b in (*EVENTS, SEVERITY)},
        "sigma": {e: sym(draws.sigma[e][0]) for e in EVENTS},
        "u": {e: sym(u[0, :, i]) for i, e in enumerate(EVENTS)},
    }
    P_pt, var_pt = row_probabilities(params, data, TERMS, PYTENSOR)
    fn = pytensor.function(syms, [P_pt, var_pt], on_unused_input="ignore")
    got_P, got_var = fn(*vals)
    np.testing.assert_allclose(got_P, P_np[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(got_var, var_np[0], rtol=0, atol=1e-10)


def test_patients_unit_is_one_minus_product_without_frailty_or_trial_effect():
    """sigma = 0 and u = 0: P(at least once) = 1 - prod_c (1 - p_c), exactly."""
    rng = np.random.default_rng(3)
    data = prepare(_rows(), ARMS, 9)
    draws = random_draws(rng, 4, frailty=False)
    P, _ = row_probabilities(params_from_draws(draws, len(data.trials)), data, TERMS)
    # r1: flare over 6 cycles of the slow arm, computed by hand from the hazard.
    f = arm_features(ARMS["slow"], 6)
    eta = draws.eta("flare", f)  # (S, 6)
    p = NUMPY.sigmoid(eta) * f["exposed"] * (1 - 1e-9)
    expected = 1 - np.prod(1 - p, axis=1)
    np.testing.assert_allclose(P[:, 0], expected, rtol=1e-12)
    # r4: grade >= 3 flare = flare x severity, at least once over 6 cycles.
    fh = arm_features(ARMS["high"], 6)
    ph = NUMPY.sigmoid(draws.eta("flare", fh)) * NUMPY.sigmoid(draws.eta(SEVERITY, fh))
    np.testing.assert_allclose(P[:, 3], 1 - np.prod(1 - ph * (1 - 1e-9), axis=1), rtol=1e-12)
    # r5: cycle 2 share pooled over two arms = n-weighted mean of the arms' cycle-2 risk.
    pp = NUMPY.sigmoid(draws.eta("flare", arm_features(ARMS["pulse"], 2)))[:, 1]
    pq = NUMPY.sigmoid(draws.eta("flare", arm_features(ARMS["high"], 2)))[:, 1]
    np.testing.assert_allclose(P[:, 4], (10 * pp + 29 * pq) / 39 * (1 - 1e-9), rtol=1e-12)


def test_frailty_lowers_at_least_once_and_quadrature_matches_monte_carlo():
    """With frailty, P(at least once) < 1 - prod(1 - E p) (Jensen) and quadrature equals
    a 400,000-patient Monte Carlo within 5 standard errors."""
    rng = np.random.default_rng(4)
    data = prepare(_rows(), ARMS, 20)
    draws = random_draws(rng, 1)
    draws.sigma["flare"][:] = 1.5
    P, _ = row_probabilities(params_from_draws(draws, len(data.trials)), data, TERMS)
    f = arm_features(ARMS["slow"], 6)
    eta = draws.eta("flare", f)[0]
    z = rng.normal(size=(400_000, 1))
    p = NUMPY.sigmoid(eta + 1.5 * z)
    mc = 1 - np.prod(1 - p, axis=1)
    se = mc.std() / np.sqrt(mc.size)
    assert abs(P[0, 0] - mc.mean()) < 5 * se
    assert P[0, 0] < 1 - np.prod(1 - p.mean(axis=0))


@pytest.mark.slow  # builds and compiles the PyMC model (issue 22.12)
def test_gradients_are_finite_at_the_initial_point():
    import pymc as pm

    from lenasim.model.graph import build_model

    data = prepare(_rows(), ARMS, 9)
    model = build_model(data, SPEC)
    ip = model.initial_point()
    grad = model.compile_dlogp()(ip)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)
    assert np.isfinite(model.compile_logp()(ip))
    assert isinstance(model, pm.Model)
