"""The cloglog_daily link (issue 23 item 3): a hazard per day on drug, the days on drug
as an exposure offset. The kernel against the NumPy formulas and finite differences, and
the clinical property it exists for: a longer cycle on drug carries more risk."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from builders import params_from_theta
from lenasim.core.hazard import EVENTS, REFERENCE_DAYS, cycle_probability, days_offset
from lenasim.core.regimen import Regimen
from lenasim.model.fit import load_data
from lenasim.model.kernel import ThetaLayout, kernel_arrays, loglik_kernel
from lenasim.model.likelihood import arm_features, row_probabilities
from lenasim.model.spec import load_spec

SPEC = load_spec("models/default.yaml").model_copy(update={"link": "cloglog_daily"})


@pytest.fixture(scope="module")
def data():
    return load_data(SPEC)


def _theta(lay, seed):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.5, lay.size)
    for ev in EVENTS:
        theta[lay.sigma(ev)] = rng.uniform(0.3, 2.5)
    return theta


@pytest.mark.slow  # compiles the PyTensor graph (issue 22.12)
def test_cloglog_kernel_rates_equal_the_numpy_formulas(data):
    """The kernel's rows' rates equal row_probabilities (NumPy, the simulator's and the
    graph's formulas) under the cloglog_daily link, and differ from the logit link's."""
    terms = SPEC.terms_map()
    lay = ThetaLayout(terms, len(data.trials))
    theta = _theta(lay, 11)
    _, _, p_row = loglik_kernel(theta, np.ones(len(data.rows)), data.events.astype(float),
                                *kernel_arrays(data, terms))  # fmt: skip
    params = params_from_theta(theta, lay, terms, len(data.trials))
    P, _ = row_probabilities(params, data, terms)
    np.testing.assert_allclose(p_row, np.clip(P[0], 1e-9, 1 - 1e-9), rtol=1e-10, atol=1e-14)
    logit = load_data(SPEC.model_copy(update={"link": "logit"}))
    P_logit, _ = row_probabilities(params, logit, terms)
    assert np.abs(P_logit[0] - P[0]).max() > 0.01


def _arm(cycle_days, days_on):
    reg = Regimen(cycle_days=cycle_days, days_on=days_on, start_mg=10, cycles=4)
    return SimpleNamespace(regimen=reg, setting="relapsed", partner_classes=(),
                           steroid_prophylaxis=False)  # fmt: skip


def _cycle_risk(arm, link, eta=-2.0):
    f = arm_features(arm, 4)
    off = days_offset(f["days_on"], link)
    return cycle_probability(eta + off, 0.0, 0.0, 0.0, f["exposed"], link=link)


def test_time_on_drug_counts_under_cloglog_daily():
    """10 mg continuously in 14-, 28- and 56-day cycles: under cloglog_daily the per-cycle
    risk follows the days on drug, 1 - (1 - p28)^(d/28) exactly (a constant hazard per
    day); under logit all three are the same (the limit issue 23 item 3 names). A pulse of
    days 1-21 of 42 carries less cycle-1 risk than 28 of 28."""
    p = {d: _cycle_risk(_arm(d, (1, d)), "cloglog_daily")[0] for d in (14, 28, 56)}
    assert p[14] < p[28] < p[56]
    p28 = p[28]
    for d in (14, 56):
        assert p[d] == pytest.approx(1 - (1 - p28) ** (d / REFERENCE_DAYS), rel=1e-12)
    logit = {d: _cycle_risk(_arm(d, (1, d)), "logit")[0] for d in (14, 28, 56)}
    assert logit[14] == logit[28] == logit[56]
    pulse = _cycle_risk(_arm(42, (1, 21)), "cloglog_daily")[0]
    assert pulse == pytest.approx(1 - (1 - p28) ** (21 / 28), rel=1e-12) and pulse < p28


def test_unknown_link_is_refused():
    with pytest.raises(ValueError, match="unknown link"):
        days_offset(np.ones(3), "probit")


def test_engine_refuses_a_cloglog_posterior_in_words():
    """The C engine computes the logit link only: a cloglog_daily posterior is refused
    (a sentence naming the link), not simulated with the wrong link."""
    import dataclasses

    from builders import make_draws
    from lenasim.core.errors import LenasimError
    from lenasim.simulation.engine import simulate
    from lenasim.simulation.scenario import Population, Rules

    draws = dataclasses.replace(make_draws(2), link="cloglog_daily")
    reg = Regimen(cycle_days=28, days_on=(1, 28), start_mg=10, cycles=2)
    with pytest.raises(LenasimError, match="link 'cloglog_daily'"):
        simulate(reg.expand(), Population(setting="relapsed"), Rules(), draws,
                 n_patients=10, seed=1)  # fmt: skip
