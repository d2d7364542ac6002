"""The cumulative-exposure feature of neutropenia's alternative structure (issue 23 item
4): the dose received before a cycle, in reference dose-days, with marrow recovery during
days off (lenasim.core.exposure.carry_exposure, cum_exposure in nominal_features)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lenasim.core.exposure import (
    MARROW_MTT_DAYS,
    carry_exposure,
    cycle_features,
    nominal_features,
)
from lenasim.core.regimen import Escalation, FirstCycle, Regimen

KEEP = math.exp(-1.0 / MARROW_MTT_DAYS)  # share kept per day off


def test_recovery_rate_is_friberg_2002_mean_transit_time():
    """124 h (Friberg et al., J Clin Oncol 2002;20:4713), in days."""
    assert MARROW_MTT_DAYS == pytest.approx(124.0 / 24.0)


def test_carry_accumulates_on_days_on_and_decays_on_days_off():
    """10 mg on 21 days: 21 reference dose-days; 7 days off keep KEEP^7 of it; 25 mg counts
    2.5 per day; a day on drug does not decay (recovery only during days off)."""
    on21 = np.r_[np.full(21, 10.0), np.zeros(7)]
    assert float(carry_exposure(0.0, on21[:21])) == pytest.approx(21.0)
    assert float(carry_exposure(0.0, on21)) == pytest.approx(21.0 * KEEP**7)
    assert float(carry_exposure(4.0, [25.0])) == pytest.approx(6.5)
    assert float(carry_exposure(4.0, [0.0, 0.0])) == pytest.approx(4.0 * KEEP**2)
    # array states broadcast against the days
    got = carry_exposure(np.array([0.0, 10.0]), np.full(3, 5.0))
    np.testing.assert_allclose(got, [1.5, 11.5])


def test_continuous_10mg_carries_one_reference_cycle_per_cycle():
    """Without a day off nothing decays: before cycle c, (c - 1) x 28 dose-days, so
    cum_exposure = log(1 + (c - 1)) = log c (= log_cycle on this schedule)."""
    reg = Regimen(cycle_days=28, days_on=(1, 28), start_mg=10, cycles=5)
    f = nominal_features(reg.expand())
    np.testing.assert_allclose(f["cum_exposure"], np.log(np.arange(1, 6)), rtol=1e-12)


def test_pulse_recovers_almost_fully_and_dose_and_escalation_count():
    """Days 1-21 of 42 (Aue): 21 days off keep KEEP^21 (~2%); 20 mg carries twice 10 mg;
    an escalating schedule carries each cycle's own doses."""
    pulse = Regimen(cycle_days=42, days_on=(1, 21), start_mg=10, cycles=3)
    f = nominal_features(pulse.expand())
    e1 = 21.0 * KEEP**21
    assert KEEP**21 < 0.03
    np.testing.assert_allclose(
        f["cum_exposure"], np.log1p(np.array([0.0, e1, e1 * KEEP**21 + e1]) / 28.0)
    )
    double = nominal_features(
        Regimen(cycle_days=42, days_on=(1, 21), start_mg=20, cycles=2).expand()
    )
    assert double["cum_exposure"][1] == pytest.approx(np.log1p(2 * e1 / 28.0))
    esc = Regimen(
        cycle_days=28, days_on=(1, 28), start_mg=5, target_mg=15,
        escalation=Escalation(step_mg=5, every=1, unit="cycles"), cycles=3,
    )  # fmt: skip
    f = nominal_features(esc.expand())
    np.testing.assert_allclose(f["cum_exposure"], np.log1p(np.array([0, 14, 14 + 28]) / 28.0))


def test_a_cycle_without_drug_is_recovery():
    """A first cycle without lenalidomide carries nothing; the days off of a late first
    dose (cycle 1 days 9-28) do not count, and the exposure keeps decaying across a cycle
    without drug."""
    reg = Regimen(cycle_days=28, days_on=(1, 28), start_mg=10, cycles=2,
                  first_cycle=FirstCycle(days_on=(9, 28)))  # fmt: skip
    f = nominal_features(reg.expand())
    np.testing.assert_allclose(f["cum_exposure"], [0.0, np.log1p(20.0 / 28.0)])
    sch = Regimen(cycle_days=28, days_on=(1, 21), start_mg=10, cycles=3).expand()
    carried = carry_exposure(carry_exposure(0.0, np.r_[np.full(21, 10.0), np.zeros(7)]),
                             np.zeros(28))  # fmt: skip
    assert float(carried) == pytest.approx(21.0 * KEEP**35)
    # a cycle's own features take the carried exposure given
    got = cycle_features(sch, 1, np.array(0), np.array(True), np.array(10.0), carried=carried)
    assert float(got["cum_exposure"]) == pytest.approx(np.log1p(carried / 28.0))


def test_untracked_exposure_is_nan_not_zero():
    """A caller that does not track the carried exposure (the default) gets NaN: a model
    using cum_exposure can never silently run as if nothing had been taken before."""
    sch = Regimen(cycle_days=28, days_on=(1, 21), start_mg=10, cycles=2).expand()
    got = cycle_features(sch, 1, np.array([0, 0]), np.array([True, True]), np.array([10.0, 10.0]))
    assert np.isnan(got["cum_exposure"]).all() and got["cum_exposure"].shape == (2,)


def test_daily_doses_of_patient_states_and_the_linear_update():
    """The doses a state takes in a cycle (all of it, the first half of the days on drug
    for a hold, or the second half at the mid-cycle level), and E' = E K + A for them."""
    from lenasim.core.exposure import carry_coefficients, cycle_daily_mg

    reg = Regimen(
        cycle_days=28, days_on=(1, 21), start_mg=5, target_mg=15,
        escalation=Escalation(step_mg=5, every=1, unit="weeks"), cycles=2,
    )  # fmt: skip
    sch = reg.expand()
    full = cycle_daily_mg(sch, 0, np.array([0, 0]), np.array([True, False]))
    np.testing.assert_array_equal(full[0, :21], [5] * 7 + [10] * 7 + [15] * 7)
    np.testing.assert_array_equal(full[1, :21], [5] * 21)
    assert np.all(full[:, 21:] == 0) and full.shape == (2, 28)
    half = cycle_daily_mg(sch, 0, 0, True, taken="first_half")
    np.testing.assert_array_equal(half[:21], [5] * 7 + [10] * 3 + [0] * 11)
    mid = cycle_daily_mg(sch, 0, 0, True, taken="mid_level")
    np.testing.assert_array_equal(mid[:21], [5] * 7 + [10] * 14)
    np.testing.assert_array_equal(
        nominal_features(sch)["cum_exposure"][1], np.log1p(carry_exposure(0.0, full[0]) / 28)
    )
    k, a = carry_coefficients(full)
    for e in (0.0, 3.0, 40.0):
        np.testing.assert_allclose(e * k + a, carry_exposure(e, full), rtol=1e-12)
    assert k[0] == pytest.approx(KEEP**7)


def test_every_other_day_spreads_each_dose_over_the_days_it_covers():
    """20 mg every other day is 10 mg a day to the exposure terms (core/exposure.py): its
    carried exposure is that of 10 mg daily, not of 20 mg with a day off after each."""
    from lenasim.core.exposure import cycle_daily_mg

    eod = Regimen(cycle_days=28, days_on=(1, 28), start_mg=20, cycles=3, dosing="every_other_day")
    daily = Regimen(cycle_days=28, days_on=(1, 28), start_mg=10, cycles=3)
    np.testing.assert_allclose(cycle_daily_mg(eod.expand(), 0, 0), np.full(28, 10.0))
    np.testing.assert_allclose(
        nominal_features(eod.expand())["cum_exposure"],
        nominal_features(daily.expand())["cum_exposure"],
    )


def test_one_patients_carry_is_bit_for_bit_the_arrays():
    """carry_exposure's one-patient path (Python floats, for the fit's arms) gives the
    bits of its array path, days on and off, at any carried exposure (issue 22.12)."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        daily = np.where(rng.random(40) < 0.4, 0.0, rng.choice([2.5, 5.0, 7.5, 10.0, 25.0], 40))
        carried = float(rng.uniform(0.0, 60.0))
        one = carry_exposure(carried, daily)
        many = carry_exposure(np.array([carried, carried]), np.stack([daily, daily]))
        assert one.shape == ()
        assert one.tobytes() == many[0].tobytes() == many[1].tobytes()


def test_nominal_features_are_computed_once_per_schedule_content():
    """The cache by schedule content changes no bit, hands out copies, and two schedules
    that differ in any field (the start level here) get their own features."""
    from lenasim.core import exposure

    esc = Escalation(step_mg=5, every=1, unit="cycles")
    reg = Regimen(cycle_days=28, days_on=(1, 21), start_mg=5, target_mg=15, escalation=esc,
                  cycles=8)  # fmt: skip
    s = reg.expand()
    exposure._NOMINAL.clear()
    first = nominal_features(s)
    fresh = exposure._nominal_features(s, s.n_cycles)
    first["cum_exposure"][:] = -1.0  # a caller's change reaches no other caller
    again = nominal_features(s)
    assert len(exposure._NOMINAL) == 1
    for k, v in fresh.items():
        assert again[k].tobytes() == v.tobytes(), k
    other = nominal_features(dataclasses.replace(s, start_level=1))
    assert len(exposure._NOMINAL) == 2
    assert other["dose_mean"][0] > again["dose_mean"][0]
