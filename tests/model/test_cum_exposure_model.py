"""The cumulative-exposure option for neutropenia (docs/model_options/neutropenia_cumulative.yaml,
issue 23 item 4) in the likelihood: the spec, the feature the fit sees, the compiled
kernel against its NumPy oracle, and the model without dose terms."""

from __future__ import annotations

import numpy as np
import pytest

from lenasim.core.exposure import nominal_features
from lenasim.evidence.table import load_arms
from lenasim.model.fit import load_data
from lenasim.model.kernel import ThetaLayout, kernel_arrays, loglik_kernel
from lenasim.model.likelihood import row_probabilities
from lenasim.model.spec import load_spec
from lenasim.validation.loto import no_dose_spec

DEFAULT = load_spec("models/default.yaml")
CUM = load_spec("docs/model_options/neutropenia_cumulative.yaml")


@pytest.fixture(scope="module")
def data():
    return load_data(CUM)


def test_the_option_is_one_positive_term_on_neutropenia_only():
    """The alternative spec is the default plus cum_exposure (positive, log-normal) on
    neutropenia; the default does not use it (default off)."""
    assert "cum_exposure" not in {t for ts in DEFAULT.terms_map().values() for t in ts}
    assert "cum_exposure" in CUM.positive_terms("neutropenia")
    for block, terms in CUM.terms_map().items():
        extra = set(terms) ^ set(DEFAULT.terms_map()[block])
        assert extra == ({"cum_exposure"} if block == "neutropenia" else set()), block
    prior = CUM.prior("neutropenia", "cum_exposure")
    assert (prior.dist, prior.mu, prior.sigma) == (
        "lognormal",
        pytest.approx(np.log(0.5), abs=1e-4),
        1.0,
    )
    assert "cum_exposure" not in no_dose_spec(CUM).block_terms("neutropenia")


def test_the_fit_sees_each_arm_s_planned_carried_exposure(data):
    """Every component's cum_exposure is its arm's nominal one (the protocol as planned),
    and some arms carry exposure (continuous dosing) while others start nearly afresh."""
    arms = load_arms()
    seen = 0
    for i, r in enumerate(data.rows.itertuples()):
        for a in r.arm_ids:
            c = int(np.flatnonzero(data.mixing[i])[list(r.arm_ids).index(a)])
            want = nominal_features(arms[a].regimen.expand(cycles=data.mask.shape[1]))
            np.testing.assert_allclose(data.features["cum_exposure"][c], want["cum_exposure"])
            seen += 1
    assert seen == data.mask.shape[0]
    assert np.nanmax(data.features["cum_exposure"]) > 1.0
    assert np.isfinite(data.features["cum_exposure"]).all()


def _theta(lay: ThetaLayout, rng) -> np.ndarray:
    theta = rng.normal(0.0, 0.4, lay.size)
    for ev in lay.events:
        theta[lay.sigma(ev)] = rng.uniform(0.5, 2.0)
    return theta


def test_kernel_equals_the_numpy_oracle_and_nests_the_default(data):
    """The kernel's rows' rates equal :func:`row_probabilities` (NumPy) with the term; with
    its coefficient 0 the log likelihood is the default model's; a positive coefficient
    raises the rates of neutropenia rows only, and of the rows whose arms carry more."""
    terms = CUM.terms_map()
    lay = ThetaLayout(terms, len(data.trials))
    theta = _theta(lay, np.random.default_rng(5))
    w, y = np.ones(len(data.rows)), data.events.astype(float)
    consts = kernel_arrays(data, terms)
    ll, _, p_row = loglik_kernel(theta, w, y, *consts)
    params = {
        "intercept": {b: np.array([theta[lay.intercept(b)]]) for b in lay.blocks},
        "beta": {b: {t: np.array([theta[lay.beta(b, t)]]) for t in terms[b]} for b in lay.blocks},
        "sigma": {e: np.array([theta[lay.sigma(e)]]) for e in lay.events},
        "u": {
            e: np.array([[theta[lay.u(t, e)] for t in range(len(data.trials))]]) for e in lay.events
        },
    }
    oracle, _ = row_probabilities(params, data, terms)
    np.testing.assert_allclose(p_row, np.clip(oracle[0], 1e-9, 1 - 1e-9), rtol=1e-9, atol=1e-12)

    d_terms = DEFAULT.terms_map()
    d_lay = ThetaLayout(d_terms, len(data.trials))
    d_data = load_data(DEFAULT)
    d_theta = np.empty(d_lay.size)
    for b in d_lay.blocks:
        d_theta[d_lay.intercept(b)] = theta[lay.intercept(b)]
        for t in d_terms[b]:
            d_theta[d_lay.beta(b, t)] = theta[lay.beta(b, t)]
    for e in d_lay.events:
        d_theta[d_lay.sigma(e)] = theta[lay.sigma(e)]
        for t in range(len(data.trials)):
            d_theta[d_lay.u(t, e)] = theta[lay.u(t, e)]
    d_consts = kernel_arrays(d_data, d_terms)
    zero = theta.copy()
    zero[lay.beta("neutropenia", "cum_exposure")] = 0.0
    ll0, _, p0 = loglik_kernel(zero, w, y, *consts)
    d_ll, _, d_p = loglik_kernel(d_theta, w, y, *d_consts)
    assert ll0 == pytest.approx(d_ll, rel=1e-12)
    np.testing.assert_allclose(p0, d_p, rtol=1e-12)

    up = zero.copy()
    up[lay.beta("neutropenia", "cum_exposure")] = 1.0
    _, _, p1 = loglik_kernel(up, w, y, *consts)
    neutro = data.rows["outcome"].str.contains("neutropenia").to_numpy()
    assert np.all(p1[~neutro] == p0[~neutro])
    assert np.all(p1[neutro] >= p0[neutro]) and np.any(p1[neutro] > p0[neutro] * 1.05)
