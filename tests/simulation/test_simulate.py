"""The Monte Carlo engine: agreement with the analytic probabilities, Rao-Blackwell vs
sampled, reproducibility, common random numbers, chunking, and each dose rule.

Monte Carlo tolerances: a sampled share over n independent Bernoulli(p) patients has
standard error sqrt(p (1 - p) / n); tests allow 5 standard errors, so a correct engine
fails a given comparison with probability < 1e-6 (and the seeds are fixed anyway), while
a wrong probability (e.g. a shifted cycle or a missing term) moves far more than that.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import special

from builders import PLAUSIBLE_COEFS, make_draws
from lenasim.core.hazard import EVENTS, SEVERITY, gauss_hermite
from lenasim.core.regimen import Escalation, Regimen, nominal_features
from lenasim.core.vocabulary import covariate_features
from lenasim.simulation.engine import OUTPUT_EVENTS, simulate
from lenasim.simulation.scenario import Population, Rules

# Chen 2011 amended (seed 003): 2.5 -> 5 -> 10 mg, days 1-21 of 28.
SLOW = Regimen(
    cycle_days=28, days_on=(1, 21), start_mg=2.5, target_mg=10, cycles=8,
    escalation=Escalation(levels_mg=[2.5, 5, 10], every=1, unit="cycles"),
)  # fmt: skip
# 10 -> 15 -> 20 mg, one step per cycle, days 1-21 of 28.
STEPS = Regimen(
    cycle_days=28, days_on=(1, 21), start_mg=10, target_mg=20, cycles=5,
    escalation=Escalation(step_mg=5, every=1, unit="cycles"),
)  # fmt: skip
POP = Population(setting="untreated", partners=["rituximab"], steroid_prophylaxis=True)
NO_RULES = Rules()


def analytic(regimen: Regimen, pop: Population, draws) -> dict[str, np.ndarray]:
    """Per-cycle p of the nominal path (no frailty, no trial effect): event -> (S, C)."""
    f = dict(nominal_features(regimen.expand()))
    f.update(covariate_features(pop.setting, pop.partner_classes, pop.steroid_prophylaxis,
                                elderly=0.0, first=f["first"]))  # fmt: skip
    p = {k: special.expit(draws.eta(k, f)) * f["exposed"] for k in EVENTS}
    p["flare_grade3plus"] = p["flare"] * special.expit(draws.eta(SEVERITY, f))
    return p


def run(regimen=SLOW, pop=POP, rules=NO_RULES, draws=None, n=500, seed=5, **kw) -> xr.Dataset:
    draws = make_draws(20) if draws is None else draws
    return simulate(regimen.expand(), pop, rules, draws, n_patients=n, seed=seed, **kw)


def test_schema():
    ds = run(n=50)
    assert dict(ds.sizes) == {"draw": 20, "event": 4, "cycle": 8}
    assert list(ds["event"].values) == list(OUTPUT_EVENTS)
    assert list(ds["cycle"].values) == list(range(1, 9))
    for v in ("per_cycle", "per_cycle_sampled", "cumulative"):
        assert ds[v].dims == ("draw", "event", "cycle")
    for v in ("dose_mean_mg", "dose_intensity", "share_on", "share_at_target", "share_held",
              "share_reduced", "share_stopped"):  # fmt: skip
        assert ds[v].dims == ("draw", "cycle")
    assert ds["planned_intensity"].dims == ("cycle",)
    np.testing.assert_allclose(ds["planned_intensity"], [2.5 * 21 / 28, 5 * 21 / 28] + [7.5] * 6)
    assert ds["posterior_index"].dims == ("draw",)
    assert set(ds.attrs) >= {"scenario", "seed", "n_patients", "population_effect"}


def test_rao_blackwell_equals_analytic_without_frailty():
    """No frailty, no trial effect, no rules: every patient has the nominal p, so the
    Rao-Blackwellised per-cycle probability is sigmoid(eta) to rounding."""
    d = make_draws(20, tau=None, sigma=None)
    ds = run(draws=d, n=100)
    p = analytic(SLOW, POP, d)
    for e_i, k in enumerate(OUTPUT_EVENTS):
        np.testing.assert_allclose(ds["per_cycle"].values[:, e_i], p[k], rtol=1e-12, atol=1e-15)


def test_sampled_matches_analytic_without_frailty():
    """Sampled shares vs sigmoid(eta): over S draws x N patients per cycle, the mean share
    has SE sqrt(mean_s p_s (1 - p_s) / (S N)); allow 5 SE (plus 1e-12)."""
    s, n = 20, 2000
    d = make_draws(s, tau=None, sigma=None)
    ds = run(draws=d, n=n)
    p = analytic(SLOW, POP, d)
    for e_i, k in enumerate(OUTPUT_EVENTS):
        got = ds["per_cycle_sampled"].values[:, e_i].mean(axis=0)
        want = p[k].mean(axis=0)
        se = np.sqrt((p[k] * (1 - p[k])).mean(axis=0) / (s * n))
        assert np.all(np.abs(got - want) <= 5 * se + 1e-12), (k, got, want, se)


def test_cumulative_matches_analytic_without_frailty():
    """P(at least one event by cycle c) = 1 - prod(1 - p): the RB estimate is a mean over
    N patients of bounded terms, SE <= sqrt(F (1 - F) / (S N)); allow 5 SE."""
    s, n = 20, 2000
    d = make_draws(s, tau=None, sigma=None)
    ds = run(draws=d, n=n)
    p = analytic(SLOW, POP, d)
    for e_i, k in enumerate(OUTPUT_EVENTS):
        want_s = 1 - np.cumprod(1 - p[k], axis=1)
        got = ds["cumulative"].values[:, e_i].mean(axis=0)
        want = want_s.mean(axis=0)
        se = np.sqrt((want_s * (1 - want_s)).mean(axis=0) / (s * n))
        assert np.all(np.abs(got - want) <= 5 * se + 1e-12), (k, got, want)


def test_cumulative_is_exact_without_frailty_and_never_above_one():
    """Cumulative risk is a probability in every draw, at any cohort size. Without
    frailty, trial effect or rules every patient has p = 1/2 in every cycle, so
    P(an event by cycle c) = 1 - 2^-c exactly; with 5 patients the cohort runs out of
    event-free patients within a few cycles (the case that gave 102-175%)."""
    flat = {"flare": (), "tls": (), "neutropenia": (), SEVERITY: ()}
    reg = Regimen(cycle_days=28, days_on=(1, 21), start_mg=10, cycles=12)
    half = make_draws(50, tau=None, sigma=None, spread=0.0, terms=flat,
                      intercept=dict.fromkeys(["flare", "tls", "neutropenia", SEVERITY], 0.0))  # fmt: skip
    ds = run(regimen=reg, draws=half, n=5, pop=Population(setting="relapsed"))
    want = 1 - 0.5 ** np.arange(1, 13)
    for k in ("flare", "tls", "neutropenia"):
        np.testing.assert_allclose(ds["cumulative"].sel(event=k).values, want[None].repeat(50, 0),
                                   rtol=1e-12)  # fmt: skip
    # frailty, trial effects and rules, tiny cohorts, common events: still in [0, 1], rising
    d = make_draws(200, tau=1.0, sigma=2.0, intercept={"flare": 1.0, "neutropenia": 0.5})
    for n in (1, 3, 7):
        cum = run(regimen=reg, draws=d, n=n, rules=Rules(on_neutropenia="hold"))["cumulative"]
        assert float(cum.max()) <= 1.0 and float(cum.min()) >= 0.0, n
        assert (cum.diff("cycle") >= 0).all(), n


def test_cumulative_matches_quadrature_with_frailty():
    """Without rules the cumulative risk is 1 - E_z[prod_c (1 - p_c(z))] (frailty
    z ~ N(0, 1), typical trial), by Gauss-Hermite. The engine's product limit is
    consistent; with identical draws (spread 0) each draw is an independent cohort, so
    the mean over S draws has SE = sd_s / sqrt(S); allow 5 SE."""
    s, sigma = 200, 1.2
    d = make_draws(s, tau=0.5, sigma=sigma, spread=0.0)
    p0 = analytic(SLOW, POP, make_draws(s, tau=None, sigma=None, spread=0.0))
    nodes, weights = gauss_hermite(40)
    ds = run(draws=d, n=400, population_effect="typical")
    for k in EVENTS:
        eta = special.logit(p0[k][0])  # (C,)
        p = special.expit(eta[None, :] + sigma * nodes[:, None])  # (Q, C)
        want = 1 - weights @ np.cumprod(1 - p, axis=1)
        vals = ds["cumulative"].sel(event=k).values
        got, se = vals.mean(0), vals.std(0, ddof=1) / np.sqrt(s)
        assert np.all(np.abs(got - want) <= 5 * se + 1e-12), (k, got, want, se)


def test_frailty_and_trial_effect_match_quadrature():
    """With identical draws (spread 0), per-cycle p averaged over patients and cohorts is
    E[sigmoid(eta + u + sigma z)], u ~ N(0, tau), z ~ N(0, 1): Gauss-Hermite with SD
    sqrt(tau^2 + sigma^2) for new_trial, sigma for typical. The RB mean over S cohorts
    has SE = sd_s / sqrt(S) (sd across cohorts, estimated); allow 5 SE."""
    tau, sigma, s = 0.8, 0.6, 400
    d = make_draws(s, tau=tau, sigma=sigma, spread=0.0)
    nodes, weights = gauss_hermite(40)
    p0 = analytic(SLOW, POP, make_draws(s, tau=None, sigma=None, spread=0.0))
    for effect, sd in (("new_trial", np.hypot(tau, sigma)), ("typical", sigma)):
        ds = run(draws=d, n=200, population_effect=effect)
        for k in EVENTS:
            eta = special.logit(p0[k][0])  # identical draws: row 0
            want = (weights[:, None] * special.expit(eta[None] + sd * nodes[:, None])).sum(0)
            vals = ds["per_cycle"].sel(event=k).values
            got, se = vals.mean(0), vals.std(0, ddof=1) / np.sqrt(s)
            assert np.all(np.abs(got - want) <= 5 * se), (effect, k, got, want, se)


def test_rao_blackwell_and_sampled_agree():
    """With frailty, trial effects and every rule active, per draw and cycle the sampled
    share and the RB mean estimate the same probability; their difference has SE
    sqrt(p (1 - p) / n_start); allow 5 SE summed over draws."""
    rules = Rules(on_neutropenia="reduce", on_flare_grade3plus="hold", on_tls="discontinue",
                  escalate_only_if_tolerated=True)  # fmt: skip
    ds = run(rules=rules, n=1000, draws=make_draws(30))
    n_start = ds["share_on"] * 1000
    rb, sm = ds["per_cycle"], ds["per_cycle_sampled"]
    diff = (sm - rb).sum("draw")
    se = np.sqrt((rb * (1 - rb) / n_start).sum("draw"))
    assert bool((np.abs(diff) <= 5 * se + 1e-12).all())
    # and the estimates are not trivially equal (they are different estimators)
    assert not np.allclose(rb, sm)


def test_same_seed_same_output_other_seed_differs():
    a = run(n=200)
    b = run(n=200)
    xr.testing.assert_identical(a, b)
    c = run(n=200, seed=6)
    assert not np.array_equal(a["per_cycle_sampled"], c["per_cycle_sampled"])


def test_chunk_size_does_not_matter():
    rules = Rules(on_neutropenia="reduce", on_tls="discontinue", escalate_only_if_tolerated=True)
    ref = run(rules=rules, n=300)
    for chunk in (1, 3, 7, 20, 1000):
        xr.testing.assert_identical(run(rules=rules, n=300, chunk_size=chunk), ref)


def test_common_random_numbers_change_in_cycle_3_only():
    """Two regimens equal in cycles 1-2 and different from cycle 3 (10 mg, then 15 or
    20 mg from cycle 3): cycles 1-2 identical bit for bit, under every rule, whatever the
    chunking and the number of cycles."""
    base = dict(cycle_days=28, days_on=(1, 21), start_mg=10, target_mg=20)
    a = Regimen(**base, cycles=6, escalation=Escalation(levels_mg=[10, 15, 20], every=2))
    b = Regimen(**base, cycles=9, escalation=Escalation(levels_mg=[10, 20], every=2))
    rules = Rules(on_neutropenia="reduce", on_flare_grade3plus="hold", on_tls="discontinue",
                  escalate_only_if_tolerated=True)  # fmt: skip
    da = run(regimen=a, rules=rules, n=400, chunk_size=4)
    db = run(regimen=b, rules=rules, n=400, chunk_size=9)
    first2 = {"cycle": [1, 2]}
    for v in da.data_vars:
        if "cycle" in da[v].dims:
            np.testing.assert_array_equal(da[v].sel(first2), db[v].sel(first2), err_msg=v)
    assert not np.array_equal(da["per_cycle"].sel(cycle=3), db["per_cycle"].sel(cycle=3))
    np.testing.assert_array_equal(
        da["dose_mean_mg"].sel(cycle=3) < db["dose_mean_mg"].sel(cycle=3), True
    )


def test_common_random_numbers_across_population_effect():
    """new_trial and typical use the same frailties and uniforms: with tau = 0 they agree."""
    d = make_draws(10, tau=0.0)
    xr.testing.assert_equal(
        run(draws=d, population_effect="new_trial").drop_attrs(),
        run(draws=d, population_effect="typical").drop_attrs(),
    )


def test_posterior_index_keys_the_streams():
    """A draw keeps its random numbers when it is simulated among other draws."""
    d = make_draws(10)
    full = run(draws=d, posterior_index=np.arange(100, 110))
    part = run(draws=d.take(slice(4, 6)), posterior_index=np.arange(104, 106))
    xr.testing.assert_equal(full.isel(draw=slice(4, 6)).drop_vars("draw"), part.drop_vars("draw"))


# --- dose-modification rules: force events with huge intercepts (p = 1 or 0) ---------

CERTAIN, NEVER = 40.0, -40.0


def forced(neutropenia=NEVER, flare=NEVER, tls=NEVER, severity=NEVER, neut_first=0.0):
    """Draws with p ~ 1 (CERTAIN) or ~ 0 (NEVER) per event; ``neut_first`` shifts
    neutropenia in the first lenalidomide cycle (to make it strike in later cycles only)."""
    terms = {"flare": (), "tls": (), "neutropenia": ("first",), SEVERITY: ()}
    return make_draws(
        2, tau=None, sigma=None, spread=0.0, terms=terms,
        intercept={"flare": flare, "tls": tls, "neutropenia": neutropenia, SEVERITY: severity},
        coef={"first": neut_first},
    )  # fmt: skip


def run_rules(rules, draws, regimen=STEPS):
    return run(regimen=regimen, pop=Population(setting="relapsed"), rules=rules, draws=draws, n=50)


def dose(ds, v):
    return ds[v].isel(draw=0).values


PLANNED = np.array([10, 15, 20, 20, 20]) * 21 / 28  # STEPS nominal intensity


def test_continue_follows_the_schedule():
    ds = run_rules(Rules(), forced(neutropenia=CERTAIN))
    np.testing.assert_allclose(dose(ds, "dose_mean_mg"), [10, 15, 20, 20, 20])
    np.testing.assert_allclose(dose(ds, "dose_intensity"), PLANNED)
    np.testing.assert_allclose(dose(ds, "share_held"), 0)
    np.testing.assert_allclose(dose(ds, "share_at_target"), [0, 0, 1, 1, 1])


def test_hold_halves_the_dose_and_keeps_the_level():
    ds = run_rules(Rules(on_neutropenia="hold"), forced(neutropenia=CERTAIN))
    # held every cycle: never escalates, half the planned mg delivered, nobody stops
    np.testing.assert_allclose(dose(ds, "dose_mean_mg"), 10)
    np.testing.assert_allclose(dose(ds, "dose_intensity"), 10 * 21 / 28 / 2)
    np.testing.assert_allclose(dose(ds, "share_held"), 1)
    np.testing.assert_allclose(dose(ds, "share_reduced"), 0)
    np.testing.assert_allclose(dose(ds, "share_stopped"), 0)
    np.testing.assert_allclose(dose(ds, "share_on"), 1)


def test_hold_after_an_escalation_keeps_the_level_reached():
    # neutropenia from cycle 2 on (not in the first lenalidomide cycle)
    ds = run_rules(Rules(on_neutropenia="hold"), forced(neutropenia=CERTAIN, neut_first=-80))
    # c1 10 mg (no event), c2 steps to 15 and is held, c3 stays at 15 (held), ...
    np.testing.assert_allclose(dose(ds, "dose_mean_mg"), [10, 15, 15, 15, 15])
    np.testing.assert_allclose(dose(ds, "share_held"), [0, 1, 1, 1, 1])


def test_reduce_lowers_the_next_level_and_discontinues_at_the_lowest():
    ds = run_rules(Rules(on_neutropenia="reduce"), forced(neutropenia=CERTAIN, neut_first=-80))
    # c1 10 mg, c2 15 mg + event -> c3 one level below 15 = 10 mg, c3 event at the lowest
    # level -> discontinue; nobody starts c4
    np.testing.assert_allclose(dose(ds, "dose_mean_mg")[:3], [10, 15, 10])
    np.testing.assert_allclose(dose(ds, "share_reduced")[:3], [0, 1, 0])
    np.testing.assert_allclose(dose(ds, "share_stopped"), [0, 0, 1, 1, 1])
    np.testing.assert_allclose(dose(ds, "share_on"), [1, 1, 1, 0, 0])
    np.testing.assert_allclose(
        dose(ds, "dose_intensity")[:3], np.array([10, 15, 10]) * 21 / 28 / 2 * [2, 1, 1]
    )
    assert np.isnan(dose(ds, "dose_mean_mg")[3])


def test_discontinue_stops_now():
    ds = run_rules(Rules(on_tls="discontinue"), forced(tls=CERTAIN))
    np.testing.assert_allclose(dose(ds, "share_stopped"), 1)
    np.testing.assert_allclose(dose(ds, "share_on"), [1, 0, 0, 0, 0])
    np.testing.assert_allclose(dose(ds, "dose_intensity")[0], PLANNED[0] / 2)
    # stopped patients have no later events: the cumulative TLS stays at 1, per-cycle is NaN
    np.testing.assert_allclose(ds["cumulative"].sel(event="tls").isel(draw=0), 1)
    assert np.isnan(ds["per_cycle"].sel(event="tls").isel(draw=0).values[1:]).all()


def test_flare_rule_acts_on_grade3plus_only():
    any_grade = run_rules(Rules(on_flare_grade3plus="discontinue"), forced(flare=CERTAIN))
    np.testing.assert_allclose(dose(any_grade, "share_stopped"), 0)
    severe = run_rules(
        Rules(on_flare_grade3plus="discontinue"), forced(flare=CERTAIN, severity=CERTAIN)
    )
    np.testing.assert_allclose(dose(severe, "share_stopped"), 1)


def test_strongest_action_wins():
    ds = run_rules(
        Rules(on_neutropenia="hold", on_tls="discontinue"), forced(neutropenia=CERTAIN, tls=CERTAIN)
    )
    np.testing.assert_allclose(dose(ds, "share_stopped"), 1)
    np.testing.assert_allclose(dose(ds, "share_held")[0], 0)
    ds = run_rules(
        Rules(on_neutropenia="reduce", on_tls="hold"), forced(neutropenia=CERTAIN, tls=CERTAIN)
    )
    np.testing.assert_allclose(dose(ds, "share_stopped"), 1)  # reduce at the lowest level


def test_escalate_only_if_tolerated_blocks_escalation():
    # an event every cycle (action continue): no escalation ever
    ds = run_rules(Rules(escalate_only_if_tolerated=True), forced(neutropenia=CERTAIN))
    np.testing.assert_allclose(dose(ds, "dose_mean_mg"), 10)
    np.testing.assert_allclose(dose(ds, "dose_intensity"), 10 * 21 / 28)  # not held
    # an event in cycle 1 only: cycle 2's step is blocked, later steps are taken
    ds = run_rules(Rules(escalate_only_if_tolerated=True), forced(neutropenia=NEVER, neut_first=80))
    np.testing.assert_allclose(dose(ds, "dose_mean_mg"), [10, 10, 15, 20, 20])
    # a grade 1-2 flare does not block
    ds = run_rules(Rules(escalate_only_if_tolerated=True), forced(flare=CERTAIN))
    np.testing.assert_allclose(dose(ds, "dose_mean_mg"), [10, 15, 20, 20, 20])


# Chanan-Khan 2006 group B: 10 mg days 1-7, 15 mg days 8-14, 20 mg days 15-21 of cycle 1.
WEEKLY = Regimen(
    cycle_days=28, days_on=(1, 21), start_mg=10, target_mg=20, cycles=4,
    escalation=Escalation(step_mg=5, every=1, unit="weeks"),
)  # fmt: skip


def test_escalate_only_if_tolerated_stops_the_steps_inside_the_event_cycle():
    """An event strikes mid-cycle (day 10 of 21 days on drug): the day-8 step has been
    taken, the day-15 step waits; later cycles take no steps while events continue."""
    ds = run_rules(Rules(escalate_only_if_tolerated=True), forced(neutropenia=CERTAIN),
                   regimen=WEEKLY)  # fmt: skip
    # cycle 1 as planned (mean of 10/15/20), then 15 mg: the level reached at mid-cycle
    np.testing.assert_allclose(dose(ds, "dose_mean_mg"), [15, 15, 15, 15])
    # delivered in cycle 1: 7 days at 10, 3 at 15, then 11 days at 15 (not 15/20)
    np.testing.assert_allclose(dose(ds, "dose_intensity"), [280 / 28, 15 * 21 / 28,
                                                            15 * 21 / 28, 15 * 21 / 28])  # fmt: skip
    # without the rule the steps are taken on schedule: 20 mg from cycle 2
    ds = run_rules(Rules(), forced(neutropenia=CERTAIN), regimen=WEEKLY)
    np.testing.assert_allclose(dose(ds, "dose_mean_mg"), [15, 20, 20, 20])


def test_on_lowest_hold_keeps_the_lowest_level_instead_of_stopping():
    ds = run_rules(Rules(on_neutropenia="reduce", on_lowest="hold"),
                   forced(neutropenia=CERTAIN, neut_first=-80))  # fmt: skip
    # c1 10 mg, c2 15 mg + event -> c3 at 10 mg, event at the lowest level -> held there
    np.testing.assert_allclose(dose(ds, "dose_mean_mg"), [10, 15, 10, 10, 10])
    np.testing.assert_allclose(dose(ds, "share_reduced"), [0, 1, 0, 0, 0])
    np.testing.assert_allclose(dose(ds, "share_held"), [0, 1, 1, 1, 1])
    np.testing.assert_allclose(dose(ds, "share_stopped"), 0)


def test_no_lenalidomide_cycle_has_no_events_and_steroid_goes_with_first_exposure():
    reg = Regimen(cycle_days=28, days_on=(1, 21), start_mg=5, cycles=3,
                  first_cycle={"no_lenalidomide": True})  # fmt: skip
    d = make_draws(4, tau=None, sigma=None, coef=PLAUSIBLE_COEFS | {"steroid": -3.0})
    ds = run(regimen=reg, draws=d, n=100)
    np.testing.assert_array_equal(ds["per_cycle"].sel(cycle=1), 0)
    np.testing.assert_array_equal(ds["dose_mean_mg"].sel(cycle=1), 0)
    p = analytic(reg, POP, d)  # steroid = prophylaxis x first exposure (cycle 2 here)
    np.testing.assert_allclose(
        ds["per_cycle"].sel(event="flare_grade3plus").values, p["flare_grade3plus"], rtol=1e-12
    )


@pytest.mark.slow
def test_memory_bounded_at_100k_patients():
    """100,000 patients: chunking keeps the peak traced memory far below 1 GiB (it does not
    grow with the number of draws: only the small (S, 4, C) outputs do)."""
    import tracemalloc

    d = make_draws(24)
    tracemalloc.start()
    try:
        ds = run(draws=d, n=100_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 600 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert np.isfinite(ds["per_cycle"]).all()


def test_reduction_levels_below_the_start_are_used_before_stopping():
    """With reduction_levels_mg [5], a reduction from the starting dose steps down to 5 mg
    instead of discontinuing, and the fit-side nominal schedule is unchanged."""
    reg = STEPS.model_copy(update={"reduction_levels_mg": [5.0]})
    ds = run_rules(Rules(on_neutropenia="reduce"), forced(neutropenia=CERTAIN), regimen=reg)
    # c1 10 mg + event -> c2 at 5 mg (one level below 10), event -> at the lowest -> stop
    np.testing.assert_allclose(dose(ds, "dose_mean_mg")[:2], [10, 5])
    np.testing.assert_allclose(dose(ds, "share_stopped")[:3], [0, 1, 1])
    plain = run_rules(Rules(), forced(neutropenia=CERTAIN), regimen=reg)
    np.testing.assert_allclose(dose(plain, "dose_mean_mg"), [10, 15, 20, 20, 20])


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(n=0), r"n_patients must be in \[1, 2\*\*32\)"),
        (dict(n=2**32), r"n_patients must be in \[1, 2\*\*32\)"),
        (dict(chunk_size=0), "chunk_size must be >= 1"),
        (dict(threads=0), "threads must be >= 1"),
        (dict(posterior_index=np.arange(3)), r"posterior_index has shape \(3,\)"),
        (dict(posterior_index=-np.arange(20)), "posterior indices must be >= 0"),
        (dict(population_effect="median"), "population_effect must be new_trial or typical"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(kw, match):
    with pytest.raises(ValueError, match=match):
        run(**kw)


def test_state_tables_are_built_once_per_content_and_change_no_result():
    """state_table keeps one table per content (issue 22.12): the same schedule, cycle,
    population and strata give the same object; a change in any (the setting, the
    cycle, the schedule's start) gives another; and a run on tables built afresh equals
    the same run on the kept ones, bit for bit."""
    import dataclasses

    from lenasim.simulation import tables

    draws = make_draws(4, seed=5)
    tables._TABLES.clear()
    fresh = simulate(SLOW.expand(), POP, NO_RULES, draws, n_patients=300, seed=9, light=True)
    kept = len(tables._TABLES)
    assert kept == SLOW.expand().n_cycles
    again = simulate(SLOW.expand(), POP, NO_RULES, draws, n_patients=300, seed=9, light=True)
    assert len(tables._TABLES) == kept  # no table built again
    for name in ("per_cycle", "cumulative"):
        assert np.asarray(fresh[name].values).tobytes() == np.asarray(again[name].values).tobytes()
    sch = SLOW.expand()
    t = tables.state_table(sch, 1, POP)
    assert tables.state_table(SLOW.expand(), 1, POP) is t
    relapsed = POP.model_copy(update={"setting": "relapsed"})
    others = [tables.state_table(sch, 2, POP), tables.state_table(sch, 1, relapsed),
              tables.state_table(dataclasses.replace(sch, start_level=1), 1, POP)]  # fmt: skip
    assert all(o is not t for o in others)
    assert not np.array_equal(others[1].features["untreated"], t.features["untreated"])


def test_the_stacked_tables_are_built_once_per_state_tables_and_rules():
    """tables_for keeps one Tables per (state tables, rules' table fields, layout): a run
    of the same schedule reuses it and gives the bits of a run on a Tables built afresh;
    other rules that change the transitions (on_lowest, escalate_only_if_tolerated) or
    another schedule get their own."""
    import dataclasses

    from lenasim.simulation import tables

    draws = make_draws(4, seed=5)
    tables._TABS.clear()
    tables._TABS_BYTES[0] = 0
    fresh = simulate(SLOW.expand(), POP, NO_RULES, draws, n_patients=300, seed=9, light=True)
    assert len(tables._TABS) == 1
    again = simulate(SLOW.expand(), POP, NO_RULES, draws, n_patients=300, seed=9, light=True)
    assert len(tables._TABS) == 1  # reused
    for name in ("per_cycle", "per_cycle_sampled", "cumulative", "dose_intensity"):
        assert np.asarray(fresh[name].values).tobytes() == np.asarray(again[name].values).tobytes()
    sch = SLOW.expand()
    st = [tables.state_table(sch, c, POP) for c in range(sch.n_cycles)]
    lay = tables.Layout.of()
    one = tables.tables_for(sch, st, NO_RULES, lay)
    assert tables.tables_for(SLOW.expand(), list(st), NO_RULES, lay) is one
    other = dataclasses.replace(sch, start_level=1)
    others = [
        tables.tables_for(sch, st, NO_RULES.model_copy(update={"on_lowest": "hold"}), lay),
        tables.tables_for(sch, st, NO_RULES.model_copy(update={"escalate_only_if_tolerated":
                                                               True}), lay),
        tables.tables_for(other, [tables.state_table(other, c, POP) for c in range(8)],
                          NO_RULES, lay),
    ]  # fmt: skip
    assert all(o is not one for o in others) and len(tables._TABS) == 4


def test_the_default_threads_only_as_many_as_the_work_fills(monkeypatch):
    """threads=None starts no thread for a chunk of fewer than 2 x THREAD_WORK
    patient-cycles (a thread costs more than it saves there), and splits a larger one;
    threads given (here 2) split as before; the results are the same bits every way."""
    from lenasim.simulation import engine

    started = []

    class Pool(engine.ThreadPoolExecutor):
        def __init__(self, n):
            started.append(n)
            super().__init__(n)

    monkeypatch.setattr(engine, "ThreadPoolExecutor", Pool)
    monkeypatch.setattr(engine, "thread_count", lambda t: 2 if t is None else t)
    monkeypatch.delenv("LENASIM_THREADS", raising=False)
    draws = make_draws(6, seed=5)
    kw = dict(n_patients=20, seed=9, light=True)  # 6 x 20 x 8 = 960 patient-cycles
    one = simulate(SLOW.expand(), POP, NO_RULES, draws, threads=1, **kw)
    small = simulate(SLOW.expand(), POP, NO_RULES, draws, **kw)
    assert started == []
    two = simulate(SLOW.expand(), POP, NO_RULES, draws, threads=2, **kw)
    assert started == [2]
    monkeypatch.setattr(engine, "THREAD_WORK", 400)  # the same run now fills 2 threads
    large = simulate(SLOW.expand(), POP, NO_RULES, draws, **kw)
    assert started == [2, 2]
    for ds in (small, two, large):
        for name in ("per_cycle", "per_cycle_sampled", "cumulative", "dose_intensity"):
            assert np.asarray(ds[name].values).tobytes() == np.asarray(one[name].values).tobytes()
