"""Issue 24 items 1, 2, 4 and 7: virtual patients with characteristics (distributions or a
CSV cohort), the renal exposure factor and the prior-only tumour terms, on the shipped
posterior (a 60-draw copy, conftest) and the shipped configs.

Statistical tolerances: the comparisons are paired (common random numbers: the same
frailties, uniforms and prior-term draws in every arm), and the Rao-Blackwellised risks
per draw move monotonically with a term whose coefficient is positive in every draw (the
dose slopes are monotone in the shipped model; theta is log-normal), so those assertions
hold draw by draw, without Monte Carlo tolerance. The bulky term's prior puts 12% of its
mass below 0, so that comparison is on the mean over draws against 3 Monte Carlo SEs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import assert_closer_than_half
from lenasim.core.errors import ConfigError
from lenasim.core.regimen import Regimen
from lenasim.core.renal import cockcroft_gault, log_exposure_factor
from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.simulation.population import (
    Characteristics,
    patient,
    prior_terms,
    profiles_of,
    read_cohort,
    simulate_profiles,
    simulate_scenario,
)
from lenasim.simulation.scenario import load_scenario, scenario_from_mapping
from lenasim.simulation.streams import select_draws

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["standard_25mg.yaml", "elderly_5mg_escalation.yaml", "pulse_21of42.yaml"]
N_DRAWS, N_PAT = 40, 400


@pytest.fixture(scope="module")
def post():
    from lenasim.pipeline.posterior import ensure_posterior

    return ensure_posterior(DEFAULT_SPEC, quiet=True)


def _draws(post, seed):
    idx = select_draws(post.draws.n_draws, N_DRAWS, seed)
    return post.draws.take(idx), idx


def _run(sc, post, prof, regimen=None):
    d, idx = _draws(post, sc.seed)
    reg = (regimen or sc.regimen).expand()
    return simulate_profiles(reg, sc.population, sc.rules, d, prof, seed=sc.seed,
                             posterior_index=idx, n_patients=N_PAT)  # fmt: skip


@pytest.mark.parametrize("name", SHIPPED)
def test_reference_patients_equal_todays_results_byte_for_byte(post, name):
    sc = load_scenario(ROOT / "configs" / name)
    d, idx = _draws(post, sc.seed)
    today = simulate_scenario(sc, d, n_patients=N_PAT, posterior_index=idx)
    ref = _run(sc, post, patient())
    for v in ("per_cycle", "per_cycle_sampled", "cumulative", "dose_mean_mg", "share_stopped"):
        assert np.array_equal(today[v].values, ref[v].values, equal_nan=True), v


def test_cockcroft_gault_and_the_exposure_factor():
    # (140 - 74) * 68 / (72 * 1.4) * 0.85 = 37.85 mL/min
    assert cockcroft_gault(74, 68, 1.4, True) == pytest.approx(37.845, abs=1e-3)
    f = np.exp(log_exposure_factor([120, 80, 65, 40, 10, 5]))
    assert f == pytest.approx([1.0, 1.0, 1.21, 2.85, 5.2, 5.2])  # Chen 2007's AUC ratios
    assert np.all(np.diff(np.exp(log_exposure_factor(np.linspace(5, 120, 50)))) <= 0)


def test_risk_rises_as_crcl_falls_at_equal_mg(post):
    sc = load_scenario(ROOT / "configs" / "standard_25mg.yaml")
    risks = []
    for creat in (0.8, 1.2, 1.8, 3.0):  # CrCl 98, 65, 44, 26 mL/min at 70 y, 70 kg, male
        prof = patient(age=70, weight_kg=70, creatinine_mg_dl=creat, sex="M")
        risks.append(_run(sc, post, prof)["per_cycle"].sel(cycle=1).values)  # (S, event)
    for lo, hi in zip(risks, risks[1:]):
        assert np.all(hi >= lo - 1e-12)  # draw by draw, every event
    assert np.all(risks[-1].mean(0) > risks[0].mean(0))


def test_renal_dose_reduction_brings_the_moderate_band_close_to_normal(post):
    """ORIGIN (CC-5013-CLL-008): CrCl >= 60 start 5 mg, CrCl 30-60 start 2.5 mg."""
    sc = load_scenario(ROOT / "configs" / "standard_25mg.yaml")
    full = Regimen(cycle_days=28, days_on=(1, 28), start_mg=5, cycles=2)
    half = Regimen(cycle_days=28, days_on=(1, 28), start_mg=2.5, cycles=2)
    normal = patient(age=70, weight_kg=70, creatinine_mg_dl=0.8, sex="M")  # CrCl 98
    moderate = patient(age=70, weight_kg=70, creatinine_mg_dl=1.6, sex="M")  # CrCl 49
    events = ["flare", "tls", "neutropenia"]
    r_normal = _run(sc, post, normal, full)["per_cycle"].sel(cycle=1, event=events).values
    r_full = _run(sc, post, moderate, full)["per_cycle"].sel(cycle=1, event=events).values
    r_half = _run(sc, post, moderate, half)["per_cycle"].sel(cycle=1, event=events).values
    # paired draws; within half the unadjusted gap, by 3 Monte Carlo SEs of the mean
    assert_closer_than_half(r_half - r_normal, r_full - r_normal)


def test_bulky_patients_flare_more(post):
    sc = load_scenario(ROOT / "configs" / "standard_25mg.yaml")
    small = _run(sc, post, patient(node_cm=2))["per_cycle"].sel(cycle=1, event="flare").values
    bulky = _run(sc, post, patient(node_cm=6))["per_cycle"].sel(cycle=1, event="flare").values
    diff = bulky - small
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(diff.size)


def test_prior_terms_are_keyed_by_the_draw():
    a = prior_terms(5, np.array([3, 7, 11]))
    b = prior_terms(5, np.array([11, 3]))
    assert a["theta"][[2, 0]] == pytest.approx(b["theta"])
    assert np.all(a["theta"] > 0)


def test_distributions_give_a_latin_hypercube_of_profiles():
    ch = Characteristics.model_validate(
        {"age": {"mean": 72, "sd": 8}, "weight_kg": {"mean": 75, "sd": 12},
         "creatinine_mg_dl": {"median": 1.1, "gsd": 1.3}, "female_share": 0.4,
         "node_cm": {"median": 3, "gsd": 1.8}, "alc": {"median": 40, "gsd": 2.5}}
    )  # fmt: skip
    p = profiles_of(ch, seed=1)
    assert p.k == 32 and p.probs.sum() == pytest.approx(1)
    assert np.isfinite(p.crcl).all() and 20 < np.median(p.crcl) < 90
    assert 0 < p.terms()["bulky"].mean() < 1
    assert np.array_equal(profiles_of(ch, seed=1).crcl, p.crcl)


def _config(tmp_path, characteristics):
    doc = yaml.safe_load((ROOT / "configs" / "standard_25mg.yaml").read_text())
    doc["population"]["characteristics"] = characteristics
    doc.pop("mirrors")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    "characteristics, words",
    [
        ({"age": {"mean": 70}, "weight_kg": {"mean": 70}, "creatinine_mg_dl": {"median": -1}},
         "population.characteristics.creatinine_mg_dl.median"),
        ({"node_cm": {"median": 300}}, "node_cm: a centre of 300 cm is outside"),
        ({"creatinine_mg_dl": {"median": 1.0}}, "needs age and weight_kg"),
        ({"age": {"mean": 70, "sd": -2}}, "population.characteristics.age"),
    ],
)  # fmt: skip
def test_bad_characteristics_are_refused_naming_file_and_key(tmp_path, characteristics, words):
    path = _config(tmp_path, characteristics)
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and words in str(err.value)


COHORT = "age,sex,weight_kg,creatinine_mg_dl,alc,node_cm\n70,F,60,1.1,30,2\n65,M,80,0.9,90,6\n"


def test_a_cohort_csv_is_resampled_relative_to_the_config(tmp_path, post):
    (tmp_path / "clinic.csv").write_text(COHORT)
    sc = load_scenario(_config(tmp_path, {"csv": "clinic.csv"}))
    prof = read_cohort(sc.population.characteristics.csv)
    assert prof.k == 2 and prof.crcl[0] == pytest.approx(cockcroft_gault(70, 60, 1.1, True))
    d, idx = _draws(post, sc.seed)
    ds = simulate_scenario(sc, d, n_patients=N_PAT, posterior_index=idx)
    assert np.isfinite(ds["cumulative"].values).all()


@pytest.mark.parametrize(
    "text, words",
    [
        ("age,sex,weight_kg,creatinine_mg_dl,alc\n70,F,60,1.1,30\n", "column node_cm is missing"),
        (COHORT + "71,F,60,-1.0,30,2\n", "row 4, column creatinine_mg_dl: -1 mg/dL is outside"),
        (COHORT + "71,F,60,1.0,30,300\n", "row 4, column node_cm: 300 cm is outside"),
        (COHORT + "71,X,60,1.0,30,3\n", "row 4, column sex: 'X' is not F or M"),
        (COHORT + "71,F,sixty,1.0,30,3\n", "row 4, column weight_kg: 'sixty' is not a number"),
    ],
)  # fmt: skip
def test_a_bad_cohort_is_refused_naming_file_column_and_row(tmp_path, text, words):
    path = tmp_path / "clinic.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        read_cohort(path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_population_without_characteristics_is_unchanged():
    doc = yaml.safe_load((ROOT / "configs" / "standard_25mg.yaml").read_text())
    sc = scenario_from_mapping(doc)
    assert sc.population.characteristics is None


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "patients").glob("*.yaml")))
def test_patient_example_configs_load(path):
    sc = load_scenario(path)
    assert sc.name == path.stem and sc.population.characteristics is not None
    assert sc.posterior.spec.is_file()


ORIGIN = ROOT / "configs" / "patients" / "renal_origin.yaml"


def test_patient_command_json_gives_every_start_with_intervals(capsys):
    from lenasim.cli import main

    argv = ["patient", str(ORIGIN), "--age", "74", "--creatinine", "1.4", "--weight", "68",
            "--sex", "F", "--node-cm", "6", "--alc", "80", "--draws", "20", "--json"]  # fmt: skip
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert [s["start_mg"] for s in r["schedules"]] == [5, 2.5, 10]
    assert r["drivers"]["crcl_band"] == "30-60" and r["drivers"]["bulky"] is True
    assert "priors" in r["drivers"]["prior_only"]
    f = r["drivers"]["exposure_factor"]
    assert f["q05"] < f["q50"] < f["q95"] and f["q50"] > 2  # CrCl 37.8: about 3x
    for s in r["schedules"]:
        for x in s["risks"]:
            assert (
                0 <= x["per_cycle"]["q05"] <= x["per_cycle"]["mean"] <= x["per_cycle"]["q95"] <= 1
            )
    # cycle-1 risks rise with the starting dose, every event
    c1 = {s["start_mg"]: [x["per_cycle"]["mean"] for x in s["risks"] if x["cycle"] == 1]
          for s in r["schedules"]}  # fmt: skip
    assert np.all(np.array(c1[2.5]) < np.array(c1[5])) and np.all(np.array(c1[5]) < c1[10])


def test_patient_command_reads_a_yaml_and_prints_text(tmp_path, capsys):
    from lenasim.cli import main

    f = tmp_path / "p.yaml"
    f.write_text("age: 60\nsex: M\nweight_kg: 80\ncreatinine_mg_dl: 0.9\nnode_cm: 2\n")
    assert main(["patient", str(ORIGIN), "--patient", str(f), "--draws", "10"]) == 0
    out = capsys.readouterr().out
    assert "PRIOR-DOMINATED" in out and "band >=60" in out and "start 2.5 mg" in out


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--creatinine", "-1", "--age", "70", "--weight", "60"], "creatinine_mg_dl: -1.0 is outside"),
        (["--node-cm", "300"], "node_cm: 300.0 is outside the plausible range 0 to 30 cm"),
        (["--sex", "X"], "sex: 'X' is not F or M"),
        (["--creatinine", "1.0"], "creatinine needs age and weight"),
    ],
)  # fmt: skip
def test_patient_command_refuses_bad_values_in_words(capsys, extra, words):
    from lenasim.cli import main

    assert main(["patient", str(ORIGIN), "--draws", "5", *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


ADJUSTED = ROOT / "configs" / "patients" / "renal_origin_adjusted.yaml"


def test_mixing_groups_is_exact_for_identical_groups(post):
    from lenasim.simulation.population import mix

    sc = load_scenario(ORIGIN)
    ds = _run(sc, post, patient(age=70))
    m = mix([ds, ds], [0.3, 0.7])
    for v in ("per_cycle", "cumulative", "dose_mean_mg", "share_on", "share_stopped"):
        np.testing.assert_allclose(m[v].values, ds[v].values, rtol=1e-12, equal_nan=True)


@pytest.mark.slow  # statistical (issue 22.12)
def test_a_population_split_by_renal_band_mixes_back_to_the_whole(post):
    """The same regimen in every band: the mixture of the bands' cohorts estimates the
    whole population's risks (different cohorts: compared within 4 Monte Carlo SEs of the
    paired difference over draws)."""
    from lenasim.simulation.population import simulate_population

    sc = load_scenario(ADJUSTED)
    same = sc.model_copy(update={"renal_dosing": [
        b.model_copy(update={"regimen": sc.regimen}) for b in sc.renal_dosing]})  # fmt: skip
    d, idx = _draws(post, sc.seed)
    split = simulate_population(same, d, n_patients=N_PAT, posterior_index=idx)
    whole = simulate_population(sc.model_copy(update={"renal_dosing": []}), d,
                                n_patients=N_PAT, posterior_index=idx)  # fmt: skip
    for v in ("per_cycle", "cumulative"):
        diff = (split[v] - whole[v]).isel(cycle=[0, -1]).values  # (S, event, 2)
        se = diff.std(axis=0, ddof=1) / np.sqrt(diff.shape[0])
        assert np.all(np.abs(diff.mean(axis=0)) < 4 * se + 1e-3), v


def test_renal_dosing_needs_crcl_and_the_same_cycles(tmp_path):
    doc = yaml.safe_load(ADJUSTED.read_text())
    doc["renal_dosing"][0]["regimen"]["cycles"] = 6
    with pytest.raises(ConfigError, match=r"renal_dosing\[0\].regimen has 6 cycles"):
        scenario_from_mapping(doc, "x.yaml")
    doc = yaml.safe_load(ADJUSTED.read_text())
    del doc["population"]["characteristics"]["creatinine_mg_dl"]
    with pytest.raises(ConfigError, match="x.yaml: .*renal_dosing needs the patients' CrCl"):
        scenario_from_mapping(doc, "x.yaml")


@pytest.mark.slow  # statistical, two runs at scale (issue 22.12)
def test_run_reports_risks_by_subgroup_and_renal_adjustment_helps_the_moderate_band(post):
    from lenasim.pipeline.run import simulate_run

    tables = {}
    for path in (ORIGIN, ADJUSTED):
        doc = yaml.safe_load(path.read_text())
        doc["posterior"] = {"spec": str(DEFAULT_SPEC), "draws": 30}
        doc["population"]["patients"] = 200
        res = simulate_run(doc, post)
        tables[path.stem] = res.subgroups.set_index(["subgroup", "level", "event"])
    t = tables["renal_origin"]
    assert set(t.index.get_level_values("subgroup")) == {"crcl_band", "age_band", "bulky"}
    assert t["prior_dominated"].all()
    a = tables["renal_origin_adjusted"]
    for ev in ("flare", "tls", "neutropenia"):
        normal = t.loc[("crcl_band", ">=60", ev), "cycle1_mean"]
        full = t.loc[("crcl_band", "30-60", ev), "cycle1_mean"]
        adjusted = a.loc[("crcl_band", "30-60", ev), "cycle1_mean"]
        assert full > normal and abs(adjusted - normal) < 0.5 * (full - normal), ev
    assert a.loc[("crcl_band", ">=60", "tls"), "cycle1_mean"] == pytest.approx(
        t.loc[("crcl_band", ">=60", "tls"), "cycle1_mean"], rel=1e-12)  # fmt: skip


def test_the_caveats_flag_the_patient_terms_as_prior_only(post):
    from lenasim.pipeline.run import simulate_run

    doc = yaml.safe_load(ORIGIN.read_text())
    doc["posterior"] = {"spec": str(DEFAULT_SPEC), "draws": 10}
    doc["population"]["patients"] = 50
    doc["regimen"]["cycles"] = 2  # the caveats name the config's terms, not its cycles (~0.3 s)
    labels = [r["label"] for r in simulate_run(doc, post).caveats.prior_dominated]
    assert any("renal exposure factor" in x for x in labels)
    assert any("tls: node >= 5 cm" in x for x in labels) and any("flare: age" in x for x in labels)
