"""Issue 24, item 3: "every other day" in the regimen language, on the shipped posterior.

How it enters the risk model (lenasim.core.exposure): the dose terms see the average
exposure a day over the days the doses cover, so 15 mg every other day is 7.5 mg daily
under the logit link (half-life 3-4 h, AUC proportional to dose: Chen et al., Cancer
Chemother Pharmacol 2012). Tolerances: the schedules are simulated on common random numbers
(same seed, draws, patients) and the Rao-Blackwellised per-cycle risks of a draw are a
function of the hazard features alone, so equal features give equal risks to the bit, and
the dose slopes are positive in every draw of the shipped model (monotone exposure-response),
so the ordering holds draw by draw: no Monte Carlo tolerance is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from lenasim.core.regimen import Regimen
from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.simulation.engine import simulate
from lenasim.simulation.scenario import load_scenario, scenario_from_mapping
from lenasim.simulation.streams import select_draws

ROOT = Path(__file__).resolve().parents[2]
LABEL = ROOT / "configs" / "patients" / "renal_label.yaml"
N_DRAWS, N_PAT = 40, 300


@pytest.fixture(scope="module")
def risks():
    """Cycle-1 and cycle-2 per-cycle risks (draw, event, cycle) of 28-day cycles on
    days 1-28: 5, 7.5 and 15 mg daily, and 15 mg every other day."""
    from lenasim.pipeline.posterior import ensure_posterior

    post = ensure_posterior(DEFAULT_SPEC, quiet=True)
    sc = load_scenario(ROOT / "configs" / "standard_25mg.yaml")
    idx = select_draws(post.draws.n_draws, N_DRAWS, sc.seed)
    draws = post.draws.take(idx)
    out = {}
    for name, mg, dosing in (("5 daily", 5, "daily"), ("7.5 daily", 7.5, "daily"),
                             ("15 daily", 15, "daily"), ("15 eod", 15, "every_other_day")):  # fmt: skip
        reg = Regimen(cycle_days=28, days_on=(1, 28), start_mg=mg, dosing=dosing, cycles=2)
        ds = simulate(reg.expand(), sc.population, sc.rules, draws, n_patients=N_PAT,
                      seed=sc.seed, posterior_index=idx)  # fmt: skip
        out[name] = ds
    return out


def test_15mg_every_other_day_lies_between_5_and_15mg_daily(risks):
    lo = risks["5 daily"]["per_cycle"].sel(cycle=1)
    mid = risks["15 eod"]["per_cycle"].sel(cycle=1)
    hi = risks["15 daily"]["per_cycle"].sel(cycle=1)
    for ev in ("flare", "tls", "neutropenia"):  # monotone dose slopes: draw by draw
        a, b, c = (x.sel(event=ev).values for x in (lo, mid, hi))
        assert np.all(a < b) and np.all(b < c), ev
    assert np.all(lo.mean("draw") < mid.mean("draw"))  # grade >= 3 flare too, on average
    assert np.all(mid.mean("draw") < hi.mean("draw"))


def test_equal_average_daily_exposure_equals_the_daily_schedule(risks):
    """Logit link: 15 mg every other day = 7.5 mg daily, every risk of every cycle."""
    eod, daily = risks["15 eod"], risks["7.5 daily"]
    for v in ("per_cycle", "per_cycle_sampled", "cumulative", "share_stopped",
              "dose_intensity"):  # fmt: skip
        np.testing.assert_array_equal(eod[v].values, daily[v].values, err_msg=v)
    # the dose on the days a dose is taken is what a patient swallows
    assert float(eod["dose_mean_mg"].sel(cycle=1).mean()) == pytest.approx(15)
    assert float(daily["dose_mean_mg"].sel(cycle=1).mean()) == pytest.approx(7.5)


def test_the_label_config_gives_every_other_day_below_crcl_30():
    """configs/patients/renal_label.yaml: the EU SmPC's bands (CrCl < 15 standing in for
    end-stage disease, an assumption the config states)."""
    sc = load_scenario(LABEL)
    bands = {b.crcl_below: b.regimen for b in sc.renal_dosing}
    assert sorted(bands) == [15, 30, 50]
    assert (bands[30].dosing, bands[30].start_mg) == ("every_other_day", 15)
    assert (bands[50].dosing, bands[50].start_mg) == ("daily", 10)
    assert (bands[15].dosing, bands[15].start_mg) == ("daily", 5)
    assert sc.regimen.start_mg == 25 and sc.regimen.dosing == "daily"
    text = sc.regimen_text()  # the run's title and report say every band's schedule
    assert text.startswith("CrCl >= 50: 25 mg/day days 1-21 of 28-day cycles")
    assert "; CrCl 15-30: 15 mg every other day, days 1-21 of 28-day cycles" in text


def test_a_bad_dosing_is_refused_in_words():
    from lenasim.core.errors import ConfigError

    doc = yaml.safe_load(LABEL.read_text())
    doc["renal_dosing"][1]["regimen"]["dosing"] = "every other day"
    with pytest.raises(ConfigError, match=r"x.yaml: .*dosing.*every_other_day"):
        scenario_from_mapping(doc, "x.yaml")


def test_the_label_dose_below_crcl_30_brings_risks_close_to_normal_function():
    """Numbers that make sense (issue 24, item 7): at CrCl 26 mL/min (70 y, 70 kg, serum
    creatinine 3.0), the label's 15 mg every other day (days 1-21) gives cycle-1 risks
    within half the gap that the unadjusted 25 mg daily opens against a patient of normal
    function (CrCl 98) on 25 mg daily (paired draws, 3 Monte Carlo SEs of the mean)."""
    from helpers import assert_closer_than_half
    from lenasim.pipeline.posterior import ensure_posterior
    from lenasim.simulation.population import patient, simulate_profiles

    post = ensure_posterior(DEFAULT_SPEC, quiet=True)
    sc = load_scenario(ROOT / "configs" / "standard_25mg.yaml")
    idx = select_draws(post.draws.n_draws, N_DRAWS, sc.seed)
    draws = post.draws.take(idx)
    full = Regimen(cycle_days=28, days_on=(1, 21), start_mg=25, cycles=2)
    label = Regimen(cycle_days=28, days_on=(1, 21), start_mg=15, dosing="every_other_day",
                    cycles=2)  # fmt: skip
    normal = patient(age=70, weight_kg=70, creatinine_mg_dl=0.8, sex="M")
    severe = patient(age=70, weight_kg=70, creatinine_mg_dl=3.0, sex="M")

    def cycle1(prof, reg):
        ds = simulate_profiles(reg.expand(), sc.population, sc.rules, draws, prof, seed=sc.seed,
                               posterior_index=idx, n_patients=N_PAT)  # fmt: skip
        return ds["per_cycle"].sel(cycle=1, event=["flare", "tls", "neutropenia"]).values

    r_normal, r_full, r_label = cycle1(normal, full), cycle1(severe, full), cycle1(severe, label)
    assert np.all(r_full > r_normal)  # at equal mg, risk rises as CrCl falls (every draw)
    assert_closer_than_half(r_label - r_normal, r_full - r_normal)


def test_the_patient_command_gives_the_patient_their_crcl_bands_regimen_first(capsys):
    import json

    from lenasim.cli import main

    argv = ["patient", str(LABEL), "--age", "70", "--creatinine", "3.0", "--weight", "70",
            "--sex", "M", "--draws", "20", "--json"]  # fmt: skip
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert [s["source"] for s in r["schedules"]] == ["renal_dosing: CrCl < 30 mL/min", "regimen"]
    assert r["schedules"][0]["regimen"].startswith("15 mg every other day, days 1-21")
    c1 = [[x["per_cycle"]["mean"] for x in s["risks"] if x["cycle"] == 1] for s in r["schedules"]]
    assert np.all(np.array(c1[0]) < np.array(c1[1]))  # 7.5 mg a day of exposure against 25
    assert main(argv[:-1]) == 0  # the text says which regimen each block is
    assert "renal_dosing: CrCl < 30 mL/min: 15 mg every other day" in capsys.readouterr().out
