"""The regimen language against the protocols of the seed trials, plus its edge cases.

Each schedule test names its source; the regimens are taken from the shipped
``arms.yaml`` so that the evidence table's schedules are the ones tested.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from lenasim.core.regimen import Escalation, FirstCycle, Regimen, nominal_features
from lenasim.evidence.table import load_arms


@pytest.fixture(scope="module")
def arms():
    return load_arms()


def cycle_doses(reg: Regimen, cycles: int | None = None) -> list[np.ndarray]:
    """Daily doses split by cycle (escalating on time)."""
    sch = reg.expand(cycles)
    daily = sch.daily_doses()
    bounds = np.cumsum(sch.cycle_days)[:-1]
    return np.split(daily, bounds)


def test_chen_amended_levels_by_cycle(arms):
    """Chen 2011 amended: 2.5 mg days 1-21 of cycle 1, 5 mg cycle 2, 10 mg from cycle 3
    (seed 003 abstract: 2.5 mg start, monthly escalations to a target of 10 mg)."""
    c = cycle_doses(arms["chen_2011_amended"].regimen, 5)
    for k, dose in enumerate([2.5, 5, 10, 10, 10]):
        assert len(c[k]) == 28
        assert np.all(c[k][:21] == dose), k
        assert np.all(c[k][21:] == 0), k


def test_chen_original_weekly_steps_reach_25_in_cycle_2(arms):
    """Chen 2011 original (seed 003 abstract): 10 mg days 1-21 of 28, weekly +5 mg to 25 mg."""
    c = cycle_doses(arms["chen_2011_original"].regimen)
    np.testing.assert_array_equal(c[0][:21], [10] * 7 + [15] * 7 + [20] * 7)
    assert np.all(c[0][21:] == 0)
    assert np.all(c[1][:21] == 25)
    f = nominal_features(arms["chen_2011_original"].regimen.expand())
    assert f["dose_max"].tolist() == [20, 25]
    assert f["rise"][0] == pytest.approx(np.log(2.0))  # 20 mg over the first 10 mg
    assert f["rise"][1] == pytest.approx(np.log(25 / 20))


def test_badoux_continuous_5mg_steps(arms):
    """Badoux 2011: 5 mg continuously for 56 days, then +5 mg every 28 days to 25 mg (seed 001
    s3.1; Blood 2011;118:3489 and ASH 2008 abstract 45, evidence notes)."""
    c = cycle_doses(arms["badoux_2011_elderly"].regimen, 7)
    for k, dose in enumerate([5, 5, 10, 15, 20, 25, 25]):
        assert np.all(c[k] == dose) and len(c[k]) == 28, k


def test_ferrajoli_2008_continuous_10mg_steps(arms):
    """Ferrajoli 2008: 10 mg continuous daily dosing, +5 mg every 28 days to 25 (seed 002)."""
    c = cycle_doses(arms["ferrajoli_2008"].regimen, 5)
    assert [float(x.mean()) for x in c] == [10, 15, 20, 25, 25]


def test_aue_pulse_dosing_21_of_42(arms):
    """Aue: 10 mg daily for 21 days of a 42-day cycle, 4 cycles (seed 001 s3.1); the first
    10 patients 20 mg (evidence notes, ASH 2010)."""
    for arm_id, dose in (("aue_10mg", 10), ("aue_20mg", 20)):
        reg = arms[arm_id].regimen
        c = cycle_doses(reg)
        assert len(c) == 4
        for x in c:
            assert len(x) == 42 and np.all(x[:21] == dose) and np.all(x[21:] == 0)
        f = nominal_features(reg.expand())
        np.testing.assert_allclose(f["log_frac_on"], np.log(0.5))
        np.testing.assert_allclose(f["intensity"], dose / 2)


def test_chanan_khan_groups(arms):
    """Chanan-Khan 2006: group A 25 mg days 1-21 of 28 from day 1 (seed 001 s3.1); group B
    10 mg escalated by 5 mg (weekly, see arm note) to 25 mg (Cancer 2011, evidence notes)."""
    a = cycle_doses(arms["chanan_khan_2006_a"].regimen, 2)
    assert np.all(a[0][:21] == 25) and np.all(a[0][21:] == 0)
    b = cycle_doses(arms["chanan_khan_2006_b"].regimen, 2)
    np.testing.assert_array_equal(b[0][:21], [10] * 7 + [15] * 7 + [20] * 7)
    assert np.all(b[1][:21] == 25)
    assert arms["chanan_khan_2006_b"].steroid_prophylaxis
    assert not arms["chanan_khan_2006_a"].steroid_prophylaxis


def test_james_35_day_first_cycle(arms):
    """James LR (seed 001 s3.2): 21 days in a 35-day first cycle, 2.5 -> 5 (day 8) -> 10 mg,
    then 21 days of 28-day cycles for 6 more cycles."""
    reg = arms["james_lr"].regimen
    sch = reg.expand()
    assert sch.cycle_days.tolist() == [35] + [28] * 6
    c = cycle_doses(reg)
    np.testing.assert_array_equal(c[0][:21], [2.5] * 7 + [5] * 7 + [10] * 7)
    assert np.all(c[0][21:] == 0) and len(c[0]) == 35
    assert np.all(c[1][:21] == 10) and np.all(c[1][21:] == 0)
    assert len(sch.daily_doses()) == 35 + 6 * 28


def test_flavopiridol_no_lenalidomide_in_cycle_1(arms):
    """Blum (seed 001 s3.2): flavopiridol alone in cycle 1, lenalidomide from cycle 2 at
    2.5 mg days 1-21 of 28, escalated (+2.5 mg per cycle, see arm note)."""
    reg = arms["blum_flavopiridol"].regimen
    c = cycle_doses(reg)
    assert np.all(c[0] == 0)
    assert np.all(c[1][:21] == 2.5) and np.all(c[2][:21] == 5)
    f = nominal_features(reg.expand())
    assert f["exposed"].tolist() == [0, 1, 1]
    assert f["first"].tolist() == [0, 1, 0]
    assert f["log_cycle"][1] == pytest.approx(0.0)  # first lenalidomide cycle


def test_lenalidomide_from_day_9(arms):
    """Ferrajoli 2011 LR and Badoux ofatumumab (seed 001 s3.2): 10 mg daily from day 9 of
    cycle 1, then continuously."""
    for arm_id in ("ferrajoli_2011_lr", "badoux_ofatumumab"):
        c = cycle_doses(arms[arm_id].regimen, 2)
        assert np.all(c[0][:8] == 0) and np.all(c[0][8:] == 10), arm_id
        assert np.all(c[1] == 10), arm_id


def test_egle_days_7_21_then_escalation(arms):
    """Egle FR + lenalidomide (seed 001 s3.2): 2.5 mg days 7-21 of cycle 1, escalated up to
    25 mg on days 1-21 of the following cycles (steps per arm note)."""
    c = cycle_doses(arms["egle_fr"].regimen)
    assert np.all(c[0][:6] == 0) and np.all(c[0][6:21] == 2.5) and np.all(c[0][21:] == 0)
    assert [float(x[0]) for x in c[1:]] == [5, 10, 15, 20, 25]


def test_shanafelt_consolidation(arms):
    """Shanafelt (seed 001 s3.2): 5 mg/day escalated to 10 mg/day."""
    c = cycle_doses(arms["shanafelt_pcr_len"].regimen, 3)
    assert [float(x.max()) for x in c] == [5, 10, 10]


# ------------------------------------------------------------------ edge cases


def test_step_not_dividing_the_range_ends_at_target():
    reg = Regimen(
        cycle_days=28, days_on=(1, 21), start_mg=2.5, target_mg=25,
        escalation=Escalation(step_mg=5, every=1, unit="cycles"), cycles=8,
    )  # fmt: skip
    np.testing.assert_allclose(reg.levels(), [2.5, 7.5, 12.5, 17.5, 22.5, 25])
    assert [float(x.max()) for x in cycle_doses(reg)] == [2.5, 7.5, 12.5, 17.5, 22.5, 25, 25, 25]


def test_every_two_cycles():
    reg = Regimen(
        cycle_days=28, days_on=(1, 28), start_mg=5, target_mg=15,
        escalation=Escalation(step_mg=5, every=2, unit="cycles"), cycles=6,
    )  # fmt: skip
    assert [float(x.max()) for x in cycle_doses(reg)] == [5, 5, 10, 10, 15, 15]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(days_on=(1, 30)), "ends after the 28-day cycle"),
        (dict(days_on=(5, 3)), "days run from 1"),
        (dict(start_mg=0), "greater than or equal to 0.5"),
        (dict(start_mg=-5), "greater than or equal to 0.5"),
        (dict(start_mg=10, target_mg=5), "below start_mg"),
        (dict(target_mg=25), "no escalation is given"),
        (
            dict(max_mg=5, target_mg=10, escalation={"step_mg": 5, "every": 1}),
            "max_mg (5) is below",
        ),
        (dict(first_cycle={"days_on": (9, 40)}), "first_cycle.days_on"),
        (
            dict(first_cycle={"no_lenalidomide": True}, cycles=1),
            "no_lenalidomide needs cycles >= 2",
        ),
        (
            dict(target_mg=10, escalation={"levels_mg": [5, 10], "every": 1}),
            "levels_mg starts at 5",
        ),
        (dict(target_mg=20, escalation={"levels_mg": [2.5, 10], "every": 1}), "ends at 10"),
        (
            dict(target_mg=10, escalation={"step_mg": 5, "levels_mg": [2.5, 10], "every": 1}),
            "exactly one",
        ),
        (
            dict(target_mg=10, escalation={"levels_mg": [2.5, 2.5, 10], "every": 1}),
            "increasing order",
        ),
        (dict(colour="red"), "Extra inputs are not permitted"),
    ],
)
def test_validation_messages(kwargs, message):
    base = dict(cycle_days=28, days_on=(1, 21), start_mg=2.5, cycles=2)
    with pytest.raises(ValidationError, match=None) as info:
        Regimen(**(base | kwargs))
    assert message in str(info.value)


def test_describe():
    reg = Regimen(
        cycle_days=28, days_on=(1, 21), start_mg=2.5, target_mg=10,
        escalation=Escalation(levels_mg=[2.5, 5, 10], every=1, unit="cycles"), cycles=12,
    )  # fmt: skip
    assert reg.describe() == (
        "2.5 mg/day days 1-21 of 28-day cycles, escalated every cycle through 2.5/5/10 mg, 12 cycles"
    )
    cont = Regimen(
        cycle_days=28, days_on=(1, 28), start_mg=10, cycles=1,
        first_cycle=FirstCycle(days_on=(9, 28)),
    )  # fmt: skip
    assert cont.describe() == "10 mg/day continuously (28-day cycles), cycle 1 days 9-28, 1 cycle"
    step = Regimen(
        cycle_days=42, days_on=(1, 21), start_mg=10, target_mg=20,
        escalation=Escalation(step_mg=5, every=2, unit="weeks"), cycles=4,
    )  # fmt: skip
    assert (
        step.describe()
        == "10 mg/day days 1-21 of 42-day cycles, +5 mg every 2 weeks to 20 mg, 4 cycles"
    )


def test_regimen_is_frozen():
    reg = Regimen(cycle_days=28, days_on=(1, 21), start_mg=25, cycles=1)
    with pytest.raises(ValidationError):
        reg.start_mg = 5  # type: ignore[misc]


def test_reduction_levels_come_below_the_start_and_do_not_change_the_nominal_schedule():
    from lenasim.core.regimen import nominal_features

    base = dict(
        cycle_days=28,
        days_on=(1, 21),
        start_mg=10,
        target_mg=20,
        cycles=3,
        escalation=Escalation(step_mg=5, every=1, unit="cycles"),
    )
    plain, red = Regimen(**base), Regimen(**base, reduction_levels_mg=[2.5, 5])
    np.testing.assert_allclose(red.levels(), [2.5, 5, 10, 15, 20])
    assert red.start_level == 2 and red.expand().start_level == 2
    np.testing.assert_allclose(red.expand().daily_doses(), plain.expand().daily_doses())
    for k, v in nominal_features(plain.expand()).items():
        np.testing.assert_allclose(
            nominal_features(red.expand())[k] - (2 if k == "end_level" else 0), v
        )
    assert "reductions to 2.5/5 mg" in red.describe()
    with pytest.raises(ValueError, match="below start_mg"):
        Regimen(**base, reduction_levels_mg=[5, 10])
    with pytest.raises(ValueError, match="increasing"):
        Regimen(**base, reduction_levels_mg=[5, 2.5])


def test_first_step_after_delays_only_the_first_step():
    """A lead-in of two cycles (cycle steps) and of ten days (day steps)."""
    reg = Regimen(cycle_days=28, days_on=(1, 28), start_mg=5, target_mg=20,
                  escalation=Escalation(step_mg=5, every=2, unit="cycles", first_step_after=1),
                  cycles=6)  # fmt: skip
    assert [float(x.mean()) for x in cycle_doses(reg, 6)] == [5, 10, 10, 15, 15, 20]
    reg = Regimen(cycle_days=28, days_on=(1, 21), start_mg=5, target_mg=15,
                  escalation=Escalation(step_mg=5, every=7, unit="days", first_step_after=10),
                  cycles=1)  # fmt: skip
    d = cycle_doses(reg, 1)[0]
    assert d[:10].tolist() == [5] * 10 and d[10:17].tolist() == [10] * 7 and d[17] == 15


def test_restart_marks_cycles_after_two_weeks_off():
    """Aue's days 1-21 of 42 restart after 21 days off; days 1-21 of 28 (7 days off) and
    continuous dosing do not; a cycle without lenalidomide makes a gap."""
    pulse = Regimen(cycle_days=42, days_on=(1, 21), start_mg=10, cycles=3)
    assert nominal_features(pulse.expand())["restart"].tolist() == [0, 1, 1]
    std = Regimen(cycle_days=28, days_on=(1, 21), start_mg=10, cycles=3)
    assert nominal_features(std.expand())["restart"].tolist() == [0, 0, 0]
    assert std.expand().gap_before(1) == 7
    late = Regimen(cycle_days=28, days_on=(1, 28), start_mg=10, cycles=3,
                   first_cycle=FirstCycle(no_lenalidomide=True))  # fmt: skip
    assert nominal_features(late.expand())["restart"].tolist() == [0, 0, 0]


def test_first_log_dose_is_the_starting_dose_in_the_first_cycle_only():
    reg = Regimen(cycle_days=28, days_on=(1, 21), start_mg=2.5, target_mg=10,
                  escalation=Escalation(levels_mg=[2.5, 5, 10], every=1, unit="cycles"),
                  cycles=3)  # fmt: skip
    f = nominal_features(reg.expand())
    assert np.allclose(f["first_log_dose"], [np.log(0.25), 0, 0])


# ------------------------------------------------------ every other day (issue 24, item 3)


def test_every_other_day_takes_a_dose_on_alternate_days_of_days_on():
    """EU SmPC: 15 mg every other day below CrCl 30; days 1-21: doses on days 1, 3, .., 21,
    each covering two days (22 days at risk)."""
    reg = Regimen(cycle_days=28, days_on=(1, 21), dosing="every_other_day", start_mg=15,
                  cycles=2)  # fmt: skip
    s = reg.expand()
    assert np.flatnonzero(s.on[0]).tolist() == list(range(0, 21, 2))
    assert s.days_at_risk().tolist() == [22, 22]
    assert s.gap_before(1) == 28 - 21 - 1  # the days after the last dose's two days
    assert cycle_doses(reg)[0][:4].tolist() == [15, 0, 15, 0]
    assert reg.describe().startswith("15 mg every other day, days 1-21 of 28-day cycles")
    daily = Regimen(cycle_days=28, days_on=(1, 21), start_mg=15, cycles=2).expand()
    assert daily.days_at_risk().tolist() == [21, 21] and daily.interval == 1


def test_every_other_day_is_the_half_dose_daily_to_the_hazard():
    """The dose terms see the average exposure a day (lenasim.core.exposure): 15 mg every
    other day over 28 days has the hazard features of 7.5 mg daily; only the dose on the
    days taken differs (what dose.csv reports)."""
    from lenasim.core.regimen import nominal_features

    eod = Regimen(cycle_days=28, days_on=(1, 28), dosing="every_other_day", start_mg=15,
                  cycles=3)  # fmt: skip
    daily = Regimen(cycle_days=28, days_on=(1, 28), start_mg=7.5, cycles=3)
    a, b = nominal_features(eod.expand()), nominal_features(daily.expand())
    for k in ("log_dose", "log_frac_on", "first_log_dose", "rise", "restart", "intensity",
              "dose_total"):  # fmt: skip
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert a["dose_mean"].tolist() == [15, 15, 15] and b["dose_mean"].tolist() == [7.5] * 3


def test_every_other_day_steps_on_a_day_without_a_dose_wait_for_the_next_dose():
    reg = Regimen(cycle_days=28, days_on=(1, 28), dosing="every_other_day", start_mg=5,
                  target_mg=10, escalation={"step_mg": 5, "every": 7, "unit": "days"},
                  cycles=1)  # fmt: skip
    doses = cycle_doses(reg)[0]
    assert doses[:10].tolist() == [5, 0, 5, 0, 5, 0, 5, 0, 10, 0]  # the day-8 step, on day 9
