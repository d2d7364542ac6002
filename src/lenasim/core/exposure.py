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

import numpy as np

from lenasim.core.schedule import Schedule

__all__ = ["RESTART_GAP_DAYS", "cycle_features", "nominal_features"]

# Days without lenalidomide before a cycle's first dose that count as a restart (see
# cycle_features): longer than the week off of a days 1-21 of 28 schedule, as long as
# the 21 days off of Aue's days 1-21 of 42 (notes: flare recurred there at every cycle).
RESTART_GAP_DAYS = 14


def cycle_features(
    schedule: Schedule,
    cycle: int,
    level: np.ndarray,
    allowed: np.ndarray,
    highest_mg: np.ndarray,
    lenalidomide_cycle: np.ndarray | int | None = None,
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
      cycle, as the schedule plans them), ``exposed`` (any drug this cycle).
    """
    level = np.asarray(level)
    allowed = np.asarray(allowed, dtype=bool)
    highest_mg = np.asarray(highest_mg, dtype=float)
    shape = np.broadcast_shapes(level.shape, allowed.shape, highest_mg.shape)
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
            "log_cycle": zero, "restart": zero, "exposed": zero,
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
        "exposed": np.ones(shape),
    }
    return {k: np.broadcast_to(v, shape) for k, v in out.items()}


def nominal_features(schedule: Schedule, cycles: int | None = None) -> dict[str, np.ndarray]:
    """Per-cycle features of a patient who escalates on schedule with no event.

    Returns a dict of (C,) arrays with the keys of :func:`cycle_features` plus ``cycle``
    (1-based). This is what a trial arm's protocol implies, and what the fit uses.
    """
    n = schedule.n_cycles if cycles is None else cycles
    rows: dict[str, list] = {}
    level, highest = schedule.start_level, 0.0
    for c in range(n):
        f = cycle_features(schedule, c, np.array(level), np.array(True), np.array(highest))
        for k, v in f.items():
            rows.setdefault(k, []).append(float(v))
        rows.setdefault("cycle", []).append(c + 1)
        level = int(f["end_level"])
        highest = max(highest, float(f["dose_max"]))
    return {k: np.asarray(v) for k, v in rows.items()}
