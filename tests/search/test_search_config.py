"""Search configs and their spaces: the shipped ones load and hold >= 500 schedules; each
bad one (tests/search_bad/) fails with a message naming the file, the key path and, for
typos, the closest valid key or value; the space's enumeration skips, deduplicates and
counts as written; days to target matches calendars worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lenasim.core.errors import ConfigError
from lenasim.core.regimen import Escalation, Regimen
from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.search.config import NumberRange, SearchConfig, load_search
from lenasim.search.space import candidate_scenario, days_to_target, enumerate_space

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs").glob("search_*.yaml"))
BAD = REPO / "tests" / "search_bad"

# file -> fragments the message must contain (besides the file name)
BAD_CASES = {
    "unknown_key.yaml": ["space.start_mgg: unknown key", "did you mean 'start_mg'?"],
    "top_level_typo.yaml": ["objectivs: unknown key", "did you mean 'objectives'?"],
    "unbounded_range.yaml": ["space.start_mg:", "unbounded range", "give `to`"],
    "empty_axis.yaml": ["space.target_mg: is empty"],
    "empty_space.yaml": ["space: the search space is empty", "2 x start_mg above target_mg"],
    "no_escalation.yaml": ["search space is empty", "space.escalation gives no escalation"],
    "unknown_event.yaml": ["limits.tsl: unknown key 'tsl'", "did you mean 'tls'?"],
    "unknown_limit_key.yaml": ["limits.tls.cycles: unknown key", "did you mean 'cycle'?"],
    "no_limits.yaml": ["limits: give at least one limit"],
    "limit_beyond_horizon.yaml": ["limits.tls.cycle: looks at cycle 8", "simulates 6 cycles"],
    "unknown_objective.yaml": ["objectives[1]: must be one of", "did you mean 'dose_intensity'?"],
    "bad_unit.yaml": ["space.escalation[0].unit[0]:", "did you mean 'weeks'?"],
    "step_and_levels.yaml": ["space.escalation[0]:", "exactly one of step_mg or levels_mg"],
    "ladder_mismatch.yaml": ["search space is empty", "ladder does not run from that start_mg"],
    "too_large.yaml": ["space:", "combinations (at most 200,000)", "narrow them"],
    "reference_horizon.yaml": ["references[0].regimen.cycles:", "give it `cycles: 6`"],
    "steroid_twice.yaml": ["population.steroid_prophylaxis:", "remove it here"],
    "not_a_mapping.yaml": ["must be a mapping"],
    "python_tag.yaml": ["not valid YAML"],
    # issues 20.5 and 21: the strict base of every config, refused when read
    "seed_2_64.yaml": ["seed: must be <= 18446744073709551615 (got 18446744073709551616)"],
    "seed_float.yaml": ["seed: must be a whole number (got 7.0)"],
    "seed_text.yaml": ["seed: must be a whole number (got '7')"],
    "top_float.yaml": ["top: must be a whole number (got 1.0)"],
    "budget_text_inf.yaml": ["time_budget_minutes: must be a number (got 'inf')"],
    "budget_inf.yaml": ["time_budget_minutes: must be a finite number"],
    "every_huge.yaml": ["space.escalation[0].every[0]: must be <= 10000 (got 10001)"],
    "name_too_long.yaml": ["name: too long: at most 192 characters"],
    "output_nul.yaml": ["output: holds a NUL byte"],
    "output_empty.yaml": ["output: is empty"],
    "range_tiny_by.yaml": ["space.start_mg.by: must be >= 0.01 (got 1e-300)"],
    "range_huge_to.yaml": ["space.start_mg.to: must be <= 100"],
    "step_denormal.yaml": ["space.escalation[0].step_mg[0]: must be >= 0.5 (got 5e-324)"],
    "first_step_huge.yaml": ["space.escalation[0].first_step_after[0]: must be <= 10000"],
    "limits_empty_list.yaml": ["limits.tls: is empty"],
    "limit_percent.yaml": ["limits.tls.max:", "not a percent", "write 0.02 for 2%"],
    "limit_cumulative_yes.yaml": [
        "limits.flare_grade3plus.cumulative: must be true or false (got 'yes')"],
    "limit_max_text.yaml": ["limits.tls.max: must be a number (got '0.02')"],
    "partners_twice.yaml": ["population.partners: names rituximab twice"],
    "scenario_config.yaml": ["this is a scenario config", "`python -m lenasim run "],
}  # fmt: skip


def test_every_bad_config_has_a_case():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(BAD_CASES)


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_config_message(name):
    path = BAD / name
    with pytest.raises(ConfigError) as err:
        enumerate_space(load_search(path), source=str(path))
    msg = str(err.value)
    assert str(path) in msg
    for frag in BAD_CASES[name]:
        assert frag in msg, f"{frag!r} not in {msg!r}"


def test_missing_file():
    with pytest.raises(ConfigError, match="nowhere.yaml: search config file not found"):
        load_search("nowhere.yaml")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_search_config_loads_with_at_least_500_schedules(path):
    cfg = load_search(path)
    space = enumerate_space(cfg, source=str(path))
    assert len(space.candidates) >= 500  # the size for the speed target
    assert cfg.posterior.draws == 1000 and cfg.population.patients == 1000
    assert cfg.space.cycles == 12
    assert [r.name for r in cfg.references][:2] == ["slow_escalation", "standard_25mg"]
    # paths relative to the config file: configs/../results is the repository's results/
    assert cfg.out_dir == path.parent.parent / "results" / f"search-{cfg.name}"
    assert cfg.posterior.spec == DEFAULT_SPEC  # the shipped configs name no spec
    # every candidate is a valid scenario: what `lenasim run` would accept
    for cand in space.candidates[:: max(1, len(space.candidates) // 25)]:
        candidate_scenario(cfg, cand)


def test_shipped_configs_are_found():
    assert [p.stem for p in SHIPPED] == ["search_relapsed", "search_untreated"]


def test_range_includes_both_ends_and_refuses_no_end():
    assert NumberRange.model_validate({"from": 2.5, "to": 10, "by": 2.5}).values() == (
        2.5, 5.0, 7.5, 10.0,
    )  # fmt: skip
    assert NumberRange.model_validate({"from": 5, "to": 6, "by": 2.5}).values() == (5.0,)
    with pytest.raises(ValueError, match="unbounded"):
        NumberRange.model_validate({"from": 5, "by": 2.5})


def _cfg(space: dict, **kw) -> SearchConfig:
    return SearchConfig.model_validate(
        {"name": "t", "seed": 1, "population": {"setting": "untreated"}, "space": space} | kw
    )


def test_enumeration_counts_skips_and_duplicates_by_hand():
    # starts 2.5, 5, 20 x target 10 x (step 2.5 every 1 cycle, every 4 weeks) + a ladder:
    # - 20 > 10: 1 combination skipped (start above target);
    # - on 28-day cycles "every cycle" and "every 4 weeks" are the same calendar: for
    #   starts 2.5 and 5 the weeks option duplicates the cycles option (2 duplicates);
    # - the ladder [2.5, 5, 10] fits start 2.5 only (1 skipped for start 5).
    cfg = _cfg({
        "start_mg": [2.5, 5, 20], "target_mg": 10, "cycles": 6,
        "escalation": [{"step_mg": 2.5, "every": 1, "unit": "cycles"},
                       {"step_mg": 2.5, "every": 4, "unit": "weeks"},
                       {"levels_mg": [2.5, 5, 10], "every": 1, "unit": "cycles"}],
    })  # fmt: skip
    space = enumerate_space(cfg)
    assert space.combinations == 1 + 3 + 3
    assert space.duplicates == 2
    assert space.skipped == {
        "start_mg above target_mg": 1,
        "a levels_mg ladder does not run from that start_mg to that target_mg": 1,
    }
    assert [c.id for c in space.candidates] == ["c0001", "c0002", "c0003"]
    assert [c.regimen.escalation_levels().tolist() for c in space.candidates] == [
        [2.5, 5.0, 7.5, 10.0], [2.5, 5.0, 10.0], [5.0, 7.5, 10.0],
    ]  # fmt: skip


def test_start_at_target_is_one_schedule_without_escalation():
    cfg = _cfg({"start_mg": [10, 25], "target_mg": [25], "cycles": 6,
                "escalation": [{"step_mg": [5, 15], "every": [1, 2], "unit": "weeks"}],
                "steroid_prophylaxis": [False, True]})  # fmt: skip
    space = enumerate_space(cfg)
    flat = [c for c in space.candidates if c.regimen.start_mg == 25]
    assert len(flat) == 2 and all(c.regimen.escalation is None for c in flat)
    assert {c.steroid_prophylaxis for c in flat} == {False, True}
    assert len(space.candidates) == 2 * (2 * 2 + 1)


def _reg(start, target=None, esc=None, days_on=(1, 21), cycles=12, **kw) -> Regimen:
    return Regimen(cycle_days=28, days_on=days_on, start_mg=start, target_mg=target,
                   escalation=esc, cycles=cycles, **kw)  # fmt: skip


@pytest.mark.parametrize(
    ("regimen", "days"),
    [
        # 25 mg from day 1: at target on the first dose.
        (_reg(25), 0),
        # Chen 2011 amended: 2.5 mg, 5 mg in cycle 2, 10 mg from cycle 3 (day 1 = day 56).
        (_reg(2.5, 10, Escalation(levels_mg=[2.5, 5, 10], every=1, unit="cycles")), 56),
        # Chen 2011 original: 10 mg, +5 mg weekly: 15 on day 8 (index 7), 20 on day 15, the
        # step to 25 falls on day 22, a rest day: 25 mg from cycle 2 day 1 (index 28).
        (_reg(10, 25, Escalation(step_mg=5, every=1, unit="weeks")), 28),
        # Badoux 2011: 5 mg continuously for 56 days, then +5 mg every 28 days: 25 mg after
        # four steps, from day 56 + 3 * 28 = 140.
        (_reg(5, 25, Escalation(step_mg=5, every=1, unit="cycles", first_step_after=2),
              days_on=(1, 28)), 140),
        # +2.5 mg every two cycles from 2.5 mg: 10 mg after 3 steps, on day 6 * 28 = 168.
        (_reg(2.5, 10, Escalation(step_mg=2.5, every=2, unit="cycles")), 168),
        # Steps too slow for the horizon: 2.5 -> 25 by 2.5 every 2 cycles needs 18 cycles.
        (_reg(2.5, 25, Escalation(step_mg=2.5, every=2, unit="cycles")), np.nan),
    ],
)  # fmt: skip
def test_days_to_target_by_hand(regimen, days):
    got = days_to_target(regimen.expand())
    assert got == days or (np.isnan(days) and np.isnan(got))


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_search_messages_hold_no_internals(name):
    """The one formatter of core/schema.py: no union tags, no pydantic words, no regular
    expression (issues 20.5, 21.11)."""
    path = BAD / name
    with pytest.raises(ConfigError) as err:
        enumerate_space(load_search(path), source=str(path))
    msg = str(err.value)
    for internal in ("RiskLimit", "NumberRange", "Annotated", "[A-Za-z", "Value error",
                     "pydantic", "Input should"):  # fmt: skip
        assert internal not in msg, msg


def test_candidates_carry_the_search_limits_and_their_yaml_reruns(tmp_path):
    """The run folders of top/ judge the search's limits, and their scenario.yaml, read
    from where it is written, finds the search's posterior spec (issue 21.8)."""
    from lenasim.search.results import _scenario_yaml
    from lenasim.simulation.scenario import load_scenario

    cfg = load_search(SHIPPED[0])
    cand = enumerate_space(cfg).candidates[0]
    sc = candidate_scenario(cfg, cand)
    assert sc.limits == cfg.limits
    folder = tmp_path / "results" / f"search-{cfg.name}" / "top" / "01-c0001"
    folder.mkdir(parents=True)
    (folder / "scenario.yaml").write_text(_scenario_yaml(sc, "header", folder))
    again = load_scenario(folder / "scenario.yaml")
    assert again.posterior.spec.resolve() == cfg.posterior.spec.resolve()
    assert again.output.resolve() == cfg.output.resolve()
    assert again.limits == cfg.limits and again.regimen == sc.regimen
