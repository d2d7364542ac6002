"""The schedule expansion: a :class:`~lenasim.core.regimen.Regimen` turned into the calendar
of one patient's treatment (:class:`Schedule`), independent of what happens to that patient:
the dose levels, the days a dose is taken in each cycle, how many escalation steps fall on
or before each day, and the dosing interval.

Units: doses in mg on the days a dose is taken, days as protocol days (day 1 is the first
day of a cycle), cycles numbered from 1 in text and from 0 in arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["INTERVAL_DAYS", "Schedule", "expand"]

_UNIT_DAYS = {"days": 1, "weeks": 7}

INTERVAL_DAYS = {"daily": 1, "every_other_day": 2}
"""Days between two doses of each ``Regimen.dosing``: every other day takes a dose on the
first day on and every second day after it, within each cycle's days on."""


def expand(regimen: Any, cycles: int | None = None) -> Schedule:
    """The calendar of one patient's treatment under ``regimen``, a validated
    :class:`lenasim.core.regimen.Regimen` (not imported here: the regimen imports this
    module); ``cycles``: how many, default the regimen's own."""
    n_cyc = regimen.cycles if cycles is None else cycles
    fc = regimen.first_cycle
    lengths = np.full(n_cyc, regimen.cycle_days, dtype=np.int64)
    if fc is not None and fc.cycle_days is not None:
        lengths[0] = fc.cycle_days
    dmax = int(lengths.max())
    interval = INTERVAL_DAYS[regimen.dosing]
    on = np.zeros((n_cyc, dmax), dtype=bool)
    for c in range(n_cyc):
        first, last = regimen.days_on
        if c == 0 and fc is not None and fc.days_on is not None:
            first, last = fc.days_on
        if c == 0 and fc is not None and fc.no_lenalidomide:
            continue
        on[c, first - 1 : last : interval] = True
    # Calendar day (from 0) of every day of every cycle; padding days get -1.
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    day = starts[:, None] + np.arange(dmax)[None, :]
    valid = np.arange(dmax)[None, :] < lengths[:, None]
    day = np.where(valid, day, -1)
    exposed = on.any(axis=1)
    first_cyc = int(np.argmax(exposed))
    first_day = int(day[first_cyc, np.argmax(on[first_cyc])])
    steps = np.zeros((n_cyc, dmax), dtype=np.int64)
    esc = regimen.escalation
    if esc is not None and len(regimen.escalation_levels()) > 1:
        lead = esc.every if esc.first_step_after is None else esc.first_step_after
        if esc.unit == "cycles":
            # Steps on day 1 of cycles first+lead, first+lead+every, ...
            k = np.arange(n_cyc) - first_cyc - lead
            at_start = (k >= 0) & (k % esc.every == 0)
            steps[at_start, :] = 1
        else:
            step_days = esc.every * _UNIT_DAYS[esc.unit]
            since = day - first_day - lead * _UNIT_DAYS[esc.unit]
            hit = (since >= 0) & (since % step_days == 0) & valid
            # Steps counted inside each cycle only (cumulative within the cycle):
            steps = np.cumsum(hit, axis=1)
    steps = np.where(valid, steps, 0)
    # Steps in cycle c take the level reached at the end of cycle c-1 further.
    return Schedule(
        levels_mg=regimen.levels(),
        cycle_days=lengths,
        on=on & valid,
        steps=steps,
        max_mg=regimen.max_mg if regimen.max_mg is not None else regimen.target,
        start_level=regimen.start_level,
        interval=interval,
    )


@dataclass(frozen=True)
class Schedule:
    """The expanded calendar of a regimen, for one patient, independent of events.

    Attributes
    ----------
    levels_mg : (L,) dose levels, increasing; index ``start_level`` is the starting dose
        (the levels below it are reductions only).
    cycle_days : (C,) length of each cycle in days.
    on : (C, D) True on the days a dose of lenalidomide is taken (D = longest cycle;
        padding False).
    steps : (C, D) escalation steps that have fallen within cycle c on or before day d.
    max_mg : the highest dose allowed.
    start_level : index of the starting dose in ``levels_mg``.
    interval : days between two doses (1 daily, 2 every other day): each dose covers
        ``interval`` days of exposure (:meth:`days_at_risk`).
    """

    levels_mg: np.ndarray
    cycle_days: np.ndarray
    on: np.ndarray
    steps: np.ndarray
    max_mg: float
    start_level: int = 0
    interval: int = 1

    @property
    def n_cycles(self) -> int:
        return int(self.cycle_days.size)

    @property
    def top_level(self) -> int:
        return int(self.levels_mg.size - 1)

    def days_at_risk(self) -> np.ndarray:
        """(C,) days of each cycle covered by a dose: the doses taken times the interval,
        at most the cycle's length (daily dosing: the days on drug)."""
        return np.minimum(self.on.sum(axis=1) * self.interval, self.cycle_days)

    def nominal_start_levels(self) -> np.ndarray:
        """Level at the start of each cycle for a patient who escalates on schedule."""
        out = np.zeros(self.n_cycles, dtype=np.int64)
        level = self.start_level
        for c in range(self.n_cycles):
            out[c] = level
            level = min(level + int(self.steps[c].max()), self.top_level)
        return out

    def gap_before(self, cycle: int) -> int:
        """Days without lenalidomide between the last planned dose before ``cycle`` (and
        the days it covers, ``interval``) and the cycle's first dose; 0 for the first
        lenalidomide cycle or one without drug."""
        on = self.on[cycle]
        if not on.any():
            return 0
        before = [c for c in range(cycle) if self.on[c].any()]
        if not before:
            return 0
        last = before[-1]
        last_day = int(self.cycle_days[:last].sum()) + int(np.flatnonzero(self.on[last])[-1])
        first_day = int(self.cycle_days[:cycle].sum()) + int(np.flatnonzero(on)[0])
        return first_day - last_day - self.interval

    def daily_doses(self) -> np.ndarray:
        """Daily dose (mg, 0 on days without a dose) over the whole schedule, escalating
        on time."""
        start = self.nominal_start_levels()
        out = []
        for c in range(self.n_cycles):
            lev = np.minimum(start[c] + self.steps[c], self.top_level)
            dose = self.levels_mg[lev] * self.on[c]
            out.append(dose[: self.cycle_days[c]])
        return np.concatenate(out)
