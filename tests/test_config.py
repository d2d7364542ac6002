"""Scenario configs: the shipped ones load; each bad one fails with a message that
names the file, the key path and (for typos) the closest valid key or value."""

from __future__ import annotations

from pathlib import Path

import pytest

from lenasim.core.errors import ConfigError
from lenasim.simulation.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parents[1]
# Scenario configs: configs/search_*.yaml are search configs (tests/test_search_config.py).
SHIPPED = sorted(p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("search_"))
BAD = REPO / "tests" / "configs_bad"

# file -> fragments the message must contain (besides the file name)
BAD_CASES = {
    "negative_dose.yaml": ["regimen.start_mg: must be > 0 (got -5)"],
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
}


def test_every_bad_config_has_a_case():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(BAD_CASES)


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_config_message(name):
    path = BAD / name
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert str(path) in msg
    for frag in BAD_CASES[name]:
        assert frag in msg, f"{frag!r} not in {msg!r}"


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
    assert sc.posterior.spec == Path("models/default.yaml")
    assert sc.posterior.nc_path == Path("models/default.nc")
    assert sc.posterior.draws == 1000
    assert sc.output == Path("results")
    assert sc.rules.on_neutropenia == "continue" and not sc.rules.escalate_only_if_tolerated
