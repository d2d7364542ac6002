"""The posterior shipped in models/ must match the evidence and the spec it claims,
so that `run` on a fresh clone uses a fit of today's evidence (issue 3, item 8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lenasim.core.hazard import EVENTS
from lenasim.model.fit import gate
from lenasim.model.posterior import load_posterior, stale_reasons

REPO = Path(__file__).resolve().parents[2]
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
    "log_dose": np.log(2.5 / 10), "log_frac_on": np.log(21 / 28), "first": 1.0,
    "first_log_dose": np.log(2.5 / 10), "rise": 0.0, "log_cycle": 0.0, "restart": 0.0,
    "untreated": 1.0, "consolidation": 0.0, "elderly": 0.0,
    "anti_cd20": 0.0, "chemo": 0.0, "cdk_inhibitor": 0.0, "steroid": 0.0,
}  # fmt: skip
# Cycle 2 of a flat 10 mg pulse schedule (days 1-21 of 42, Aue's), every grade >= 3 event
# answered by `continue`, so that every patient starts cycle 2 at 10 mg: a restart after
# 21 days off (restart = 1), lenalidomide cycle 2, no first exposure, no rise; relapsed.
PULSE_CYCLE_2 = {
    "log_dose": 0.0, "log_frac_on": np.log(21 / 42), "first": 0.0, "first_log_dose": 0.0,
    "rise": 0.0, "log_cycle": np.log(2), "restart": 1.0, "untreated": 0.0,
    "consolidation": 0.0, "elderly": 0.0, "anti_cd20": 0.0, "chemo": 0.0,
    "cdk_inhibitor": 0.0, "steroid": 0.0,
}  # fmt: skip


def _exact(draws, k, features, tau_on):
    """E_x[sigmoid(eta + s x)] by 60-node Gauss-Hermite, written here."""
    from scipy.special import expit

    x, w = np.polynomial.hermite.hermgauss(60)
    eta = draws.intercept[k] + sum(draws.coefs[k][t] * features[t] for t in draws.terms[k])
    scale = np.hypot(draws.tau[k] if tau_on else 0.0, draws.sigma[k])
    return expit(eta[:, None] + scale[:, None] * np.sqrt(2) * x) @ w / np.sqrt(np.pi)


def test_engine_on_the_shipped_posterior_matches_the_exact_cycle_2_risk_after_a_restart():
    """Every term of the default spec in play beyond cycle 1 (``restart``, ``log_cycle``):
    the engine's cycle-2 mean on a pulse schedule against the quadrature (typical trial,
    5 SE as above). A restart term ignored by the engine is ~0.6 on the logit scale for
    flare here, far more than 5 SE."""
    from lenasim.core.regimen import Regimen
    from lenasim.simulation.engine import simulate
    from lenasim.simulation.scenario import Population, Rules
    from lenasim.simulation.streams import select_draws

    post = load_posterior(NC, SPEC, check=False)
    idx = select_draws(post.draws.n_draws, 1000, 7)
    draws = post.draws.take(idx)
    reg = Regimen(cycle_days=42, days_on=(1, 21), start_mg=10, cycles=2)
    rules = Rules(on_neutropenia="continue", on_flare_grade3plus="continue", on_tls="continue",
                  escalate_only_if_tolerated=False)  # fmt: skip
    pop = Population(patients=1000, setting="relapsed", elderly_share=0.0)
    ds = simulate(reg.expand(), pop, rules, draws, n_patients=1000, seed=7,
                  population_effect="typical", posterior_index=idx)  # fmt: skip
    for k in EVENTS:
        diff = ds["per_cycle"].sel(event=k, cycle=2).values - _exact(draws, k, PULSE_CYCLE_2, False)
        se = diff.std(ddof=1) / np.sqrt(diff.size)
        assert abs(diff.mean()) < 5 * se + 1e-12, (k, diff.mean(), se)


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

    from lenasim.simulation.engine import simulate_scenario
    from lenasim.simulation.scenario import load_scenario
    from lenasim.simulation.streams import select_draws

    sc = load_scenario(REPO / "configs" / "slow_escalation.yaml")
    reg, pop = sc.regimen, sc.population
    assert (reg.start_mg, tuple(reg.days_on), reg.cycle_days) == (2.5, (1, 21), 28)
    assert (reg.first_cycle is None, pop.setting, pop.elderly_share) == (True, "untreated", 0)
    assert (tuple(pop.partner_classes), pop.steroid_prophylaxis) == ((), False)
    sc = sc.model_copy(update={"population_effect": effect})
    post = load_posterior(NC, SPEC, check=False)
    idx = select_draws(post.draws.n_draws, 1000, sc.seed)
    draws = post.draws.take(idx)
    ds = simulate_scenario(sc, draws, posterior_index=idx)
    for k in EVENTS:
        exact = _exact(draws, k, CYCLE_1, effect == "new_trial")
        diff = ds["per_cycle"].sel(event=k, cycle=1).values - exact
        se = diff.std(ddof=1) / np.sqrt(diff.size)
        assert abs(diff.mean()) < 5 * se + 1e-12, (k, diff.mean(), se)
