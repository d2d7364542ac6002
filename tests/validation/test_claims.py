"""The claims table (validation.claims): probabilities and verdicts on synthetic posteriors
whose answers are known by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from builders import make_draws
from lenasim.validation.claims import CLAIMS, claims_table

BASE = Path(__file__).parents[2] / "configs" / "slow_escalation.yaml"


def _table(posterior, prior):
    return claims_table(posterior, prior, BASE, n_draws=40, patients=50).set_index("claim")


def test_dose_claims_follow_the_sign_of_the_dose_slope():
    """With every dose slope +0.8 (and no spread) each higher-dose schedule is riskier in
    every draw; with -0.8 never. A prior with slope 0 gives P near 0.5 or below, so the
    posterior's claims are carried by the data."""
    up = {"log_dose": 0.8, "rise": 0.3, "steroid": -1.0}
    down = {"log_dose": -0.8, "rise": 0.0, "steroid": 1.0}
    flat = {"log_dose": 0.0, "rise": 0.0, "first": 0.0, "steroid": 0.0}
    post_up = make_draws(40, coef=up, spread=0.0)
    t = _table(post_up, make_draws(40, coef=flat, spread=0.0))
    dose_claims = [c.text for c in CLAIMS if c.event in ("tls", "neutropenia")]
    assert all(t.loc[c, "p_posterior"] == 1.0 for c in dose_claims)
    assert all(t.loc[c, "verdict"] == "carried by the data" for c in dose_claims)
    steroid = [c.text for c in CLAIMS if c.steroid_b]
    assert t.loc[steroid[0], "p_posterior"] == 1.0
    assert t.loc[steroid[1], "verdict"] == "identical by the model's structure"
    t = _table(make_draws(40, coef=down, spread=0.0), post_up)
    assert all(t.loc[c, "p_posterior"] == 0.0 for c in dose_claims)
    assert all(t.loc[c, "verdict"] == "not supported" for c in dose_claims)
    assert t.loc[steroid[0], "p_posterior"] == 0.0


def test_prior_that_already_reaches_the_aim_carries_the_claim():
    post = make_draws(40, coef={"log_dose": 0.8, "rise": 0.3}, spread=0.0)
    t = _table(post, post)
    claim = CLAIMS[0].text
    assert t.loc[claim, "verdict"] == "carried by the prior"
    assert np.isclose(t.loc[claim, "p_prior"], t.loc[claim, "p_posterior"])


def test_flare_falls_over_cycles_with_a_negative_cycle_slope():
    falls = make_draws(40, coef={"log_cycle": -1.0}, spread=0.0)
    rises = make_draws(40, coef={"log_cycle": 1.0}, spread=0.0)
    claim = next(c.text for c in CLAIMS if c.cycle_b == 2)
    assert _table(falls, None).loc[claim, "p_posterior"] == 1.0
    assert _table(rises, None).loc[claim, "p_posterior"] == 0.0
