"""Posterior plots are redrawn from the saved posterior without refitting, and the
numbers behind the dose-response and prior-predictive figures are the hazard's."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from builders import make_draws
from lenasim.cli import main
from lenasim.core.hazard import EVENTS, SEVERITY, HazardDraws
from lenasim.model.plots import cycle1_probability, prior_predictive_table

REPO = Path(__file__).resolve().parents[2]


def _draws(sigma: float, tau: float) -> HazardDraws:
    """Three identical draws: intercepts -1, log_dose and first coefficients 0.5."""
    terms = {ev: ("log_dose", "first") for ev in EVENTS} | {SEVERITY: ("log_dose",)}
    return make_draws(3, terms=terms, intercept=-1.0, coef={"log_dose": 0.5, "first": 0.5},
                      tau=tau, sigma=sigma, spread=0.0)  # fmt: skip


def test_cycle1_probability_is_the_hazard_without_random_effects():
    doses = np.array([2.5, 10.0, 25.0])
    out = cycle1_probability(_draws(0.0, 0.0), doses)
    expected = expit(-1.0 + 0.5 * np.log(doses / 10) + 0.5)
    np.testing.assert_allclose(out["tls"][0], expected, rtol=1e-12)
    sev = expit(-1.0 + 0.5 * np.log(doses / 10))
    np.testing.assert_allclose(out["flare_grade3plus"][0], expected * sev, rtol=1e-12)


def test_new_trial_integrates_trial_effect_and_frailty_together():
    """u ~ N(0, 0.8^2) and z ~ N(0, 0.6^2) add to N(0, 1): compare with Monte Carlo
    on 10^6 normals (standard error < 5e-4; tolerance 3e-3 is six of them)."""
    out = cycle1_probability(_draws(0.6, 0.8), [10.0])
    eta = -1.0 + 0.5
    z = np.random.default_rng(0).standard_normal(1_000_000)
    assert abs(out["neutropenia"][0, 0] - expit(eta + z).mean()) < 3e-3
    typical = cycle1_probability(_draws(0.6, 0.8), [10.0], new_trial=False)
    assert abs(typical["neutropenia"][0, 0] - expit(eta + 0.6 * z).mean()) < 3e-3


def test_prior_predictive_table_is_the_new_trial_cycle_1_risk_across_draws():
    """Each row: the median and 90% range over draws of the cycle-1 probability at a dose
    for a new trial, E[expit(eta + s x)], x ~ N(0, 1), s = sqrt(tau^2 + sigma^2); here
    by a 60-node Gauss-Hermite sum written from that formula. Draws differ (spread 0.5),
    so a wrong quantile, dose, outcome or a typical trial (s = sigma) shows."""
    terms = {ev: ("log_dose", "first") for ev in EVENTS} | {SEVERITY: ("log_dose",)}
    d = make_draws(200, seed=4, terms=terms, intercept=-1.0, coef={"log_dose": 0.5, "first": 0.5},
                   tau=0.8, sigma=0.6, spread=0.5)  # fmt: skip
    doses = (2.5, 10.0, 25.0)
    tab = prior_predictive_table(d, doses).set_index(["outcome", "dose_mg"])
    x, w = np.polynomial.hermite.hermgauss(60)
    s = np.hypot(0.8, 0.6)
    assert len(tab) == 4 * len(doses)
    for dose in doses:
        x_dose = np.log(dose / 10)
        p = {}
        for ev in EVENTS:
            eta = d.intercept[ev] + d.coefs[ev]["log_dose"] * x_dose + d.coefs[ev]["first"]
            p[ev] = expit(eta[:, None] + s * np.sqrt(2) * x) @ w / np.sqrt(np.pi)
        sev = expit(d.intercept[SEVERITY] + d.coefs[SEVERITY]["log_dose"] * x_dose)
        p["flare_grade3plus"] = p["flare"] * sev
        for outcome, v in p.items():
            row = tab.loc[(outcome, dose)]
            np.testing.assert_allclose(
                row[["q05", "median", "q95"]].to_numpy(float),
                np.quantile(v, [0.05, 0.5, 0.95]),
                rtol=1e-6,
                err_msg=f"{outcome} at {dose} mg",
            )


@pytest.mark.slow  # draws every plot of the shipped 4,000-draw posterior
def test_plots_command_redraws_from_the_saved_posterior(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    for name in ("default.yaml", "default.nc"):
        shutil.copy(REPO / "models" / name, tmp_path / "models" / name)
    monkeypatch.chdir(tmp_path)
    assert main(["plots", "models/default.yaml"]) == 0  # the copy (default: the shipped one)
    written = {p.name for p in (tmp_path / "models" / "default").iterdir()}
    assert {
        "rank.png",
        "evidence_forest.png",
        "dose_response.png",
        "flare_by_cycle_aue.png",
        "prior_posterior.png",
        "prior_predictive.png",
        "prior_predictive.csv",
        "row_predictions.json",  # lenasim.model.row_predictions, keyed to this posterior
    } <= written


def test_new_trial_band_draws_a_trial_effect():
    """Identical posterior draws: the typical trial's band has no width, and neither has
    the mean over new trials; a new trial's band has the between-trial spread. Its 5% and
    95% points are the risk at u = tau * (-1.645, +1.645) (the risk rises with u), with the
    frailty integrated (Gauss-Hermite, 40 nodes, here); 4000 simulated trials put the
    empirical quantiles within 0.015 of them."""
    from scipy.stats import norm

    tau, sigma = 1.0, 0.5
    d = _draws(sigma, tau).take(np.zeros(1000, dtype=int))
    doses = [10.0]
    typ = cycle1_probability(d, doses, new_trial=False)["tls"][:, 0]
    mean_new = cycle1_probability(d, doses)["tls"][:, 0]
    new = cycle1_probability(d, doses, rng=np.random.default_rng(1))["tls"][:, 0]
    assert np.ptp(typ) < 1e-12 and np.ptp(mean_new) < 1e-12 and new.size == 4000
    z, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    eta = -1.0 + 0.5  # log(10/10) = 0, first exposure
    for q in (0.05, 0.95):
        exact = float(w @ expit(eta + tau * norm.ppf(q) + sigma * z))
        assert abs(np.quantile(new, q) - exact) < 0.015, q
    assert np.quantile(new, 0.95) - np.quantile(new, 0.05) > 0.3
