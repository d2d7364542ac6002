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


@pytest.mark.parametrize("effect", ["typical", "new_trial"])
def test_engine_on_the_shipped_posterior_matches_the_exact_cycle_1_risk(effect):
    """The main job's scenario, on the real posterior: in cycle 1 every patient starts in
    the same state (elderly or not), so each draw's expected per-cycle probability is
    exact by quadrature: E[p] = sum over elderly of E_x[sigmoid(eta + s x)], x ~ N(0, 1),
    with s = sigma for a typical trial (no trial effect) and s = sqrt(tau^2 + sigma^2) for
    a new one (trial effect and frailty are independent normals on the logit scale).

    The engine's Rao-Blackwellised mean over 1,000 draws differs from it only by the
    Monte Carlo error of its frailties (and trial effects): the standard error is the SD
    over draws of (engine - exact) / sqrt(S); we allow 5 SE. For a typical trial the
    check is sharp (a frailty SD 10% off is 9-17 SE away); for a new trial the trial
    effects' noise makes it looser (ignoring the frailty is only ~4 SE away)."""
    from scipy.special import expit

    from lenasim.commands.run import select_draws
    from lenasim.core.hazard import gauss_hermite
    from lenasim.simulation.engine import _state_table, _Tables, simulate_scenario
    from lenasim.simulation.scenario import Rules, load_scenario

    sc = load_scenario(REPO / "configs" / "slow_escalation.yaml")
    sc = sc.model_copy(update={"population_effect": effect})
    post = load_posterior(NC, SPEC, check=False)
    idx = select_draws(post.draws.n_draws, 1000, sc.seed)
    draws = post.draws.take(idx)
    sched = sc.regimen.expand()
    tabs = _Tables(sched, [_state_table(sched, c, sc.population) for c in range(sched.n_cycles)],
                   Rules())  # fmt: skip
    r = tabs.hazard(draws)[:, :3, 0]  # exp(-eta) in cycle 1: (S, event, state)
    x, w = gauss_hermite(60)
    share = sc.population.elderly_share
    ds = simulate_scenario(sc, draws, posterior_index=idx)
    for k_i, k in enumerate(EVENTS):
        tau = draws.tau[k] if effect == "new_trial" else 0.0
        scale = np.hypot(tau, draws.sigma[k])[:, None]
        exact = sum(
            weight * (expit(-np.log(r[:, k_i, tabs.start[el]])[:, None] + scale * x) @ w)
            for el, weight in ((0, 1 - share), (1, share))
        )
        diff = ds["per_cycle"].sel(event=k, cycle=1).values - exact
        se = diff.std(ddof=1) / np.sqrt(diff.size)
        assert abs(diff.mean()) < 5 * se + 1e-12, (k, diff.mean(), se)
