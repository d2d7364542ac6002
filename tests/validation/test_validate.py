"""Validation machinery: predictive laws and PIT, the baseline, LOTO mechanics on a
synthetic table with a known truth, ELPD arithmetic, SBC ranks (slow: real fits)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from builders import Arm, make_draws
from lenasim.core.hazard import EVENTS, SEVERITY, HazardDraws
from lenasim.core.regimen import Escalation, Regimen
from lenasim.model.likelihood import arm_features
from lenasim.model.spec import load_spec
from lenasim.validation.loto import (
    DOSE_TERMS,
    FitOutput,
    elpd_difference,
    loto,
    loto_summary,
    no_dose_spec,
)
from lenasim.validation.predictive import (
    MixtureBinomial,
    MixtureNormal,
    baseline_predictive,
    predict_rows,
    randomized_pit,
)
from lenasim.validation.sbc import (
    prior_draws,
    rank_uniformity,
    sbc,
    sbc_params,
    sbc_summary,
    simulate_counts,
)

SPEC = load_spec("models/default.yaml")


ARMS = {
    "lo": Arm(30, Regimen(cycle_days=28, days_on=(1, 21), start_mg=2.5, target_mg=10,
                          escalation=Escalation(levels_mg=[2.5, 5, 10], every=1), cycles=6)),
    "hi": Arm(30, Regimen(cycle_days=28, days_on=(1, 21), start_mg=25, cycles=6)),
    "mid": Arm(40, Regimen(cycle_days=28, days_on=(1, 28), start_mg=10, cycles=6)),
    "un": Arm(25, Regimen(cycle_days=28, days_on=(1, 21), start_mg=5, cycles=6),
              setting="untreated"),
}  # fmt: skip
COLS = ["row_id", "trial", "arm_ids", "outcome", "unit", "cycle_k", "cycles_at_risk",
        "events", "n", "setting"]  # fmt: skip


def _table(spec_rows) -> pd.DataFrame:
    return pd.DataFrame(spec_rows, columns=COLS)


def _tiny_rows() -> pd.DataFrame:
    """Four trials, seven rows, every unit; counts are filled in by the tests."""
    return _table([
        ("a1", "tA", ("lo",), "flare_any", "patients", None, 6, 0, 30, "relapsed"),
        ("a2", "tA", ("lo",), "tls", "patients", None, 6, 0, 30, "relapsed"),
        ("b1", "tB", ("hi",), "flare_any", "cycle_k", 1, 1, 0, 30, "relapsed"),
        ("b2", "tB", ("hi",), "neutropenia_grade34", "cycles", None, 4, 0, 120, "relapsed"),
        ("c1", "tC", ("mid",), "flare_any", "patients", None, 6, 0, 40, "relapsed"),
        ("c2", "tC", ("mid",), "neutropenia_grade34", "patients", None, 6, 0, 40, "relapsed"),
        ("d1", "tD", ("un",), "flare_any", "patients", None, 6, 0, 25, "untreated"),
    ])  # fmt: skip


def _point_draws(s: int, *, tau: float, sigma: float = 0.0, a: float = -1.5,
                 slope: float = 0.0) -> HazardDraws:  # fmt: skip
    """S identical draws: intercept a, log_dose slope, every other coefficient 0."""
    return make_draws(s, terms=SPEC.terms_map(), intercept=a, coef={"log_dose": slope},
                      tau=tau, sigma=sigma, spread=0.0)  # fmt: skip


# ------------------------------------------------------------------ PIT and laws


def test_randomized_pit_of_a_binomial_by_hand():
    """Binomial(3, 1/2): pmf 1/8, 3/8, 3/8, 1/8; PIT(y) = P(Y < y) + v P(Y = y)."""
    pred = MixtureBinomial(3, np.array([0.5]))
    pmf = np.array([1, 3, 3, 1]) / 8
    below = np.concatenate([[0], np.cumsum(pmf)[:-1]])
    for y in range(4):
        for v in (0.0, 0.3, 1.0):
            assert randomized_pit(pred, y, v) == pytest.approx(below[y] + v * pmf[y], abs=1e-12)
    assert [pred.quantile(q) for q in (0.05, 0.25, 0.5, 0.75, 0.95)] == [0, 1, 1, 2, 3]
    assert pred.logp(1) == pytest.approx(math.log(3 / 8))


def test_randomized_pit_of_a_point_mass_is_the_uniform_itself():
    """p = 1 (clipped to 1 - 1e-9): all mass on y = n, so the PIT at n is v."""
    pred = MixtureBinomial(5, np.array([1.0]))
    for v in (0.0, 0.25, 0.9):
        assert randomized_pit(pred, 5, v) == pytest.approx(v, abs=1e-7)
    assert pred.quantile(0.05) == pred.quantile(0.95) == 5


def test_randomized_pit_is_uniform_when_the_predictive_is_true():
    """Counts drawn from a two-component mixture: their randomised PITs pass a KS test
    (p > 0.001; the seed is fixed, so this is a check of the formula, not a flaky test)."""
    rng = np.random.default_rng(5)
    p = np.array([0.1, 0.6])
    pred = MixtureBinomial(8, p)
    y = rng.binomial(8, p[rng.integers(0, 2, 4000)])
    pit = [randomized_pit(pred, k, v) for k, v in zip(y, rng.random(y.size))]
    assert stats.kstest(pit, "uniform").pvalue > 1e-3


def test_mixture_normal_quantiles_and_density():
    pred = MixtureNormal(np.array([10.0, 10.0]), np.array([2.0, 2.0]))
    assert pred.quantile(0.5) == pytest.approx(10.0, abs=1e-3)
    assert pred.quantile(0.95) == pytest.approx(10 + 2 * 1.6448536, abs=1e-2)
    assert pred.logp(12.0) == pytest.approx(stats.norm.logpdf(12.0, 10, 2))
    assert randomized_pit(pred, 10.0, 0.9) == pytest.approx(0.5)


# ------------------------------------------------------------------ baseline and ELPD


def test_baseline_is_the_beta_binomial_of_its_group_by_hand():
    """Training rows of the same outcome, setting and unit family: 3/10 and 1/5, so the
    posterior is Beta(1 + 4, 1 + 11) and P(Y = 1 | n = 2) = 2 B(6, 13) / B(5, 12)
    = 2 * 5 * 12 / (17 * 18). Rows of other outcomes, settings or units do not count."""
    train = _table([
        ("x1", "t1", ("lo",), "tls", "patients", None, 6, 3, 10, "relapsed"),
        ("x2", "t2", ("lo",), "tls", "patients", None, 6, 1, 5, "relapsed"),
        ("x3", "t3", ("lo",), "tls", "patients", None, 6, 9, 9, "untreated"),
        ("x4", "t3", ("lo",), "flare_any", "patients", None, 6, 9, 9, "relapsed"),
        ("x5", "t4", ("lo",), "tls", "cycle_k", 1, 1, 9, 9, "relapsed"),
    ])  # fmt: skip
    row = _table([("h", "t9", ("lo",), "tls", "patients", None, 6, 1, 2, "relapsed")]).iloc[0]
    base = baseline_predictive(train, row)
    assert base.logp(1) == pytest.approx(math.log(2 * 5 * 12 / (17 * 18)), rel=1e-12)
    # No training row in its group: Beta(1, 1)-binomial = uniform on 0..n.
    lone = _table([("h", "t9", ("lo",), "neutropenia_grade34", "patients", None, 6, 2, 4,
                    "relapsed")]).iloc[0]  # fmt: skip
    assert baseline_predictive(train, lone).logp(2) == pytest.approx(math.log(1 / 5))


def test_elpd_difference_and_its_standard_error_by_hand():
    """Pointwise differences 1, 2, 3: sum 6, SE = sqrt(3 * var([1, 2, 3])) = sqrt(3)."""
    out = elpd_difference([0.0, 0.0, 0.0], [-1.0, -2.0, -3.0])
    assert out["diff"] == pytest.approx(6.0)
    assert out["se"] == pytest.approx(math.sqrt(3.0))
    assert out["distinguishable"]  # 6 > 2 sqrt(3)
    close = elpd_difference([0.0, 0.0, 0.0], [-1.0, 1.0, -0.5])
    assert not close["distinguishable"]


# ------------------------------------------------------------------ predictions


def test_prediction_of_a_new_trial_integrates_over_tau():
    """One cycle-1 row, no frailty: with a new trial effect the predictive is
    E_u[Binomial(n, expit(eta + u))], u ~ N(0, tau); computed by 80-node Gauss-Hermite
    and compared with 20,000 simulated effects (CDF error SD <= 0.0036; tolerance 0.02).
    The typical trial (u = 0) is far narrower: the new effect is really used."""
    tau, n = 1.5, 30
    rows = _table([("r", "t", ("hi",), "flare_any", "cycle_k", 1, 1, 10, n, "relapsed")])
    draws = _point_draws(1, tau=tau)
    rng = np.random.default_rng(11)
    (pred,) = predict_rows(draws, rows, ARMS, quadrature_nodes=9, rng=rng,
                             effects_per_draw=20_000)  # fmt: skip
    eta = draws.eta("flare", arm_features(ARMS["hi"], 1))[0, 0]
    x, w = np.polynomial.hermite.hermgauss(80)
    p = special.expit(eta + np.sqrt(2) * tau * x)
    k = np.arange(n + 1)
    exact = (w[:, None] * stats.binom.cdf(k[None, :], n, p[:, None])).sum(0) / np.sqrt(np.pi)
    np.testing.assert_allclose(pred.cdf_table, exact, atol=0.02)
    (typical,) = predict_rows(draws, rows, ARMS, quadrature_nodes=9, rng=rng, new_trial=False)
    width = pred.quantile(0.95) - pred.quantile(0.05)
    assert typical.quantile(0.95) - typical.quantile(0.05) < 0.6 * width
    np.testing.assert_allclose(typical.pmf_table, stats.binom.pmf(k, n, special.expit(eta)),
                               atol=1e-8)  # fmt: skip


def test_cycles_row_predictive_is_the_models_normal():
    """sigma = 0, u = 0: mean N * mean_c p_c, variance n_patients sum_c p_c (1 - p_c) + 1/4."""
    rows = _table([("r", "t", ("lo",), "neutropenia_grade34", "cycles", None, 4, 50, 120,
                    "relapsed")])  # fmt: skip
    draws = _point_draws(1, tau=0.0, slope=0.8)
    (pred,) = predict_rows(draws, rows, ARMS, quadrature_nodes=9,
                             rng=np.random.default_rng(0), new_trial=False)  # fmt: skip
    f = arm_features(ARMS["lo"], 4)
    p = special.expit(draws.eta("neutropenia", f)[0]) * (1 - 1e-9)
    assert pred.mu[0] == pytest.approx(120 * p.mean(), rel=1e-9)
    assert pred.sd[0] == pytest.approx(math.sqrt(30 * (p * (1 - p)).sum() + 0.25), rel=1e-9)


# ------------------------------------------------------------------ LOTO


def _simulate_table(truth: HazardDraws, rng) -> pd.DataFrame:
    """The tiny table with counts drawn from the truth (new trial effect per trial)."""
    rows = _tiny_rows()
    from lenasim.model.likelihood import prepare

    data = prepare(rows, ARMS, 9)
    u = rng.standard_normal((1, len(data.trials), len(EVENTS))) * truth.tau["flare"][0]
    y = simulate_counts(truth, u, data, rng)
    rows["events"] = np.where(rows["unit"] == "cycles", np.round(y), y).astype(int)
    return rows


def test_loto_mechanics_with_an_injected_fit(monkeypatch):
    """One refit per trial, with weight 0 on exactly that trial's rows; every row
    predicted once; PIT in [0, 1]; finite densities; same output for the same seed."""
    import lenasim.validation.loto as loto_mod

    # The meta-analysis baseline is a grid computation that takes no random numbers:
    # the second run (the same-seed check) reuses the first's, for each held-out row and
    # its training rows (0.4 s of CPU each; issue 22.12).
    meta, real_meta = {}, loto_mod.meta_analysis_predictive

    def meta_once(train, row):
        key = (row["row_id"], tuple(train["row_id"]), tuple(train["events"]))
        return meta[key] if key in meta else meta.setdefault(key, real_meta(train, row))

    monkeypatch.setattr(loto_mod, "meta_analysis_predictive", meta_once)
    # The baseline on a 31-point grid with 8 quadrature nodes (81 and 20 by default): this
    # test checks what loto does with it (finite, one per row), test_meta_baseline its
    # numbers; the grid's product with n's pmf cost ~1 s of CPU here (issue 22.12).
    import functools

    import lenasim.validation.predictive as pred_mod

    monkeypatch.setattr(pred_mod, "MetaAnalysisPredictive",
                        functools.partial(pred_mod.MetaAnalysisPredictive, grid=31, nodes=8))  # fmt: skip
    truth = _point_draws(1, tau=0.5, sigma=0.3, slope=0.6)
    rows = _simulate_table(truth, np.random.default_rng(3))
    calls = []

    def fit(weights):
        calls.append(np.asarray(weights).copy())
        return FitOutput(_point_draws(50, tau=0.5, sigma=0.3, slope=0.6), {"max_rhat": 1.0})

    table, refits = loto(rows, ARMS, fit, quadrature_nodes=9, seed=1, progress=False)
    assert [r["trial"] for r in refits] == ["tA", "tB", "tC", "tD"]
    for trial, w in zip(["tA", "tB", "tC", "tD"], calls):
        np.testing.assert_array_equal(w, (rows["trial"] != trial).to_numpy(float))
    assert list(table["row_id"]) == list(rows["row_id"])
    assert table["pit"].between(0, 1).all()
    assert np.isfinite(table["lpd"]).all() and np.isfinite(table["lpd_baseline"]).all()
    s = loto_summary(table)
    assert s["n_rows"] == 7 and s["n_trials"] == 4
    assert len(meta) == 7
    again, _ = loto(rows, ARMS, fit, quadrature_nodes=9, seed=1, progress=False)
    pd.testing.assert_frame_equal(table, again)


def _binomial_as_meta(train, row):
    base = baseline_predictive(train, row)
    base.rate = base.a / (base.a + base.b)
    return base


def test_loto_intervals_are_the_quantiles_of_each_rows_predictive(monkeypatch):
    """A fit without trial effects or frailty (tau = sigma = 0, identical draws): a
    new trial's predictive is then Binomial(n, P) for patients and cycle-k rows and the
    model's Normal for the cycles row, with P from the hazard by hand: patients
    P = 1 - prod_c (1 - p_c), cycle k P = p_k, cycles mean n mean_c p_c and variance
    (n / m) sum_c p_c (1 - p_c) + 1/4. The table's median and 50% / 90% limits must be
    those laws' quantiles (scipy's binom.ppf and norm.ppf)."""
    import lenasim.validation.loto as loto_mod

    # the intervals are checked, not the meta-analysis baseline (its own tests are in
    # test_meta_baseline.py): a baseline of the binomial one spares 0.4 s of CPU a row
    monkeypatch.setattr(loto_mod, "meta_analysis_predictive", _binomial_as_meta)
    rows = _simulate_table(_point_draws(1, tau=0.5, slope=0.6), np.random.default_rng(5))
    post = _point_draws(3, tau=0.0, sigma=0.0, slope=0.6)
    table, _ = loto(rows, ARMS, lambda w: FitOutput(post), quadrature_nodes=9, seed=1,
                    progress=False)  # fmt: skip
    event = {"flare_any": "flare", "tls": "tls", "neutropenia_grade34": "neutropenia"}
    levels = {"lo90": 0.05, "lo50": 0.25, "pred_median": 0.5, "hi50": 0.75, "hi90": 0.95}
    for r, got in zip(rows.itertuples(), table.itertuples(), strict=True):
        m = int(r.cycle_k if r.unit == "cycle_k" else r.cycles_at_risk)
        f = arm_features(ARMS[r.arm_ids[0]], m)
        p = special.expit(post.eta(event[r.outcome], f)[0])  # cycles 1..m
        for col, q in levels.items():
            if r.unit == "cycles":
                sd = math.sqrt(r.n / m * (p * (1 - p)).sum() + 0.25)
                want = stats.norm.ppf(q, r.n * p.mean(), sd)
                assert getattr(got, col) == pytest.approx(want, abs=1e-3 * sd), (r.row_id, col)
            else:
                big_p = p[-1] if r.unit == "cycle_k" else 1 - np.prod(1 - p)
                assert getattr(got, col) == stats.binom.ppf(q, r.n, big_p), (r.row_id, col)


@pytest.mark.slow  # statistical: leave-one-trial-out at two SDs (issue 22.12)
def test_loto_intervals_widen_with_the_between_trial_sd():
    """The same posterior but tau = 0 vs tau = 2: a new trial's 90% intervals are wider
    with the larger tau on every row (the prediction uses a new trial effect)."""
    rows = _simulate_table(_point_draws(1, tau=0.5), np.random.default_rng(4))

    def run(tau):
        t, _ = loto(rows, ARMS, lambda w: FitOutput(_point_draws(40, tau=tau)),
                      quadrature_nodes=9, seed=2, progress=False)  # fmt: skip
        return (t["hi90"] - t["lo90"]).to_numpy()

    assert (run(2.0) > run(0.0)).all()


@pytest.mark.slow
def test_loto_covers_the_truth_over_repeated_tables():
    """With the true parameters as the 'posterior', 90% intervals of new trials cover
    the observed counts at least ~90% of the time: 30 tables x 7 rows = 210 rows;
    discrete intervals are conservative, so the share must exceed 0.90 - 3 SE (0.84).
    The PIT mean must be within 3 SE of 1/2, the SE doubled because rows of one trial
    share its trial effect. (~1 min: the regimens are expanded for every fold.)"""
    truth = _point_draws(1, tau=0.7, sigma=0.5, slope=0.5)
    post = _point_draws(20, tau=0.7, sigma=0.5, slope=0.5)
    inside, pits = [], []
    for i in range(30):
        rows = _simulate_table(truth, np.random.default_rng([9, i]))
        t, _ = loto(rows, ARMS, lambda w: FitOutput(post), quadrature_nodes=9, seed=i,
                      effects_per_draw=20, progress=False)  # fmt: skip
        inside += list(t["inside90"])
        pits += list(t["pit"])
    share = float(np.mean(inside))
    assert share > 0.90 - 3 * math.sqrt(0.09 / len(inside))
    assert share < 0.995  # not trivially wide
    assert (
        abs(np.mean(pits) - 0.5) < 3 * math.sqrt(1 / 12 / len(pits)) * 2
    )  # rows of a table correlate


def test_no_dose_spec_drops_exactly_the_dose_terms():
    red = no_dose_spec(SPEC)
    for ev in EVENTS:
        assert set(red.block_terms(ev)) == set(SPEC.block_terms(ev)) - set(DOSE_TERMS)
    assert "log_dose" not in red.block_terms(SEVERITY)
    assert "steroid" in red.block_terms(SEVERITY)


# ------------------------------------------------------------------ SBC


def test_rank_uniformity_by_hand():
    ranks = np.repeat(np.arange(100), 2)  # perfectly uniform on 0..99
    out = rank_uniformity(ranks, 99, 4)
    assert out["counts"] == [50, 50, 50, 50]
    assert out["chi2"] == pytest.approx(0.0) and out["chi2_pvalue"] == pytest.approx(1.0)
    assert out["rank_mean_z"] == pytest.approx(0.0, abs=1e-12)
    piled = rank_uniformity(np.zeros(40, int), 99, 4)
    assert piled["chi2_pvalue"] < 1e-10 and piled["rank_mean_z"] < -5


@pytest.mark.slow  # statistical: PyMC prior draws (issue 22.12)
def test_prior_draws_come_from_the_models_prior():
    """5,000 draws of the model's own prior (pm.sample_prior_predictive on the built model):
    the TLS intercept's mean and SD, and the flare trial SD's half-normal mean, match the
    spec's priors within 5 SE; the trial effects are u = tau * N(0, 1) per trial."""
    from lenasim.model.fit import Fitter
    from lenasim.model.likelihood import prepare

    rows = _tiny_rows()
    fitter = Fitter(SPEC, prepare(rows, ARMS, 5))
    draws, u = prior_draws(fitter, 5000, seed=8)
    a = draws.intercept["tls"]
    pr = SPEC.prior("tls", "intercept")
    assert abs(a.mean() - pr.mu) < 5 * pr.sigma / math.sqrt(5000)
    assert abs(a.std() - pr.sigma) < 5 * pr.sigma / math.sqrt(2 * 5000)
    t = draws.tau["flare"]
    s = SPEC.prior("flare", "tau").sigma
    assert abs(t.mean() - s * math.sqrt(2 / math.pi)) < 5 * s * 0.6 / math.sqrt(5000)
    assert u.shape == (5000, 4, len(EVENTS))
    z = u[:, :, 0] / t[:, None]  # standard normal if u = tau * z
    assert abs(z.mean()) < 5 / math.sqrt(z.size) and abs(z.std() - 1) < 5 / math.sqrt(2 * z.size)


def _sbc_small_spec_and_rows():
    """A reduced table (13 rows of 5 trials: both Chanan-Khan arms, Ferrajoli 2008, Aue
    with its ``cycles`` row, Ferrajoli 2011, Blum) and a reduced model (log_dose and
    first-exposure terms only, 5 quadrature nodes): the same code paths, a quicker fit."""
    from lenasim.evidence.table import fitted_rows, load_arms, load_evidence
    from lenasim.model.spec import ModelSpec

    d = SPEC.model_dump()
    d["events"]["flare"]["terms"] = ["log_dose", "first"]
    d["events"]["tls"]["terms"] = ["log_dose"]
    d["events"]["neutropenia"]["terms"] = ["log_dose"]
    d["severity"]["terms"] = ["log_dose"]
    d["quadrature_nodes"] = 5
    d["name"] = "sbc-small"
    keep = ["ck06_a_flare", "ck06_b_flare", "ck06_a_tls", "ck06_b_tls", "ck06_pooled_neutropenia",
            "ferrajoli08_flare", "ferrajoli08_neutropenia", "aue_flare_c1", "aue_flare_c2",
            "aue_neutropenia_cycles", "lr_flare", "lr_neutropenia_full", "blum_tls"]  # fmt: skip
    rows = fitted_rows(load_evidence())
    rows = rows[rows["row_id"].isin(keep)].reset_index(drop=True)
    return ModelSpec.model_validate(d), rows, load_arms()


@pytest.mark.slow
def test_sbc_small_ranks_are_uniform():
    """16 SBC fits of a reduced model on a reduced table (nutpie: one compile, cached
    between runs; a few seconds per fit of 2 chains x 200 draws on 2 cores).

    What 16 fits can support: per parameter (intercepts, log_dose slopes, tau of the
    three events), a chi-square test on 3 rank bins (expected >= 5 per bin) and the
    z-test of the mean normalised rank, each at the Bonferroni level 0.01 / 9, so a
    correct sampler fails this test with probability below 2%. They catch gross errors
    (a sign or scale mistake, data simulated from another model than the one fitted,
    a sampler stuck away from the posterior: ranks piled at one end, |z| > 3.3 when
    the mean normalised rank is off by ~0.24); subtle miscalibration needs the full
    run, `python -m lenasim validate --sbc 200` (see the README). Ranks are among 49
    thinned draws of 400 (bulk ESS is ~50-200 here), so neighbouring draws are
    roughly independent."""
    from lenasim.model.fit import Fitter
    from lenasim.model.likelihood import prepare

    spec, rows, arms = _sbc_small_spec_and_rows()
    fitter = Fitter(spec, prepare(rows, arms, spec.quadrature_nodes))
    ranks = sbc(fitter, 16, seed=2026, thin_to=49, progress=False, chains=2, draws=200,
                tune=200)  # fmt: skip
    assert ranks["fit"].nunique() == 16
    names = sbc_params(spec.terms_map())
    assert list(dict.fromkeys(ranks["param"])) == list(names)
    level = 0.01 / len(names)
    zcrit = stats.norm.isf(level / 2)
    summary = sbc_summary(ranks, bins=3)
    for name, s in summary.items():
        assert s["chi2_pvalue"] > level, (name, s)
        assert abs(s["rank_mean_z"]) < zcrit, (name, s)


def test_a_validation_into_another_folder_leaves_the_quoted_record_alone(
    tmp_path, capsys, monkeypatch
):
    """Runs quote models/<spec>/validation.json; a validation written elsewhere (a trial
    run, a scratch folder) must not replace it, and says so."""
    import functools
    from pathlib import Path

    from lenasim.cli import main
    from lenasim.validation import claims

    # the claims at a small size: this test is about where the record goes
    small = functools.partial(claims.claims_table, n_draws=20, patients=50)
    monkeypatch.setattr(claims, "claims_table", small)

    record = Path("models/default/validation.json")
    before = (record.read_bytes(), record.stat().st_mtime_ns)
    assert main(["validate", "--only", "claims", "--out", str(tmp_path / "scratch")]) == 0
    assert (record.read_bytes(), record.stat().st_mtime_ns) == before  # not even rewritten
    assert (tmp_path / "scratch" / "claims.csv").is_file()
    assert "not stored beside the posterior" in capsys.readouterr().err
