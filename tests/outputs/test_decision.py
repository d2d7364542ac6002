"""What `run` says besides the numbers: the decision table of the risk limits, the
mirrored trial's figures against their predictions, and the caveats (validation,
prior-dominated terms, prior sensitivity), in the terminal and in the results folder."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import special, stats

from conftest import make_draws
from lenasim.commands.run import cmd_run
from lenasim.core.hazard import SEVERITY

SLOW_CFG = Path("configs/slow_escalation.yaml")


def synthetic(draws):
    """A posterior of made-up draws for the mirrored trial: no store holds its predictions
    (its hash is no file's), so they are computed from these draws."""
    return SimpleNamespace(draws=draws, hash="synthetic draws")


def args(*configs, **kw) -> Namespace:
    base = dict(overwrite=False, results=None, patients=60, draws=30, no_plots=True, quiet=True)
    return Namespace(configs=[str(c) for c in configs], **(base | kw))


def test_run_judges_the_default_limits(posterior_workdir, capsys):
    assert cmd_run(args(SLOW_CFG)) == 0
    out = posterior_workdir / "results/slow_escalation"
    lim = pd.read_csv(out / "limits.csv")
    assert list(lim["limit"]) == ["Tumor flare grade >= 3 by the end of cycle 12 <= 5%",
                                  "Tumor lysis syndrome in each of cycles 1-12 <= 2%"]  # fmt: skip
    ds = xr.load_dataset(out / "draws.nc")
    # the oracle: the share of posterior draws above the limit, from draws.nc (TLS: the
    # largest per-cycle risk of the 12 cycles)
    g3 = ds["cumulative"].sel(event="flare_grade3plus", cycle=12).values
    tls = np.nanmax(ds["per_cycle"].sel(event="tls").transpose("draw", "cycle").values, axis=1)
    np.testing.assert_allclose(lim["p_exceed"], [np.mean(g3 > 0.05), np.mean(tls > 0.02)])
    assert list(lim["acceptable"]) == [np.mean(g3 > 0.05) <= 0.25, np.mean(tls > 0.02) <= 0.25]
    assert set(lim["verdict"]) <= {"acceptable", "not acceptable", "undecided: run more draws"}
    assert not lim.isna().any().any()
    bands = pd.read_csv(out / "bands.csv")
    for _, g in bands.groupby("event"):
        assert g["probability"].sum() == pytest.approx(1.0)
    text = capsys.readouterr().out
    assert "Risk limits (escalation with overdose control" in text
    assert "Tumor lysis syndrome in each of cycles 1-12 <= 2%" in text and "P(exceed)" in text
    assert "Caveat: Nothing shows yet that these trials can rank schedules" in text
    assert "Mirrored trial (chen_2011_amended)" in text
    assert "Not validated" in text  # no validation.json beside the synthetic posterior


def test_a_config_without_limits_says_so(posterior_workdir, capsys):
    cfg = Path("configs/nolimits.yaml")
    cfg.write_text(SLOW_CFG.read_text().replace("name: slow_escalation", "name: nolimits")
                   + "limits: {}\n")  # fmt: skip
    assert cmd_run(args(cfg)) == 0
    lim = pd.read_csv(posterior_workdir / "results/nolimits/limits.csv")
    assert lim.empty and {"limit", "p_exceed", "verdict"} <= set(lim.columns)
    assert "Risk limits: none stated" in capsys.readouterr().out


def test_mirrored_figures_are_predicted_with_the_binomial_law(posterior_workdir):
    """Without trial effect or frailty, a new trial's count of patients with flare in cycle
    k is Binomial(n_k, p_k), p_k = expit(a + b log k) for Aue's 10 mg arm (no other term
    in these draws): the predicted 5%, 50% and 95% points are its quantiles."""
    from lenasim.outputs.judgements.mirror import mirrored_rows

    terms = {"flare": ("log_cycle",), "tls": (), "neutropenia": (), SEVERITY: ()}
    d = make_draws(20, tau=None, sigma=None, spread=0.0, terms=terms,
                   intercept={"flare": -1.0}, coef={"log_cycle": -0.3})  # fmt: skip
    df, skipped = mirrored_rows(["aue_10mg"], synthetic(d), "models/default.yaml")
    df = df.to_pandas()  # the run's table is pandas-free: a DataFrame to filter
    per_cycle = df[(df["unit"] == "cycle_k") & (df["outcome"] == "flare_any")]
    assert list(per_cycle["cycles"]) == [1, 2, 3, 4]
    assert list(per_cycle["events"]) == [26, 15, 12, 9]  # Aue: 78, 48, 38, 30%
    for r in per_cycle.itertuples():
        p = special.expit(-1.0 - 0.3 * np.log(r.cycles))
        for col, q in (("pred_q05", 0.05), ("pred_median", 0.5), ("pred_q95", 0.95)):
            assert getattr(r, col) == pytest.approx(stats.binom.ppf(q, r.n, p) / r.n), (r, col)
        assert r.inside90 == (r.pred_q05 <= r.events / r.n <= r.pred_q95)
    assert set(df["arms"]) <= {"aue_10mg", "aue_20mg + aue_10mg", "aue_10mg + aue_20mg"}
    assert all("seed" not in c and "evidence notes" not in c for c in df["citation"])


def _validation_summary(share90: float) -> dict:
    loto = {"n_rows": 42, "n_trials": 13, "coverage50": {"share": 0.5, "se": 0.08},
            "coverage90": {"share": share90, "se": 0.07},
            "model_vs_baseline": {"diff": 20.6, "se": 14.2},
            "model_vs_meta": {"diff": -4.3, "se": 3.6}}  # fmt: skip
    table = [{"config": "slow_escalation", "event": "flare", "quantity": "cycle 1",
              "mean_default": 0.24, "mean_widened": 0.47, "shift": 0.23},
             {"config": "slow_escalation", "event": "tls", "quantity": "cycle 1",
              "mean_default": 0.010, "mean_widened": 0.012, "shift": 0.002}]  # fmt: skip
    return {"loto": loto, "prior_sensitivity": {"factor": 2.0, "table": table}}


def test_caveats_quote_the_stored_validation(posterior_workdir, capsys):
    from lenasim.outputs.judgements.caveats import validation_record_path, write_validation_record

    spec = Path("models/default.yaml")
    write_validation_record(spec, _validation_summary(0.76), {"loto": True,
                                                             "prior_sensitivity": True})  # fmt: skip
    rec = json.loads(validation_record_path(spec).read_text())
    assert rec["loto"]["date"] and rec["loto"]["spec_hash"] and rec["prior_sensitivity"]["date"]
    # a later validation of one part keeps the other part, with its own date
    write_validation_record(spec, {"sbc": {"n_fits": 3}}, {"sbc": True, "loto": False})
    assert json.loads(validation_record_path(spec).read_text())["loto"] == rec["loto"]
    cmd_run(args(SLOW_CFG))
    text = capsys.readouterr().out
    assert "the 90% intervals held 76% of 42 held-out figures (nominal 90%)" in text
    assert "lower bound on the uncertainty" in text
    assert "meta-analysis that ignores dose and schedule -4.3 (SE 3.6)" in text
    assert "rest on the stated dose priors" in text
    # the shift only: the default number on the page is the run's own (one number each)
    assert "Tumor flare (any grade), cycle 1: +23.0 percentage points" in text
    assert "Tumor lysis syndrome, cycle 1" not in text  # < 2 pp
    assert "Caveat: The trials cannot rank these schedules" in text  # ELPD -4.3, SE 3.6
    saved = json.loads((posterior_workdir / "results/slow_escalation/caveats.json").read_text())
    assert saved["validation"]["loto"]["coverage90"]["share"] == 0.76
    assert "earlier model" not in text


def test_caveats_say_when_the_validation_is_of_another_model(posterior_workdir, capsys):
    from lenasim.outputs.judgements.caveats import validation_record_path, write_validation_record

    spec = Path("models/default.yaml")
    write_validation_record(spec, _validation_summary(0.9), {"loto": True})
    path = validation_record_path(spec)
    rec = json.loads(path.read_text())
    rec["loto"]["spec_hash"] = "another spec"
    path.write_text(json.dumps(rec))
    cmd_run(args(SLOW_CFG))
    text = capsys.readouterr().out
    assert "It is of an earlier model: the model spec changed since the validation" in text


_WITH_PRIOR: dict[tuple, bytes] = {}  # (spec hash, evidence hash, ratio) -> the file's bytes


def _posterior_with_prior(workdir: Path, ratio_elderly: float) -> None:
    """Rewrite the workdir's posterior with a prior group: every parameter's prior is 10
    times as wide as its posterior, except the neutropenia elderly term, whose posterior
    SD is ``ratio_elderly`` times its prior SD. Written once per spec, evidence and
    ratio (the workdirs share the repo's), then copied."""
    from lenasim.evidence.table import evidence_hash
    from lenasim.model.posterior import write_posterior
    from lenasim.model.spec import load_spec

    target = workdir / "models/default.nc"
    key = (load_spec(workdir / "models/default.yaml").hash(), evidence_hash(), ratio_elderly)
    if key not in _WITH_PRIOR:
        post = make_draws(60, seed=11, tau=None, sigma=None)
        prior = make_draws(60, seed=11, tau=None, sigma=None, spread=3.0)
        prior.coefs["neutropenia"]["elderly"] = post.coefs["neutropenia"]["elderly"] / ratio_elderly
        attrs = {"evidence_hash": key[1], "converged": 1, "spec_hash": key[0]}
        write_posterior(target, post, attrs, prior=prior)
        _WITH_PRIOR[key] = target.read_bytes()
    else:
        target.write_bytes(_WITH_PRIOR[key])


@pytest.mark.parametrize("elderly_share, flagged", [(0.4, True), (0.0, False)])
def test_prior_dominated_terms_the_scenario_uses_are_flagged(posterior_workdir, elderly_share,
                                                             flagged):  # fmt: skip
    from lenasim.model.posterior import load_posterior
    from lenasim.outputs.judgements.caveats import collect_caveats
    from lenasim.simulation.scenario import load_scenario

    _posterior_with_prior(posterior_workdir, ratio_elderly=0.95)
    post = load_posterior("models/default.nc", "models/default.yaml")
    sc = load_scenario(SLOW_CFG)
    sc = sc.model_copy(update={"population": sc.population.model_copy(
        update={"elderly_share": elderly_share})})  # fmt: skip
    c = collect_caveats(sc, post, "models/default.yaml")
    labels = [r["label"] for r in c.prior_dominated]
    assert ("Grade 3-4 neutropenia: age 65 or more" in labels) == flagged
    if flagged:
        r = c.prior_dominated[0]
        assert r["label"] == "Grade 3-4 neutropenia: age 65 or more"
        assert r["ratio"] == pytest.approx(0.95)
    assert all(r["overlap"] >= r["threshold"] for r in c.prior_dominated)
    assert c.prior_measured


def test_terms_used_follow_the_schedule_and_population(posterior_workdir):
    from lenasim.outputs.judgements.caveats import terms_used
    from lenasim.simulation.scenario import load_scenario

    every = {"flare": ("log_dose", "rise", "restart", "log_frac_on", "anti_cd20"),
             SEVERITY: ("log_dose", "steroid")}  # fmt: skip
    pulse = terms_used(load_scenario("configs/pulse_21of42.yaml"), every)
    assert pulse["flare"] == ["intercept", "tau", "sigma", "restart", "log_frac_on"]
    assert pulse[SEVERITY] == ["intercept"]  # 10 mg: log(10/10) = 0; no prophylaxis
    ritux = terms_used(load_scenario("configs/with_rituximab.yaml"), every)
    assert "anti_cd20" in ritux["flare"] and "restart" not in ritux["flare"]
    slow = terms_used(load_scenario(SLOW_CFG), every)
    assert {"log_dose", "rise", "log_frac_on"} <= set(slow["flare"])


@pytest.mark.slow  # end to end; the fast suite has tests/pipeline/test_run_imports.py (issue 22.12)
def test_run_with_mirror_and_caveats_imports_neither_pymc_pytensor_nor_arviz(posterior_workdir):
    """The mirrored trial's predictions (model/predictive.py) and the caveats (prior and
    posterior groups read with h5py) keep `run` free of the fit's libraries."""
    from helpers import assert_leaves_unimported

    _posterior_with_prior(posterior_workdir, ratio_elderly=0.95)
    code = (
        "from lenasim.cli import main\n"
        "rc = main(['run', 'configs/pulse_21of42.yaml', '--draws', '10', '--patients', '30',"
        " '--quiet', '--no-plots'])\n"
        "assert rc == 0, rc\n"
    )
    assert_leaves_unimported(code, ("pymc", "pytensor", "arviz"), cwd=posterior_workdir)
    out = posterior_workdir / "results/pulse_21of42"
    assert (out / "mirrored.csv").is_file() and (out / "caveats.json").is_file()


def test_the_report_carries_the_decision_the_mirror_and_the_caveats(posterior_workdir, capsys):
    import re
    from html import unescape

    from lenasim.outputs.judgements.caveats import write_validation_record

    write_validation_record(Path("models/default.yaml"), _validation_summary(0.76),
                            {"loto": True, "prior_sensitivity": True})  # fmt: skip
    # report.html is written (plots on), its text checked: no figure is drawn (~0.5 s)
    import lenasim.commands.run as run_command
    from lenasim.outputs.figures import run as run_figures
    from lenasim.outputs.report import run as run_page

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_command, "can_fork", lambda: False)  # no plot child
        mp.setattr(run_figures, "scenario_plots", lambda *a, **k: None)
        mp.setattr(run_page, "later_images", lambda *a, **k: [])  # no <img>
        mp.setattr(run_page, "fill_images", lambda html, *a, **k: html)
        cmd_run(args(SLOW_CFG, no_plots=False))
    terminal = capsys.readouterr().out
    html = (posterior_workdir / "results/slow_escalation/report.html").read_text()
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    text = " ".join(text.split())
    for needle in ("Risk limits", "Tumor lysis syndrome in each of cycles 1-12 <= 2%",
                   "P(risk > limit)", "Summary", "Caveat: The trials cannot rank these schedules",
                   "The mirrored trial", "Chen CI et al., J Clin Oncol 2011",
                   "the 90% intervals held 76% of 42 held-out figures",
                   "Setting: previously untreated CLL", "Partner drugs: none",
                   "On grade 3-4 neutropenia: hold the rest of the cycle",
                   "Escalation only while tolerated"):  # fmt: skip
        assert needle in text, needle
    for internal in ("seed 00", "evidence notes", "evidence-notes.md", ".txt"):
        assert internal not in text, internal
    # the headline rows in the terminal's order
    order = ["Tumor flare (any grade)", "Tumor flare grade >= 3", "Tumor lysis syndrome",
             "Grade 3-4 neutropenia"]  # fmt: skip
    head = text[text.index("Headline numbers") : text.index("Risk limits")]
    assert sorted(order, key=head.index) == order
    rows = terminal.splitlines()[3:7]
    assert [next(t for t in order if line.startswith(t)) for line in rows] == order


def test_diagnostics_are_a_table_against_the_gate():
    from lenasim.outputs.judgements.words import diagnostics_rows, sampler_words

    attrs = {"diagnostics": json.dumps({"max_rhat": 1.02, "max_rhat_at": "tau",
                                        "min_ess_bulk": 801.7, "min_ess_tail": 905.2,
                                        "divergences": 0}),
             "sampler": json.dumps({"backend": "nutpie", "draws": 1000, "tune": 1000,
                                    "chains": 4, "target_accept": 0.95})}  # fmt: skip
    rows = {r["measure"]: (r["value"], r["ok"]) for r in diagnostics_rows(attrs)}
    assert rows == {"Largest R-hat (tau)": ("1.020", False), "Smallest bulk ESS": ("802", True),
                    "Smallest tail ESS": ("905", True), "Divergent transitions": ("0", True)}  # fmt: skip
    assert sampler_words(attrs) == ("nutpie, 4 chains x 1000 draws after 1000 tuning steps "
                                    "(target acceptance 0.95)")  # fmt: skip


def test_mirrored_predictions_are_for_a_new_trial():
    """With a between-trial SD tau, a new trial's count is a mixture over its trial effect
    u ~ N(0, tau) of Binomial(n, expit(a + u)): its quantiles by Gauss-Hermite (60 nodes,
    here); the mirror's, from 4 effects per draw x 500 draws, agree to one patient."""
    from lenasim.outputs.judgements.mirror import mirrored_rows

    tau = 1.5
    terms = {"flare": (), "tls": (), "neutropenia": (), SEVERITY: ()}
    d = make_draws(500, tau=tau, sigma=None, spread=0.0, terms=terms, intercept={"flare": 0.5})
    df, _ = mirrored_rows(["aue_10mg"], synthetic(d), "models/default.yaml")
    df = df.to_pandas()
    r = df[(df["unit"] == "cycle_k") & (df["cycles"] == 1)].iloc[0]  # 26 of 33
    z, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    pmf = w @ stats.binom.pmf(
        np.arange(r.n + 1)[None, :], r.n, special.expit(0.5 + tau * z)[:, None]
    )
    cdf = np.cumsum(pmf)
    for col, q in (("pred_q05", 0.05), ("pred_q95", 0.95)):
        exact = np.searchsorted(cdf, q) / r.n
        assert abs(r[col] - exact) <= 1 / r.n + 1e-12, (col, r[col], exact)
    typical = stats.binom.ppf([0.05, 0.95], r.n, special.expit(0.5)) / r.n
    assert r.pred_q95 - r.pred_q05 > 2 * (typical[1] - typical[0])


def test_mostly_prior_sees_a_shift_not_only_a_contraction():
    """Issue 22 item 5. A parameter the data moved (neutropenia's frailty SD in the
    shipped fit: prior mean 0.77, SD 0.59; posterior mean 2.12, SD 0.75, so a wider
    posterior) is not flagged; one they did not move (same law as the prior) is, and so is
    one they narrowed by less than 30% without a shift. 4000 draws: the overlap estimate
    is within about 0.02 of its value (see overlap_threshold)."""
    from lenasim.outputs.judgements.caveats import overlap, overlap_threshold

    rng = np.random.default_rng(3)
    prior = np.abs(rng.normal(0, 1, 4000))  # half-normal(1): mean 0.8, SD 0.6
    moved = rng.normal(2.12, 0.75, 4000)
    same = np.abs(rng.normal(0, 1, 4000))
    narrowed = rng.normal(0, 0.9, 4000)
    cut = overlap_threshold(4000, 4000)
    assert np.std(moved) / np.std(prior) > 1.2  # the SD ratio alone would flag it
    assert overlap(prior, moved) < cut - 0.2
    assert overlap(prior, same) > cut + 0.05
    assert overlap(rng.normal(0, 1, 4000), narrowed) > cut + 0.03
    assert overlap(rng.normal(0, 1, 4000), rng.normal(0, 0.5, 4000)) < cut - 0.1


def test_the_shipped_posterior_does_not_call_the_neutropenia_frailty_mostly_prior():
    from lenasim.model.posterior import load_group_draws
    from lenasim.outputs.judgements.caveats import prior_dominance

    repo = Path(__file__).resolve().parents[2]
    prior = load_group_draws(repo / "models/default.nc", "prior")
    post = load_group_draws(repo / "models/default.nc", "posterior")
    used = {"neutropenia": ["sigma", "elderly"], "tls": ["log_dose"]}
    rows = {(r["block"], r["param"]): r for r in prior_dominance(prior, post, used)}
    sigma = rows[("neutropenia", "sigma")]
    assert sigma["ratio"] > 1 and sigma["overlap"] < sigma["threshold"]  # moved: not flagged
    elderly = rows[("neutropenia", "elderly")]  # no trial arm informs it much
    assert elderly["overlap"] >= elderly["threshold"]


def test_every_event_and_term_has_words_and_a_new_term_is_flagged(posterior_workdir):
    """Issue 20 item 3 in outputs: the caveats' words cover the vocabulary (a new term or
    event without words fails here), and a term the features do not know is counted as
    used, so a new covariate is flagged as mostly prior rather than skipped."""
    from lenasim.core.vocabulary import OUTPUT_EVENTS, TERMS, TITLES
    from lenasim.outputs.judgements.caveats import PARAM_WORDS, terms_used
    from lenasim.simulation.scenario import load_scenario

    assert set(TERMS) <= set(PARAM_WORDS), sorted(set(TERMS) - set(PARAM_WORDS))
    assert set(OUTPUT_EVENTS) <= set(TITLES)
    used = terms_used(load_scenario(SLOW_CFG), {"flare": ("log_dose", "crcl_new")})
    assert "crcl_new" in used["flare"]
