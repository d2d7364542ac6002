"""The design simulator end to end and its parts: follow-up, accrual and backfill, common
random numbers across candidates and designs, the decision table, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from builders import make_draws
from lenasim.cli import main
from lenasim.core.regimen import Regimen
from lenasim.design.config import load_design
from lenasim.design.rules import Boin, ThreePlusThree
from lenasim.design.simulate import decision_table
from lenasim.design.trial import Outcomes, TrialDesign, observe, run_trial
from lenasim.design.truth import (
    arrivals_rng,
    dose_level_outcomes,
    new_trial_truths,
    schedule_outcomes,
)
from lenasim.simulation.scenario import Population, Rules


def _one_cycle(events: list[int]) -> Outcomes:
    ev = np.asarray(events, np.int8)[:, None, None, None]
    return Outcomes(ev, np.array([[28.0]]), np.full((len(events), 1), np.nan))


def test_observe_counts_partial_follow_up_and_sees_events_at_mid_cycle():
    out = _one_cycle([0, 1])
    cand, when = np.array([0, 0]), np.array([0.0, 0.0])
    early = observe(out, cand, when, 7.0)  # a quarter of the cycle
    assert early.events[0, 0, 0] == 0 and early.exposure[0, 0, 0] == pytest.approx(0.5)
    mid = observe(out, cand, when, 14.0)  # the event is seen; the other patient half-followed
    assert mid.events[0, 0, 0] == 1 and mid.exposure[0, 0, 0] == pytest.approx(0.5)
    assert mid.n_complete[0] == 0
    done = observe(out, cand, when, 28.0)
    assert done.n_complete[0] == 2 and done.dlt_complete[0] == 1


def test_backfill_goes_below_the_current_candidate_within_its_cap():
    design = TrialDesign(cohort_size=3, max_patients=24, followup_days=28,
                         accrual_per_28_days=6, backfill_max=2)  # fmt: skip
    for t in range(30):
        out = dose_level_outcomes([0.0, 0.05, 0.1, 0.6], 24, seed=2, trial=t)
        rec = run_trial(out, design, ThreePlusThree(), arrivals_rng(2, t))
        back = rec.candidate[rec.backfill]
        assert np.all(np.bincount(back, minlength=4) <= 2)
        for i in np.flatnonzero(rec.backfill):  # below the candidate of the cohort before it
            main_before = rec.candidate[:i][~rec.backfill[:i]]
            assert rec.candidate[i] < main_before[-1]
        assert np.all(np.diff(rec.enrolled_at) >= 0)


def test_slower_accrual_means_longer_trials_on_the_same_patients():
    fast = TrialDesign(3, 18, accrual_per_28_days=12)
    slow = TrialDesign(3, 18, accrual_per_28_days=2)
    for t in range(10):
        out = dose_level_outcomes([0.05, 0.1, 0.2], 18, seed=4, trial=t)
        a = run_trial(out, fast, ThreePlusThree(), arrivals_rng(4, t))
        b = run_trial(out, slow, ThreePlusThree(), arrivals_rng(4, t))
        assert a.selected == b.selected  # same patients, a rule without time
        assert b.duration > a.duration


def _schedules():
    regs = [Regimen(cycle_days=28, days_on=(1, 21), start_mg=mg, cycles=3) for mg in (5, 10, 25)]
    return [r.expand() for r in regs]


def test_patients_are_the_same_on_every_candidate_list():
    """Patient n of trial t has the same outcomes on a candidate whatever the other
    candidates (common random numbers by the engine's keyed streams)."""
    pop = Population(setting="untreated")
    rules = Rules(on_tls="discontinue")
    draws = make_draws(30)
    truths = new_trial_truths(draws, 4, seed=9)
    sch = _schedules()
    both = schedule_outcomes(sch, pop, rules, truths, 6, seed=9)
    alone = schedule_outcomes(sch[2:], pop, rules, truths, 6, seed=9)
    assert np.array_equal(both.events[:, :, 2], alone.events[:, :, 0])
    other = schedule_outcomes(sch[2:], pop, rules, truths, 6, seed=10)
    assert not np.array_equal(other.events, alone.events)
    # Risk rises with the dose on the same patients: more events at 25 mg than at 5 mg.
    assert (both.events[:, :, 2] == 1).sum() > (both.events[:, :, 0] == 1).sum()


def test_decision_table_of_boin_follows_its_boundaries(posterior_workdir):
    cfg = load_design(posterior_workdir / "configs" / "design_untreated.yaml")
    cfg = cfg.model_copy(
        update={"decide": cfg.decide.model_copy(update={"rule": "boin", "target": 0.3})}
    )
    tab = decision_table(cfg, Boin(0.3), [s.expand().cycle_days for s in
                                          (c.regimen for c in cfg.candidates)])  # fmt: skip
    first = tab[tab.event == "tls"].drop_duplicates("cohort_1").set_index("cohort_1")
    names = [c.name for c in cfg.candidates]
    start = names[0]
    assert first.loc[f"0/3 on {start}", "then"] == names[1]  # 0/3 <= 0.236: escalate
    assert first.loc[f"1/3 on {start}", "then"] == names[0]  # stay
    assert first.loc[f"3/3 on {start}", "then"] == "stop (too_toxic)"  # eliminated


def test_decision_table_gives_the_update_a_grade3_flare_as_a_flare(posterior_workdir):
    """The table's cohorts with grade >= 3 flares carry them as flares too (the engine's
    outputs do, and the in-trial update weighs P(grade >= 3 | flare) on the flares seen:
    a grade >= 3 flare without a flare is impossible data, on which the full run's table
    escalated after 3/3 where it stayed after 1/3)."""
    from lenasim.core.vocabulary import OUTPUT_EVENTS
    from lenasim.design.trial import Decision

    class _Seen:
        seen: list = []

        def decide(self, data, current, highest):
            self.seen.append(data)
            return Decision(current)

    cfg = load_design(posterior_workdir / "configs" / "design_untreated.yaml")
    rule = _Seen()
    decision_table(cfg, rule, [c.regimen.expand().cycle_days for c in cfg.candidates])
    f, g3 = OUTPUT_EVENTS.index("flare"), OUTPUT_EVENTS.index("flare_grade3plus")
    assert sum(d.events[:, g3].sum() for d in rule.seen) > 0
    for d in rule.seen:
        assert (d.events[:, f] >= d.events[:, g3]).all()


def _run(tmp: Path, *extra: str) -> Path:
    # 4 trials x 10 draws: no assertion below depends on the size (the file set, byte-equal
    # CSVs across two runs, p_select summing to 1, MCSE >= 0, the truth labels); 15 x 40
    # cost 0.6 s more CPU (issue 22.12).
    code = main(["design", "configs/design_untreated.yaml", "--trials", "4", "--draws", "10",
                 "--results", str(tmp), "--quiet", *extra])  # fmt: skip
    assert code == 0
    return tmp / "design-untreated"


def test_design_command_writes_a_reproducible_folder(posterior_workdir):
    a = _run(posterior_workdir / "r1")
    b = _run(posterior_workdir / "r2", "--no-plots")
    names = {p.name for p in a.iterdir()}
    assert names == {"manifest.json", "operating_characteristics.csv", "trials.csv",
                     "decision_table.csv", "report.md", "selection.png"}  # fmt: skip
    for f in ("operating_characteristics.csv", "trials.csv", "decision_table.csv"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    man = json.loads((a / "manifest.json").read_text())
    assert man["lenasim_result"] == "design" and man["seed"] == 20261207
    oc = pd.read_csv(a / "operating_characteristics.csv")
    for truth, g in oc[oc.quantity == "p_select"].groupby("truth"):
        assert g.value.sum() == pytest.approx(1.0), truth
    assert (oc.mcse.dropna() >= 0).all()
    assert set(oc.truth) == {"new_trial", "p10", "p50", "p90", "tls_odds_x2.7"}
    # A second run into the same folder needs --overwrite.
    assert main(["design", "configs/design_untreated.yaml", "--results",
                 str(posterior_workdir / "r1"), "--quiet", "--trials", "2"]) == 2  # fmt: skip


def test_outcomes_do_not_depend_on_the_chunking(monkeypatch):
    import lenasim.design.truth as truth

    pop, rules, sch = Population(setting="untreated"), Rules(), _schedules()[:2]
    truths = new_trial_truths(make_draws(20), 5, seed=3)
    whole = schedule_outcomes(sch, pop, rules, truths, 4, seed=3)
    monkeypatch.setattr(truth, "_CHUNK_PATIENTS", 8)  # two trials per engine call
    parts = schedule_outcomes(sch, pop, rules, truths, 4, seed=3)
    assert np.array_equal(whole.events, parts.events)
    assert np.array_equal(whole.intensity, parts.intensity)


def test_two_designs_meet_the_same_patients(posterior_workdir):
    """Designs differing only in conduct share every trial's truth (and, by the keyed
    streams tested above, its patients), so their differences are paired."""
    from lenasim.design.simulate import run_design
    from lenasim.model.posterior import load_posterior

    cfg = load_design(posterior_workdir / "configs" / "design_untreated.yaml")
    # 4 trials x 10 draws (12 x 30 cost 0.2 s more): the trials' posterior indices are
    # compared whole, and the designs differ in every trial's cohort size
    cfg = cfg.model_copy(update={"trials": 4, "truths": cfg.truths[:1],
                                 "posterior": cfg.posterior.model_copy(update={"draws": 10})})  # fmt: skip
    other = cfg.model_copy(update={"trial": cfg.trial.model_copy(update={"backfill_max": None,
                                                                         "cohort_size": 2})})  # fmt: skip
    draws = load_posterior(posterior_workdir / "models" / "default.nc").draws
    a, b = run_design(cfg, draws), run_design(other, draws)
    assert np.array_equal(a.trials.posterior_index, b.trials.posterior_index)
    assert not a.trials.equals(b.trials)  # the designs differ


def test_a_user_written_trial_effect_moves_the_truth():
    """kind: trial_effect: the same posterior draws and patients, the TLS logit shifted:
    more TLS at +3 than at -3 on every candidate, the other events unchanged in law
    (here: identical, as TLS is not acted on)."""
    pop, rules, sch = Population(setting="untreated"), Rules(), _schedules()
    draws = make_draws(20)
    up = new_trial_truths(draws, 6, seed=5, effect=np.array([0.0, 3.0, 0.0]))
    down = new_trial_truths(draws, 6, seed=5, effect=np.array([0.0, -3.0, 0.0]))
    assert np.array_equal(up.posterior_index, down.posterior_index)
    a = schedule_outcomes(sch, pop, rules, up, 8, seed=5)
    b = schedule_outcomes(sch, pop, rules, down, 8, seed=5)
    tls = 2  # OUTPUT_EVENTS: flare, flare_grade3plus, tls, neutropenia
    assert (a.events[..., tls, :] == 1).sum() > (b.events[..., tls, :] == 1).sum()
    assert np.array_equal(a.events[..., 0, :], b.events[..., 0, :])


@pytest.mark.parametrize("df", [None, 4.0])
def test_a_folded_trial_effect_reproduces_the_engines_new_trial(df):
    """The percentile truths take a prior draw with the trial effect the engine gave it
    (engine_trial_effect) folded into the intercepts: simulated as `typical`, the same
    draw and patients give the engine's `new_trial` numbers exactly (normal and
    Student-t trial effects)."""
    from dataclasses import replace

    from lenasim.design.prior import engine_trial_effect
    from lenasim.design.truth import fold_trial_effect
    from lenasim.simulation.engine import simulate

    draws = replace(make_draws(5, tau=0.8), trial_df=df)
    idx = np.array([3, 17, 40, 41, 99])
    sch = _schedules()[1]
    pop, rules = Population(setting="untreated"), Rules(on_tls="discontinue")
    ref = simulate(sch, pop, rules, draws, n_patients=50, seed=8, posterior_index=idx)
    folded = fold_trial_effect(draws, engine_trial_effect(draws, idx, seed=8))
    got = simulate(sch, pop, rules, folded, n_patients=50, seed=8, posterior_index=idx,
                   population_effect="typical")  # fmt: skip
    np.testing.assert_allclose(got["per_cycle"].values, ref["per_cycle"].values, rtol=1e-12)
    np.testing.assert_array_equal(got["per_cycle_sampled"].values, ref["per_cycle_sampled"].values)


def test_count_rules_count_only_the_dlt_events():
    """A grade 1-2 event (flare, index 0) is not a DLT when only TLS (index 2) is."""
    ev = np.zeros((3, 1, 4, 1), np.int8)
    ev[:, 0, 0, 0] = 1  # every patient flares
    ev[0, 0, 2, 0] = 1  # one has TLS
    out = Outcomes(ev, np.array([[28.0]]), np.full((3, 1), np.nan))
    cand, when = np.zeros(3, np.int64), np.zeros(3)
    assert observe(out, cand, when, 28.0).dlt_complete[0] == 3
    assert observe(out, cand, when, 28.0, dlt_events=(2,)).dlt_complete[0] == 1


def test_results_do_not_depend_on_the_batches(posterior_workdir):
    """Batches of trials give the bytes of one batch (the keys are the trials' indices);
    this is what makes `--dask` give the in-process results."""
    from lenasim.design.simulate import run_design
    from lenasim.model.posterior import load_posterior

    cfg = load_design(posterior_workdir / "configs" / "design_untreated.yaml")
    # 5 trials (3 batches of 2, the last one short; 8 in batches of 3 cost ~0.3 s more) on
    # 10 draws (30 cost 0.1 s more; the batches split the trials, not the draws)
    cfg = cfg.model_copy(update={"trials": 5, "truths": [cfg.truths[0], cfg.truths[3]],
                                 "posterior": cfg.posterior.model_copy(update={"draws": 10})})  # fmt: skip
    draws = load_posterior(posterior_workdir / "models" / "default.nc").draws
    whole = run_design(cfg, draws)
    parts = run_design(cfg, draws, batch_trials=2)
    pd.testing.assert_frame_equal(whole.trials, parts.trials)
    pd.testing.assert_frame_equal(whole.oc, parts.oc)


@pytest.mark.slow
def test_design_on_dask_gives_the_same_bytes(posterior_workdir):
    a = _run(posterior_workdir / "r1", "--no-plots")
    b = _run(posterior_workdir / "r2", "--no-plots", "--dask", "local", "--workers", "2")
    for f in ("operating_characteristics.csv", "trials.csv", "decision_table.csv"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--draws", "100000"], "posterior.draws: 100000 draws requested"),
     (["--trials", "0"], "--trials: must be >= 1")],
)  # fmt: skip
def test_design_command_refuses_bad_overrides(posterior_workdir, capsys, extra, message):
    assert main(["design", "configs/design_untreated.yaml", "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
