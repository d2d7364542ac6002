"""The exposure features of a cycle: what the hazard sees of a schedule.

:func:`cycle_features` evaluates one cycle of a :class:`~lenasim.core.schedule.Schedule`
for any array of patient states (the dose level at the start of the cycle, whether the
cycle's escalation steps are allowed, the highest dose given before the cycle), so the fit
(one nominal patient per trial arm, :func:`nominal_features`) and the simulator (a million
patients in different states) share one piece of schedule code.

Every other day. The dose terms act on exposure, and the exposure of a schedule is its
average daily exposure over the days its doses cover: a dose of D mg taken every
``interval`` days enters as D / interval mg a day over ``interval`` days (``log_dose``,
``first_log_dose``), and those days are the days at risk (``log_frac_on``, and the offset
of the ``cloglog_daily`` link). So 15 mg every other day is 7.5 mg daily to the model. Why:
lenalidomide's half-life is 3-4 h and its AUC is proportional to dose from 5 to 400 mg
(Chen et al., Cancer Chemother Pharmacol 2012), so nothing accumulates between doses and
15 mg every 48 h gives the AUC per 48 h of 7.5 mg every 24 h; the fitted dose slopes come
from trials that all dosed daily, where mg a day and AUC a day are the same number, so they
measure exposure per day and cannot tell it from the peak (Cmax, twice as high every other
day). Were toxicity to follow the peak, 15 mg every other day would be riskier than this
says: an assumption, not a finding. The days without a dose are counted as days at risk,
not as a gap (the daily hazard of ``cloglog_daily`` applies to the covered days at the
average exposure; counting only the dosing days at 15 mg would make the two schedules differ
by 2^(slope - 1), a peak effect by another name).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from lenasim.core.schedule import Schedule

__all__ = [
    "MARROW_MTT_DAYS",
    "REFERENCE_EXPOSURE_DAYS",
    "RESTART_GAP_DAYS",
    "carry_coefficients",
    "carry_exposure",
    "cum_exposure_feature",
    "cycle_daily_mg",
    "cycle_features",
    "nominal_features",
    "schedule_key",
]

# Days without lenalidomide before a cycle's first dose that count as a restart (see
# cycle_features): longer than the week off of a days 1-21 of 28 schedule, as long as
# the 21 days off of Aue's days 1-21 of 42 (notes: flare recurred there at every cycle).
RESTART_GAP_DAYS = 14
# Marrow recovery of the cumulative-exposure term (``cum_exposure``, issue 23 item 4): the
# exposure carried into a cycle is the dose received before it, in reference dose-days
# (10 mg taken on one day), and each day without lenalidomide multiplies it by
# exp(-1 / MARROW_MTT_DAYS): the marrow's deficit refills at the pace of the neutrophil
# transit chain. MTT 124 h is the mean transit time of Friberg et al., J Clin Oncol
# 2002;20:4713 (paclitaxel, leukocytes); docetaxel's ANC fit (Kloft et al. 2006) gave
# 84.2 h, a faster recovery. Fixed, not fitted: 7 days off keep 26% of the carried
# exposure, 14 days 7%, 21 days 2% (Aue's pulse of days 1-21 of 42 starts almost afresh).
MARROW_MTT_DAYS = 124.0 / 24.0
# The exposure of the reference cycle (10 mg on each of 28 days), the unit of cum_exposure:
# cum_exposure = log(1 + carried dose-days / REFERENCE_EXPOSURE_DAYS).
REFERENCE_EXPOSURE_DAYS = 28.0


def carry_exposure(carried: np.ndarray, daily_mg: np.ndarray) -> np.ndarray:
    """The exposure carried past a run of days: ``carried`` (reference dose-days, any
    shape) plus each day's dose / 10 mg on days on drug, times exp(-1 / MARROW_MTT_DAYS)
    on each day without it (``daily_mg``: (..., D) mg per day, 0 off drug; broadcasts)."""
    e = np.asarray(carried, float)
    daily_mg = np.asarray(daily_mg, float)
    keep = np.exp(-1.0 / MARROW_MTT_DAYS)
    if e.ndim == 0 and daily_mg.ndim == 1:  # one patient (the fit's arms): Python floats,
        x, k = float(e), float(keep)  # the same IEEE operations, ~50x less overhead
        for mg in daily_mg.tolist():
            x = x + mg / 10.0 if mg > 0 else x * k
        return np.asarray(x)
    for d in range(daily_mg.shape[-1]):
        mg = daily_mg[..., d]
        e = np.where(mg > 0, e + mg / 10.0, e * keep)
    return e


def cycle_daily_mg(
    schedule: Schedule,
    cycle: int,
    level: np.ndarray | int,
    allowed: np.ndarray | bool = True,
    taken: Literal["all", "first_half", "mid_level"] = "all",
) -> np.ndarray:
    """(..., cycle days) exposure in mg on each day of ``cycle`` from start ``level`` (an
    array of patient states, with ``allowed``: whether the cycle's escalation steps are
    taken), 0 on days off; every other day, a dose of D mg counts as D / 2 on each of the
    two days it covers (the module docstring). ``taken``: every planned day (``all``); the
    first half of the doses only, as the engine takes a hold, reduce or discontinue to
    strike mid-cycle (``first_half``); or the second half at the level reached at
    mid-cycle (``mid_level``: a grade >= 3 event with action continue under
    escalate_only_if_tolerated)."""
    level = np.asarray(level)[..., None]
    allowed = np.asarray(allowed, bool)[..., None]
    days = int(schedule.cycle_days[cycle])
    on = schedule.on[cycle][:days]
    steps = schedule.steps[cycle][:days]
    lev = np.minimum(level + allowed * steps, schedule.top_level)
    idx = np.flatnonzero(on)
    half = idx.size // 2
    if taken == "mid_level" and idx.size:
        mid = lev[..., idx[max(half - 1, 0)]][..., None]
        lev = np.where(np.arange(days) > idx[max(half - 1, 0)], mid, lev)
    dose = schedule.levels_mg[lev] * on
    if taken == "first_half":
        keep = np.zeros(days, bool)
        keep[idx[:half]] = True
        dose = dose * keep
    interval = int(schedule.interval)
    if interval > 1:  # spread each dose over the days it covers
        spread = np.zeros_like(dose)
        for k in range(interval):
            spread[..., k:] += dose[..., : days - k] / interval
        dose = spread
    return dose


def carry_coefficients(daily_mg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, A) with carry_exposure(E, daily_mg) = E K + A for any carried E: the share of
    the carried exposure a run of days keeps, and the exposure it adds (the update is
    linear in E; ``daily_mg``: (..., D))."""
    daily_mg = np.asarray(daily_mg, float)
    n_off = (daily_mg <= 0).sum(axis=-1)
    return np.exp(-1.0 / MARROW_MTT_DAYS) ** n_off, carry_exposure(0.0, daily_mg)


def cum_exposure_feature(carried: np.ndarray) -> np.ndarray:
    """``cum_exposure`` = log(1 + carried / REFERENCE_EXPOSURE_DAYS): 0 before any drug,
    log 2 after one reference cycle carried in full."""
    return np.log1p(np.asarray(carried, float) / REFERENCE_EXPOSURE_DAYS)


def cycle_features(
    schedule: Schedule,
    cycle: int,
    level: np.ndarray,
    allowed: np.ndarray,
    highest_mg: np.ndarray,
    lenalidomide_cycle: np.ndarray | int | None = None,
    carried: np.ndarray | float = np.nan,
) -> dict[str, np.ndarray]:
    """Exposure features of one cycle for an array of patient states.

    Parameters
    ----------
    schedule : the expanded regimen.
    cycle : cycle index (0 = cycle 1).
    level : int array, dose level at the start of the cycle (before its steps).
    allowed : bool array, whether the cycle's escalation steps are taken.
    highest_mg : float array, the highest daily dose given before this cycle (0 if none).
    lenalidomide_cycle : how many cycles with lenalidomide have been started, this one
        included (defaults to the schedule's own count).
    carried : the exposure carried into the cycle (:func:`carry_exposure`, reference
        dose-days); NaN (the default) where the caller does not track it.

    Returns
    -------
    dict of arrays broadcast to the states' shape:
      ``dose_mean`` mean dose on the days a dose is taken (mg), ``dose_max`` highest
      dose in the cycle (mg), ``dose_total`` mg over the cycle, ``intensity`` mg per
      day over the whole cycle, ``end_level`` level at the end of the cycle, and the
      hazard features: ``log_dose`` = log(dose_mean / interval / 10 mg) (the exposure a
      day: module docstring), ``log_frac_on`` = log(days at risk / cycle days) (the days
      on drug when dosing daily; :meth:`Schedule.days_at_risk`), ``first`` (first cycle
      with lenalidomide),
      ``first_log_dose`` = first * log_dose (the dose a patient starts on: tumour burden
      is highest then), ``rise`` = log(dose_max / highest earlier dose) (in the first
      cycle: over the first dose), ``log_cycle`` = log(lenalidomide cycle number),
      ``restart`` (1 when this cycle's first dose follows at least
      :data:`RESTART_GAP_DAYS` days without lenalidomide, after an earlier lenalidomide
      cycle, as the schedule plans them), ``cum_exposure`` (:func:`cum_exposure_feature`
      of ``carried``), ``exposed`` (any drug this cycle).
    """
    level = np.asarray(level)
    allowed = np.asarray(allowed, dtype=bool)
    highest_mg = np.asarray(highest_mg, dtype=float)
    carried = np.asarray(carried, dtype=float)
    shape = np.broadcast_shapes(level.shape, allowed.shape, highest_mg.shape, carried.shape)
    cum = np.broadcast_to(cum_exposure_feature(carried), shape)
    on = schedule.on[cycle]
    steps = schedule.steps[cycle]
    n_on = int(on.sum())
    at_risk = int(schedule.days_at_risk()[cycle])
    top = schedule.top_level
    if n_on == 0:
        zero = np.zeros(shape)
        return {
            "dose_mean": zero, "dose_max": zero, "dose_total": zero, "intensity": zero,
            "end_level": np.broadcast_to(level, shape).copy(), "log_dose": zero,
            "log_frac_on": zero, "first": zero, "first_log_dose": zero, "rise": zero,
            "log_cycle": zero, "restart": zero, "cum_exposure": cum, "exposed": zero,
        }  # fmt: skip
    idx = np.flatnonzero(on)
    # Level on each day on drug: (..., n_on). Only the distinct step counts matter.
    day_steps = steps[idx]
    lev = np.minimum(level[..., None] + allowed[..., None] * day_steps, top)
    dose = schedule.levels_mg[lev]
    dose_total = dose.sum(axis=-1)
    dose_mean = dose_total / n_on
    dose_max = dose.max(axis=-1)
    first_dose = dose[..., 0]
    end_level = np.minimum(level + allowed * int(steps.max()), top)
    first = highest_mg <= 0
    ref = np.where(first, first_dose, highest_mg)
    rise = np.maximum(np.log(dose_max / ref), 0.0)
    if lenalidomide_cycle is None:
        lenalidomide_cycle = int(schedule.on[: cycle + 1].any(axis=1).sum())
    # The exposure a day over the days the doses cover (module docstring): every other day
    # halves it; daily dosing divides by 1, which changes no bit.
    log_dose = np.log(dose_mean / schedule.interval / 10.0)
    out = {
        "dose_mean": dose_mean,
        "dose_max": dose_max,
        "dose_total": dose_total,
        "intensity": dose_total / schedule.cycle_days[cycle],
        "end_level": end_level,
        "log_dose": log_dose,
        "log_frac_on": np.full(shape, np.log(at_risk / schedule.cycle_days[cycle])),
        "first": first.astype(float),
        "first_log_dose": first * log_dose,
        "rise": rise,
        "log_cycle": np.broadcast_to(np.log(np.asarray(lenalidomide_cycle, float)), shape),
        "restart": np.full(shape, float(schedule.gap_before(cycle) >= RESTART_GAP_DAYS)),
        "cum_exposure": cum,
        "exposed": np.ones(shape),
    }
    return {k: np.broadcast_to(v, shape) for k, v in out.items()}


def nominal_features(schedule: Schedule, cycles: int | None = None) -> dict[str, np.ndarray]:
    """Per-cycle features of a patient who escalates on schedule with no event.

    Returns a dict of (C,) arrays with the keys of :func:`cycle_features` plus ``cycle``
    (1-based). This is what a trial arm's protocol implies, and what the fit uses
    (``cum_exposure``: the exposure carried from the earlier cycles as planned).
    """
    n = schedule.n_cycles if cycles is None else cycles
    key = (schedule_key(schedule), n)
    if key not in _NOMINAL:
        if len(_NOMINAL) >= _NOMINAL_MAX:
            _NOMINAL.clear()
        _NOMINAL[key] = _nominal_features(schedule, n)
    return {k: v.copy() for k, v in _NOMINAL[key].items()}


# nominal_features by schedule content: the fit, the mirror, the claims and the
# validation evaluate the same ~80 evidence arms again and again (issue 22 item 12).
# Keyed on every field's bytes, dtype and shape, so equal content gives the same result
# and the cache changes no bit; callers get copies.
_NOMINAL: dict = {}
_NOMINAL_MAX = 4096


def schedule_key(schedule: Schedule) -> tuple:
    """A hashable key of a schedule's content: every field, arrays by dtype, shape and
    bytes (equal keys, equal schedules)."""
    out = []
    for field in dataclasses.fields(schedule):
        v = getattr(schedule, field.name)
        if isinstance(v, np.ndarray):
            out.append((field.name, v.dtype.str, v.shape, v.tobytes()))
        else:
            out.append((field.name, type(v).__name__, repr(v)))
    return tuple(out)


def _nominal_features(schedule: Schedule, n: int) -> dict[str, np.ndarray]:
    rows: dict[str, list] = {}
    level, highest, carried = schedule.start_level, 0.0, 0.0
    for c in range(n):
        f = cycle_features(
            schedule, c, np.array(level), np.array(True), np.array(highest), carried=carried
        )
        for k, v in f.items():
            rows.setdefault(k, []).append(float(v))
        rows.setdefault("cycle", []).append(c + 1)
        carried = float(carry_exposure(carried, cycle_daily_mg(schedule, c, level)))
        level = int(f["end_level"])
        highest = max(highest, float(f["dose_max"]))
    return {k: np.asarray(v) for k, v in rows.items()}
