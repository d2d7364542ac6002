"""Scenario configs: the shipped ones load; each bad one fails with a message that
names the file, the key path and (for typos) the closest valid key or value."""

from __future__ import annotations

from pathlib import Path

import pytest

from lenasim.core.errors import ConfigError
from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.simulation.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parents[2]
# Scenario configs: configs/search_*.yaml are search configs (tests/search/test_search_config.py),
# configs/design_*.yaml design configs (tests/design/test_design_config.py).
SHIPPED = sorted(p for p in (REPO / "configs").glob("*.yaml")
                 if not p.name.startswith(("search_", "design_")))  # fmt: skip
BAD = REPO / "tests" / "configs_bad"

# file -> fragments the message must contain (besides the file name)
BAD_CASES = {
    "negative_dose.yaml": ["regimen.start_mg: must be >= 0.5 (got -5)"],
    "days_on_beyond_cycle.yaml": ["regimen.days_on:", "28-day cycle", "<= 28"],
    "target_below_start.yaml": ["regimen.target_mg:", "below start_mg"],
    "unknown_key.yaml": [
        "rules.escalate_only_if_tolerted: unknown key",
        "did you mean 'escalate_only_if_tolerated'?",
    ],
    "unknown_rule.yaml": [
        "rules.on_tls: must be one of continue, hold, reduce, discontinue (got 'reduc')",
        "did you mean 'reduce'?",
    ],
    "zero_patients.yaml": ["population.patients: must be >= 1 (got 0)"],
    "unknown_setting.yaml": ["population.setting:", "did you mean 'untreated'?"],
    "top_level_typo.yaml": ["populaton_effect: unknown key", "did you mean 'population_effect'?"],
    "missing_regimen.yaml": ["regimen: required key is missing"],
    "not_a_mapping.yaml": ["must be a mapping"],
    "python_tag.yaml": ["not valid YAML"],
    "bad_name.yaml": ["name:", "'../escape'"],
    # issue 11: strict YAML and strict types
    "duplicate_key.yaml": ["seed: given twice (lines 3 and 5)"],
    "patients_true.yaml": ["population.patients: must be a whole number (got true)"],
    "patients_text.yaml": ["population.patients: must be a whole number (got '1000')"],
    "dose_inf.yaml": ["regimen.start_mg: must be a finite number (got .inf)"],
    "dose_overflow.yaml": ["regimen.start_mg: must be a finite number (got 1e999)"],
    "elderly_nan.yaml": ["population.elderly_share: must be a finite number (got .nan)"],
    "dose_too_high.yaml": ["regimen.start_mg: must be <= 100 (got 2500)"],
    "tiny_daily_step.yaml": ["regimen.escalation:", "46 dose levels", "at most 32"],
    "yes_for_true.yaml": ["population.steroid_prophylaxis: must be true or false (got 'yes')"],
    "seed_too_large.yaml": ["seed: must be <= 18446744073709551615"],
    "name_too_long.yaml": ["name: too long: at most 200 characters"],
    "alias_bomb.yaml": ["description: an alias (*name) of the anchor at line 14"],
    "not_utf8.yaml": ["line 4: not UTF-8 text (byte 0xe9); save the file as UTF-8"],
    "unknown_partner.yaml": [
        "population.partners[0]: must be one of", "flavopiridol", "(got 'rituxmab')",
        "did you mean 'rituximab'?",
    ],
    "partner_classes.yaml": ["population:", "partner_classes is derived from partners"],
    "reduce_without_lower_level.yaml": [
        "rules.on_neutropenia:", "no dose level below the starting dose (5 mg)",
        "regimen.reduction_levels_mg", "rules.on_lowest: discontinue",
    ],
    "days_on_text.yaml": ["regimen.days_on:", "as a list, [1, 21], not '1-21'"],
    "unknown_mirror.yaml": [
        "mirrors:", "'chen_2011_amendd' is not an evidence arm",
        "did you mean 'chen_2011_amended'?",
    ],
    "limit_after_last_cycle.yaml": ["limits.tls.cycle:", "is 9 but the regimen has 6 cycles"],
    "unknown_limit_event.yaml": ["limits.tlss: unknown key 'tlss'", "did you mean 'tls'?"],
    # issues 20.5, 21 and 22: one strict rule for every block, refused when read
    "seed_float.yaml": ["seed: must be a whole number (got 7.0)"],
    "seed_text.yaml": ["seed: must be a whole number (got '7')"],
    "limit_cumulative_yes.yaml": [
        "limits.flare_grade3plus.cumulative: must be true or false (got 'yes')"],
    "limit_max_text.yaml": ["limits.tls.max: must be a number (got '0.02')"],
    "limit_percent.yaml": ["limits.tls.max:", "not a percent", "write 0.02 for 2%"],
    "limit_empty_list.yaml": ["limits.tls: is empty"],
    "partners_twice.yaml": ["population.partners: names rituximab twice"],
    "output_empty.yaml": ["output: is empty"],
    "output_nul.yaml": ["output: holds a NUL byte"],
    "output_too_long.yaml": ["output: the path", "characters) is too long"],
    "step_denormal.yaml": ["regimen.escalation.step_mg: must be >= 0.5 (got 5e-324)"],
    "first_step_huge.yaml": ["regimen.escalation.first_step_after: must be <= 10000"],
    "escalation_never_starts.yaml": [
        "regimen.escalation: the first step comes 6 cycles after the first dose, after the "
        "6 planned cycles"],
    "limit_on_cycle_without_drug.yaml": [
        "regimen.first_cycle.no_lenalidomide: cycle 1 has no lenalidomide, but limits.tls",
        "would always be met"],
    "dose_not_capsule.yaml": ["regimen.target_mg: 12 mg a day is",
                              "not a multiple of 2.5 mg", "capsules: any"],
    "search_config.yaml": ["this is a search config", "`python -m lenasim search "],
    "name_with_space.yaml": ["name: a name uses letters, digits", "(got 'my schedule')"],
    "mirror_wrong_case.yaml": ["'Chen_2011_Amended' is not an evidence arm",
                               "did you mean 'chen_2011_amended'?"],
}  # fmt: skip


def test_every_bad_config_has_a_case():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(BAD_CASES)


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_config_message(name):
    path = BAD / name
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ")
    for frag in BAD_CASES[name]:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    assert max(len(line) for line in msg.splitlines()) < 400  # never a whole input value


def test_missing_file():
    with pytest.raises(ConfigError, match="nowhere.yaml: config file not found"):
        load_scenario("nowhere.yaml")


def test_all_errors_reported_at_once(tmp_path):
    p = tmp_path / "two.yaml"
    p.write_text(
        "name: x\nseed: 1\npopulation: {patients: -1, setting: relapsed}\n"
        "regimen: {cycle_days: 28, days_on: [1, 21], start_mg: 0, cycles: 6}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_scenario(p)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{p}: ") for line in lines)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_loads(path):
    sc = load_scenario(path)
    assert isinstance(sc, Scenario)
    assert sc.name == path.stem  # results/<name>/ matches the file
    assert sc.seed == 20261123  # all shipped scenarios pair on common random numbers
    assert sc.population.patients == 1000 and sc.posterior.draws == 1000
    assert sc.mirrors
    header = path.read_text().split("\nname:")[0]  # the comment block above the keys
    assert "# Mirrors" in header and "seed 00" in header  # the trial and its seed file
    assert "Rules:" in header and "Cycles:" in header  # rules and cycle count justified


def test_seven_shipped_configs():
    assert {p.stem for p in SHIPPED} >= {
        "slow_escalation",
        "standard_25mg",
        "continuous_10mg",
        "pulse_21of42",
        "elderly_5mg_escalation",
        "fast_weekly_escalation",
        "with_rituximab",
    }


def test_defaults(tmp_path):
    p = tmp_path / "min.yaml"
    p.write_text(
        "name: min\nseed: 3\npopulation: {setting: untreated}\n"
        "regimen: {cycle_days: 28, days_on: [1, 21], start_mg: 5, cycles: 2}\n"
    )
    sc = load_scenario(p)
    assert sc.population_effect == "new_trial"
    assert sc.posterior.spec == DEFAULT_SPEC  # the model shipped with lenasim
    assert sc.posterior.nc_path == DEFAULT_SPEC.with_suffix(".nc")
    assert sc.posterior.draws == 1000
    assert sc.output == Path("results")
    assert sc.rules.on_neutropenia == "continue" and not sc.rules.escalate_only_if_tolerated


def _minimal(tmp_path: Path, extra: str = "", name: str = "min.yaml") -> Path:
    p = tmp_path / name
    p.write_text(
        "name: min\nseed: 3\npopulation: {setting: untreated}\n"
        "regimen: {cycle_days: 28, days_on: [1, 21], start_mg: 5, cycles: 2}\n" + extra
    )
    return p


def test_default_limits_and_stated_limits(tmp_path):
    from lenasim.core.limits import DEFAULT_LIMITS

    assert load_scenario(_minimal(tmp_path)).limits == DEFAULT_LIMITS
    sc = load_scenario(_minimal(tmp_path, "limits: {neutropenia: {cycle: 2, max: 0.3}, "
                                          "max_probability: 0.1}\n"))  # fmt: skip
    assert [(e, lim.cycle, lim.max) for e, lim in sc.limits.items()] == [("neutropenia", 2, 0.3)]
    assert sc.limits.max_probability == 0.1
    assert load_scenario(_minimal(tmp_path, "limits: {}\n")).limits.items() == []


def test_partner_classes_come_from_the_drug_names(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(_minimal(tmp_path).read_text().replace(
        "{setting: untreated}", "{setting: untreated, partners: [Fludarabine, rituximab]}"))  # fmt: skip
    pop = load_scenario(p).population
    assert pop.partners == ["fludarabine", "rituximab"]
    assert pop.partner_classes == ("anti_cd20", "chemo")


def test_evidence_arms_agree_with_the_partner_registry():
    """arms.yaml writes classes beside the drugs; the registry must give the same ones."""
    from lenasim.core.partners import partner_classes
    from lenasim.evidence.table import load_arms

    for arm in load_arms().values():
        assert set(partner_classes(arm.partners)) == set(arm.partner_classes), arm.arm_id


def test_on_lowest_or_reduction_levels_make_reduce_explicit(tmp_path):
    esc = ("regimen: {cycle_days: 28, days_on: [1, 21], start_mg: 5, target_mg: 10, cycles: 4, "
           "escalation: {step_mg: 5, every: 1, unit: cycles}%s}\n")  # fmt: skip
    base = "name: r\nseed: 1\npopulation: {setting: relapsed}\n"
    for regimen_extra, rules in (("", "{on_tls: reduce, on_lowest: discontinue}"),
                                 ("", "{on_tls: reduce, on_lowest: hold}"),
                                 (", reduction_levels_mg: [2.5]", "{on_tls: reduce}")):  # fmt: skip
        p = tmp_path / "r.yaml"
        p.write_text(base + esc % regimen_extra + f"rules: {rules}\n")
        assert load_scenario(p).rules.on_tls == "reduce"


def test_mirrors_one_arm_or_several(tmp_path):
    assert load_scenario(_minimal(tmp_path, "mirrors: aue_10mg\n")).mirrors == ["aue_10mg"]
    sc = load_scenario(_minimal(tmp_path, "mirrors: [aue_10mg, aue_20mg]\n"))
    assert sc.mirrors == ["aue_10mg", "aue_20mg"]


def test_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    sub = tmp_path / "deep" / "configs"
    sub.mkdir(parents=True)
    p = _minimal(sub, "posterior: {spec: ../models/m.yaml}\noutput: ../out\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for path in (p, Path("../deep/configs/min.yaml")):  # absolute or relative to the cwd
        sc = load_scenario(path)
        assert sc.posterior.spec.resolve() == tmp_path / "deep" / "models" / "m.yaml"
        assert sc.output.resolve() == tmp_path / "deep" / "out"
    absolute = _minimal(sub, f"output: {tmp_path / 'abs'}\n", name="abs.yaml")
    assert load_scenario(absolute).output == tmp_path / "abs"
    # left out: the defaults, relative to the current folder
    sc = load_scenario(_minimal(sub, name="bare.yaml"))
    assert sc.output == Path("results") and sc.posterior.spec == DEFAULT_SPEC


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_config_messages_hold_no_internals(name):
    """Messages in words: no pydantic class names, no regular expression, no traceback
    vocabulary (issue 21.11)."""
    with pytest.raises(ConfigError) as err:
        load_scenario(BAD / name)
    msg = str(err.value)
    for internal in ("RiskLimit", "Annotated", "[A-Za-z", "Value error", "pydantic",
                     "validation error", "Input should"):  # fmt: skip
        assert internal not in msg, msg
    assert max(map(len, msg.splitlines())) < 600, msg


def test_capsules_any_allows_other_doses(tmp_path):
    text = (
        (BAD / "dose_not_capsule.yaml")
        .read_text()
        .replace("cycles: 6", "cycles: 6\n  capsules: any")
    )
    p = tmp_path / "ok.yaml"
    p.write_text(text)
    assert list(load_scenario(p).regimen.levels()) == [5, 10, 12]


def test_output_inside_the_package_is_refused(tmp_path):
    import lenasim

    inside = Path(lenasim.__file__).resolve().parent / "evidence"
    p = tmp_path / "c.yaml"
    p.write_text((BAD / "negative_dose.yaml").read_text().replace("start_mg: -5", "start_mg: 5")
                 + f"output: {inside}\n")  # fmt: skip
    with pytest.raises(ConfigError, match="inside the installed lenasim package"):
        load_scenario(p)
