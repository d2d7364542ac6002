"""The posterior shipped in models/ must match the evidence and the spec it claims,
so that `run` on a fresh clone uses a fit of today's evidence (issue 3, item 8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lenasim.core.hazard import EVENTS
from lenasim.model.fit import gate
from lenasim.model.posterior import load_posterior, stale_reasons

REPO = Path(__file__).resolve().parents[1]
NC, SPEC = REPO / "models" / "default.nc", REPO / "models" / "default.yaml"


def test_shipped_posterior_is_not_stale():
    """Fails when evidence.csv, arms.yaml or models/default.yaml changed after the fit:
    refit with `python -m lenasim fit` and commit models/default.nc."""
    post = load_posterior(NC, SPEC, check=False)
    assert stale_reasons(post.attrs, SPEC) == []


def test_shipped_posterior_passed_the_diagnostics_gate():
    post = load_posterior(NC, SPEC)
    assert post.converged
    assert gate(post.diagnostics) == []
    assert post.draws.n_draws >= 4000
    for ev in EVENTS:
        assert np.all(post.draws.tau[ev] >= 0) and np.all(post.draws.sigma[ev] >= 0)


# Cycle 1 of configs/slow_escalation.yaml, written from the config and the definitions of
# the features (lenasim.core.hazard): 2.5 mg on days 1-21 of a 28-day cycle, the first
# exposure (no rise over the first dose, lenalidomide cycle 1), previously untreated,
# no partner drug, no steroid prophylaxis, nobody elderly.
CYCLE_1 = {
    "log_dose": np.log(2.5 / 10), "log_frac_on": np.log(21 / 28), "first": 1.0, "rise": 0.0,
    "log_cycle": 0.0, "untreated": 1.0, "consolidation": 0.0, "elderly": 0.0,
    "anti_cd20": 0.0, "chemo": 0.0, "cdk_inhibitor": 0.0, "steroid": 0.0,
}  # fmt: skip


@pytest.mark.parametrize("effect", ["typical", "new_trial"])
def test_engine_on_the_shipped_posterior_matches_the_exact_cycle_1_risk(effect):
    """The main job's scenario, on the real posterior: in cycle 1 every patient is in the
    same state, so each draw's expected per-cycle probability is exact by quadrature:
    E[p] = E_x[sigmoid(eta + s x)], x ~ N(0, 1), with eta = a + sum_t beta_t x_t over
    the features of :data:`CYCLE_1`, s = sigma for a typical trial (no trial effect)
    and s = sqrt(tau^2 + sigma^2) for a new one (trial effect and frailty are
    independent normals on the logit scale); 60-node Gauss-Hermite, written here.

    The engine's Rao-Blackwellised mean over 1,000 draws differs from it only by the
    Monte Carlo error of its frailties (and trial effects): the standard error is the SD
    over draws of (engine - exact) / sqrt(S); we allow 5 SE. For a typical trial the
    check is sharp (a frailty SD 10% off is 9-17 SE away); for a new trial the trial
    effects' noise makes it looser (ignoring the frailty is only ~4 SE away)."""
    from scipy.special import expit

    from lenasim.simulation.engine import simulate_scenario
    from lenasim.simulation.scenario import load_scenario
    from lenasim.simulation.streams import select_draws

    sc = load_scenario(REPO / "configs" / "slow_escalation.yaml")
    reg, pop = sc.regimen, sc.population
    assert (reg.start_mg, tuple(reg.days_on), reg.cycle_days) == (2.5, (1, 21), 28)
    assert (reg.first_cycle is None, pop.setting, pop.elderly_share) == (True, "untreated", 0)
    assert (pop.partner_classes, pop.steroid_prophylaxis) == ([], False)
    sc = sc.model_copy(update={"population_effect": effect})
    post = load_posterior(NC, SPEC, check=False)
    idx = select_draws(post.draws.n_draws, 1000, sc.seed)
    draws = post.draws.take(idx)
    ds = simulate_scenario(sc, draws, posterior_index=idx)
    x, w = np.polynomial.hermite.hermgauss(60)
    for k in EVENTS:
        eta = draws.intercept[k] + sum(draws.coefs[k][t] * CYCLE_1[t] for t in draws.terms[k])
        tau = draws.tau[k] if effect == "new_trial" else 0.0
        scale = np.hypot(tau, draws.sigma[k])
        exact = expit(eta[:, None] + scale[:, None] * np.sqrt(2) * x) @ w / np.sqrt(np.pi)
        diff = ds["per_cycle"].sel(event=k, cycle=1).values - exact
        se = diff.std(ddof=1) / np.sqrt(diff.size)
        assert abs(diff.mean()) < 5 * se + 1e-12, (k, diff.mean(), se)
