"""The engine with the cumulative-exposure term (issue 23 item 4): each patient carries the
exposure received in earlier cycles (lenasim_simulate_carry), and its per-cycle risk is
the likelihood's own per-cycle probability, within Monte Carlo error; with a hold rule the
patients who were held carry less, as an exact enumeration of their paths says."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import special

from builders import DEFAULT_TERMS, Arm, make_draws
from lenasim.core.errors import LenasimError
from lenasim.core.exposure import carry_exposure, cycle_daily_mg
from lenasim.core.hazard import cycle_probability, frailty_quadrature
from lenasim.core.regimen import Escalation, Regimen
from lenasim.model.likelihood import arm_features
from lenasim.simulation.engine import simulate
from lenasim.simulation.scenario import Population, Rules

TERMS = dict(DEFAULT_TERMS) | {"neutropenia": (*DEFAULT_TERMS["neutropenia"], "cum_exposure")}
COEF = {"log_dose": 0.5, "log_frac_on": 0.5, "log_cycle": -0.3, "cum_exposure": 1.2}
POP = Population(setting="relapsed")
# 5 -> 10 -> 15 mg a cycle, continuous: the carried exposure grows with dose and cycles
ESCALATING = Regimen(
    cycle_days=28, days_on=(1, 28), start_mg=5, target_mg=15, cycles=5,
    escalation=Escalation(step_mg=5, every=1, unit="cycles"),
)  # fmt: skip
SIGMA, S, N = 0.8, 200, 300


def _engine(regimen, rules, draws):
    ds = simulate(regimen.expand(), POP, rules, draws, n_patients=N, seed=11,
                  population_effect="typical")  # fmt: skip
    vals = ds["per_cycle"].sel(event="neutropenia").values  # (S, C)
    return vals.mean(0), vals.std(0, ddof=1) / np.sqrt(vals.shape[0])


def test_engine_matches_the_likelihoods_per_cycle_probability():
    """No dose rule: every patient takes the schedule as planned, so the engine's mean
    per-cycle neutropenia risk is the likelihood's E_z[p_c(z)] on the arm's features
    (arm_features: the nominal carried exposure), by its quadrature (101 nodes). Identical
    draws: each is an independent cohort, SE from their spread; 5 SE. Without the
    per-patient term (the feature 0) it would be far off after cycle 1."""
    draws = make_draws(S, terms=TERMS, coef=COEF, sigma=SIGMA, tau=None, spread=0.0)
    got, se = _engine(ESCALATING, Rules(), draws)
    f = arm_features(Arm(n=1, regimen=ESCALATING), ESCALATING.cycles)
    z, w = frailty_quadrature(101)
    eta = draws.take(slice(0, 1)).eta("neutropenia", f)[0]  # (C,)
    want = (w[:, None] * cycle_probability(eta[None, :], 0.0, SIGMA, z[:, None], 1.0)).sum(0)
    assert np.all(np.abs(got - want) <= 5 * se), (got, want, se)
    assert f["cum_exposure"][-1] > 1.5  # the term moves the risk a lot by the last cycle
    f0 = dict(f, cum_exposure=np.zeros_like(f["cum_exposure"]))
    eta0 = draws.take(slice(0, 1)).eta("neutropenia", f0)[0]
    without = (w[:, None] * cycle_probability(eta0[None, :], 0.0, SIGMA, z[:, None], 1.0)).sum(0)
    assert np.all(np.abs(got - without)[1:] > 20 * se[1:])


def test_held_patients_carry_less_exact_paths():
    """Hold on neutropenia, 10 mg continuously (one level, so a hold changes only the
    exposure carried): a patient held in a cycle takes its first 14 days, then 14 off.
    The exact mean per-cycle risk sums over every path of held / not held cycles
    (2^(C-1)) and integrates the frailty by quadrature; the engine agrees within 5 SE,
    and it is below the no-rule risk from cycle 2 on."""
    reg = Regimen(cycle_days=28, days_on=(1, 28), start_mg=10, cycles=4)
    draws = make_draws(S, terms=TERMS, coef=COEF, sigma=SIGMA, tau=None, spread=0.0)
    got, se = _engine(reg, Rules(on_neutropenia="hold"), draws)
    free, _ = _engine(reg, Rules(), draws)
    sch = reg.expand()
    f = arm_features(Arm(n=1, regimen=reg), reg.cycles)
    one = draws.take(slice(0, 1))
    beta = float(one.coefs["neutropenia"]["cum_exposure"][0])
    eta0 = one.eta("neutropenia", dict(f, cum_exposure=np.zeros(reg.cycles)))[0]
    full = cycle_daily_mg(sch, 0, 0)
    half = cycle_daily_mg(sch, 0, 0, taken="first_half")
    z, w = frailty_quadrature(101)

    def p_of(c, e):
        return special.expit(eta0[c] + beta * np.log1p(e / 28.0) + SIGMA * z)

    want = np.zeros(reg.cycles)
    for c in range(reg.cycles):
        total = np.zeros_like(z)
        for path in itertools.product((False, True), repeat=c):  # held after cycle j?
            prob, e = np.ones_like(z), 0.0
            for j, held in enumerate(path):
                pj = p_of(j, e)
                prob = prob * (pj if held else 1.0 - pj)
                e = float(carry_exposure(e, half if held else full))
            total += prob * p_of(c, e)
        want[c] = float((w * total).sum())
    assert np.all(np.abs(got - want) <= 5 * se), (got, want, se)
    assert np.all(got[1:] < free[1:] - 5 * se[1:])
    assert got[0] == pytest.approx(free[0], abs=1e-12)


def test_default_terms_take_the_plain_path_and_severity_is_refused():
    """A posterior without the term runs the engine as before (no carried exposure:
    identical numbers whatever the term's coefficient would be); the term on the flare
    severity is refused in words."""
    plain = make_draws(20, spread=0.0)
    a = simulate(ESCALATING.expand(), POP, Rules(), plain, n_patients=50, seed=3)
    zero = make_draws(20, terms=TERMS, coef={**COEF, "cum_exposure": 0.0}, spread=0.0)
    b = simulate(ESCALATING.expand(), POP, Rules(), zero, n_patients=50, seed=3)
    assert a["per_cycle"].sel(event="neutropenia").equals(b["per_cycle"].sel(event="neutropenia"))
    sev = dict(TERMS) | {"flare_severity": (*TERMS["flare_severity"], "cum_exposure")}
    with pytest.raises(LenasimError, match="events' hazards only"):
        simulate(ESCALATING.expand(), POP, Rules(), make_draws(5, terms=sev), n_patients=5, seed=1)
