"""The regimen language: a lenalidomide schedule as a protocol writes it.

A :class:`Regimen` is validated data (pydantic). :meth:`Regimen.expand` turns it
into a :class:`Schedule`: the calendar of one patient's treatment, independent of
what happens to that patient (dose levels, the days on drug in each cycle, and
how many escalation steps fall on or before each day of each cycle).

:func:`cycle_features` then evaluates one cycle for any array of patient states
(the dose level at the start of the cycle, whether the cycle's escalation steps
are allowed, the highest dose given before the cycle), so the fit (one nominal
patient per trial arm) and the simulator (a million patients in different states)
share one piece of schedule code.

Units: doses in mg per day on the days taken, days as protocol days (day 1 is the
first day of a cycle), cycles numbered from 1 in text and from 0 in arrays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from lenasim.core.schema import LAX, Strict, brief

__all__ = [
    "CAPSULE_MG",
    "MAX_DOSE_MG",
    "MAX_LEVELS",
    "MIN_DOSE_MG",
    "Escalation",
    "FirstCycle",
    "Regimen",
    "Schedule",
    "cycle_features",
    "nominal_features",
]

_UNIT_DAYS = {"days": 1, "weeks": 7}

# Plausible lenalidomide doses (mg/day). The trials gave 2.5 to 25 mg (capsules of 2.5,
# 5, 10, 15, 20 and 25 mg); the range leaves room for other schedules but refuses
# micrograms or grams, which are unit mistakes.
MIN_DOSE_MG = 0.5
MAX_DOSE_MG = 100.0
# Dose levels of one regimen, reductions included (the trials use at most 10). The
# simulator's state tables grow with the square of this number, times the cycles.
MAX_LEVELS = 32
# The smallest lenalidomide capsule (mg). Capsules come in 2.5, 5, 7.5, 10, 15, 20 and
# 25 mg (Revlimid prescribing information, section 3, Dosage forms and strengths); every
# daily dose the trials and the label give is a multiple of 2.5 mg. A regimen's doses must
# be multiples of it unless it says `capsules: any`.
CAPSULE_MG = 2.5
# Lead-ins and step intervals longer than this (in days, weeks or cycles) are refused
# (the longest horizon is 120 cycles of 84 days, about 10,000 days).
MAX_EVERY = 10_000

_Dose = Field(ge=MIN_DOSE_MG, le=MAX_DOSE_MG)


class Escalation(Strict):
    """How the dose rises: a fixed step or a list of levels, every N days, weeks or cycles.

    Day- and week-based steps count calendar days from the first dose (a step that
    falls on a rest day takes effect at the next dose). Cycle-based steps take effect
    on day 1 of a cycle, counted from the first cycle with lenalidomide.
    """

    step_mg: float | None = Field(
        None,
        ge=MIN_DOSE_MG,
        le=MAX_DOSE_MG,
        description=f"Dose added at each step (mg, {MIN_DOSE_MG:g}-{MAX_DOSE_MG:g}).",
    )
    levels_mg: list[Annotated[float, _Dose]] | None = Field(
        None,
        max_length=MAX_LEVELS,
        description="Dose levels in order, from the starting dose to the target "
        f"({MIN_DOSE_MG:g}-{MAX_DOSE_MG:g} mg).",
    )
    every: int = Field(..., ge=1, le=MAX_EVERY, description="Steps happen every `every` `unit`.")
    unit: Literal["days", "weeks", "cycles"] = Field(
        "cycles", description="The unit of `every` and `first_step_after`."
    )
    first_step_after: int | None = Field(
        None,
        ge=1,
        le=MAX_EVERY,
        description="The first step comes this many `unit` after the first dose (default: "
        "`every`); later steps follow every `every`. A lead-in: Badoux 2011 gave 5 mg for "
        "two 28-day cycles, then +5 mg every cycle (`every: 1, first_step_after: 2`).",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Escalation:
        if (self.step_mg is None) == (self.levels_mg is None):
            raise ValueError("give exactly one of step_mg or levels_mg")
        if self.levels_mg is not None:
            lv = self.levels_mg
            if len(lv) < 2 or any(x <= 0 for x in lv) or any(b <= a for a, b in zip(lv, lv[1:])):
                raise ValueError(
                    f"levels_mg must be at least two positive doses in increasing order, got {lv}"
                )
        return self


class FirstCycle(Strict):
    """First-cycle exceptions: another cycle length, or other days on (or none)."""

    cycle_days: int | None = Field(
        None, ge=1, le=84, description="Length of cycle 1 in days, when it differs."
    )
    days_on: Annotated[tuple[int, int] | None, LAX] = Field(
        None, description="First and last day on drug in cycle 1; omit for the usual days."
    )
    no_lenalidomide: bool = Field(
        False, description="Cycle 1 gives the partner drugs only; lenalidomide starts in cycle 2."
    )

    @field_validator("days_on", mode="before")
    @classmethod
    def _days_text(cls, v):
        return _days_as_list(v)


class Regimen(Strict):
    """A lenalidomide schedule, written the way a protocol writes it.

    Examples
    --------
    Chen 2011 amended protocol (seed 003): 2.5 mg days 1-21 of 28, 5 mg in cycle 2,
    10 mg from cycle 3::

        Regimen(cycle_days=28, days_on=(1, 21), start_mg=2.5, target_mg=10,
                escalation=Escalation(levels_mg=[2.5, 5, 10], every=1, unit="cycles"),
                cycles=12)
    """

    cycle_days: int = Field(..., ge=7, le=84, description="Length of a cycle in days.")
    days_on: Annotated[tuple[int, int], LAX] = Field(
        ..., description="First and last day on drug in a cycle."
    )
    start_mg: float = Field(
        ...,
        ge=MIN_DOSE_MG,
        le=MAX_DOSE_MG,
        description=f"Starting dose (mg/day, {MIN_DOSE_MG:g}-{MAX_DOSE_MG:g}).",
    )
    target_mg: float | None = Field(
        None,
        ge=MIN_DOSE_MG,
        le=MAX_DOSE_MG,
        description=f"Dose escalation stops at (mg/day, {MIN_DOSE_MG:g}-{MAX_DOSE_MG:g}).",
    )
    max_mg: float | None = Field(
        None,
        ge=MIN_DOSE_MG,
        le=MAX_DOSE_MG,
        description=f"Highest dose allowed (mg/day, {MIN_DOSE_MG:g}-{MAX_DOSE_MG:g}).",
    )
    escalation: Escalation | None = None
    reduction_levels_mg: list[Annotated[float, _Dose]] = Field(
        default_factory=list,
        max_length=MAX_LEVELS,
        description="Doses below the starting dose (increasing) that 'reduce one level' "
        "steps down to; without them, reducing from the starting dose means stopping.",
    )
    cycles: int = Field(..., ge=1, le=120, description="Number of cycles planned.")
    first_cycle: FirstCycle | None = None
    capsules: Literal["multiples_of_2.5", "any"] = Field(
        "multiples_of_2.5",
        description="multiples_of_2.5: every daily dose (start, target, max, steps, levels, "
        "reductions) is a multiple of 2.5 mg, the smallest capsule (doses that no capsules "
        "make up are refused); any: allow other doses (e.g. a liquid formulation).",
    )

    @field_validator("days_on", mode="before")
    @classmethod
    def _days_text(cls, v):
        return _days_as_list(v)

    @model_validator(mode="after")
    def _check(self) -> Regimen:
        _check_days("days_on", self.days_on, self.cycle_days)
        fc = self.first_cycle
        if fc is not None and fc.days_on is not None:
            _check_days("first_cycle.days_on", fc.days_on, fc.cycle_days or self.cycle_days)
        if fc is not None and fc.no_lenalidomide and self.cycles < 2:
            raise ValueError("first_cycle.no_lenalidomide needs cycles >= 2")
        target = self.target
        if target < self.start_mg:
            raise ValueError(
                f"target_mg ({target:g}) is below start_mg ({self.start_mg:g}): "
                "the target is where escalation stops, at or above the starting dose"
            )
        if self.max_mg is not None and self.max_mg < target:
            raise ValueError(f"max_mg ({self.max_mg:g}) is below target_mg ({target:g})")
        if target > self.start_mg and self.escalation is None:
            raise ValueError(
                f"target_mg ({target:g}) is above start_mg ({self.start_mg:g}) but no "
                "escalation is given: add `escalation: {step_mg: ..., every: ..., unit: ...}`"
            )
        red = self.reduction_levels_mg
        if any(x <= 0 for x in red) or any(b <= a for a, b in zip(red, red[1:])):
            raise ValueError(f"reduction_levels_mg must be positive and increasing, got {red}")
        if red and red[-1] >= self.start_mg:
            raise ValueError(
                f"reduction_levels_mg must lie below start_mg ({self.start_mg:g} mg), got {red}"
            )
        esc = self.escalation
        if esc is not None and esc.levels_mg is not None:
            if not (np.isclose(esc.levels_mg[0], self.start_mg)):
                raise ValueError(
                    f"escalation.levels_mg starts at {esc.levels_mg[0]:g} mg, "
                    f"not at start_mg ({self.start_mg:g} mg)"
                )
            if not np.isclose(esc.levels_mg[-1], target):
                raise ValueError(
                    f"escalation.levels_mg ends at {esc.levels_mg[-1]:g} mg, "
                    f"not at target_mg ({target:g} mg)"
                )
        n_levels = len(red) + self._n_escalation_levels()
        if n_levels > MAX_LEVELS:
            count = f"{n_levels}" if n_levels < 10**6 else f"{n_levels:.1e}"
            raise ValueError(
                f"escalation gives {count} dose levels (reductions included); at most "
                f"{MAX_LEVELS}: use a larger step_mg, or list the levels_mg"
            )
        if self.capsules != "any":
            self._check_capsules()
        if esc is not None and len(self.escalation_levels()) > 1 and not self.expand().steps.any():
            lead = esc.every if esc.first_step_after is None else esc.first_step_after
            unit = esc.unit if lead > 1 else esc.unit[:-1]
            raise ValueError(
                f"escalation: the first step comes {lead} {unit} after the first dose, after "
                f"the {self.cycles} planned cycles, so the dose never rises above "
                f"{_mg(self.start_mg)} mg: give a shorter escalation.first_step_after (or "
                "every), more cycles, or no escalation"
            )
        return self

    def _check_capsules(self) -> None:
        doses = {"start_mg": [self.start_mg], "target_mg": [self.target],
                 "max_mg": [] if self.max_mg is None else [self.max_mg],
                 "reduction_levels_mg": list(self.reduction_levels_mg),
                 "escalation": list(self.escalation_levels())}  # fmt: skip
        for key, values in doses.items():
            for x in values:
                if abs(x / CAPSULE_MG - round(x / CAPSULE_MG)) > 1e-9:
                    what = "gives the dose " if key == "escalation" else ""
                    raise ValueError(
                        f"{key}: {what}{_mg(x)} mg a day is not a multiple of {CAPSULE_MG:g} mg "
                        f"(the smallest capsule; capsules are 2.5, 5, 7.5, 10, 15, 20, 25 mg): "
                        f"use {_mg(CAPSULE_MG * round(x / CAPSULE_MG) or CAPSULE_MG)} mg, or "
                        "write `capsules: any` in the regimen if the dose is meant"
                    )

    def _n_escalation_levels(self) -> int:
        """len(escalation_levels()), computed without building it."""
        esc = self.escalation
        if esc is None or self.target <= self.start_mg:
            return 1
        if esc.levels_mg is not None:
            return len(esc.levels_mg)
        n = int(np.floor((self.target - self.start_mg) / esc.step_mg + 1e-9))
        return n + 1 + (self.start_mg + esc.step_mg * n < self.target - 1e-9)

    @property
    def target(self) -> float:
        return self.start_mg if self.target_mg is None else self.target_mg

    @property
    def start_level(self) -> int:
        """Index of the starting dose in :meth:`levels` (reduction levels come first)."""
        return len(self.reduction_levels_mg)

    def escalation_levels(self) -> np.ndarray:
        """Dose levels (mg/day) from the starting dose to the target, increasing."""
        esc = self.escalation
        if esc is None or self.target <= self.start_mg:
            return np.array([self.start_mg])
        if esc.levels_mg is not None:
            return np.asarray(esc.levels_mg, dtype=float)
        n = int(np.floor((self.target - self.start_mg) / esc.step_mg + 1e-9))
        lv = self.start_mg + esc.step_mg * np.arange(n + 1)
        if lv[-1] < self.target - 1e-9:
            lv = np.append(lv, self.target)
        return lv

    def levels(self) -> np.ndarray:
        """Every dose level (mg/day), increasing: reduction levels, then start to target."""
        red = np.asarray(self.reduction_levels_mg, dtype=float)
        return np.concatenate([red, self.escalation_levels()])

    def expand(self, cycles: int | None = None) -> Schedule:
        """Expand to the calendar of one patient's treatment (see :class:`Schedule`)."""
        n_cyc = self.cycles if cycles is None else cycles
        fc = self.first_cycle or FirstCycle()
        lengths = np.full(n_cyc, self.cycle_days, dtype=np.int64)
        if fc.cycle_days is not None:
            lengths[0] = fc.cycle_days
        dmax = int(lengths.max())
        on = np.zeros((n_cyc, dmax), dtype=bool)
        for c in range(n_cyc):
            first, last = self.days_on
            if c == 0 and fc.days_on is not None:
                first, last = fc.days_on
            if c == 0 and fc.no_lenalidomide:
                continue
            on[c, first - 1 : last] = True
        # Calendar day (from 0) of every day of every cycle; padding days get -1.
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        day = starts[:, None] + np.arange(dmax)[None, :]
        valid = np.arange(dmax)[None, :] < lengths[:, None]
        day = np.where(valid, day, -1)
        exposed = on.any(axis=1)
        first_cyc = int(np.argmax(exposed))
        first_day = int(day[first_cyc, np.argmax(on[first_cyc])])
        steps = np.zeros((n_cyc, dmax), dtype=np.int64)
        esc = self.escalation
        if esc is not None and len(self.escalation_levels()) > 1:
            lead = esc.every if esc.first_step_after is None else esc.first_step_after
            if esc.unit == "cycles":
                # Steps on day 1 of cycles first+lead, first+lead+every, ...
                k = np.arange(n_cyc) - first_cyc - lead
                at_start = (k >= 0) & (k % esc.every == 0)
                steps[at_start, :] = 1
            else:
                interval = esc.every * _UNIT_DAYS[esc.unit]
                since = day - first_day - lead * _UNIT_DAYS[esc.unit]
                hit = (since >= 0) & (since % interval == 0) & valid
                # Steps counted inside each cycle only (cumulative within the cycle):
                steps = np.cumsum(hit, axis=1)
        steps = np.where(valid, steps, 0)
        # Steps in cycle c take the level reached at the end of cycle c-1 further.
        return Schedule(
            levels_mg=self.levels(),
            cycle_days=lengths,
            on=on & valid,
            steps=steps,
            max_mg=self.max_mg if self.max_mg is not None else self.target,
            start_level=self.start_level,
        )

    def describe(self) -> str:
        """The schedule in words, as a protocol would state it."""
        lv = self.escalation_levels()
        d0, d1 = self.days_on
        days = (
            f"days {d0}-{d1} of {self.cycle_days}-day cycles"
            if (d0, d1) != (1, self.cycle_days)
            else f"continuously ({self.cycle_days}-day cycles)"
        )
        parts = [f"{_mg(self.start_mg)} mg/day {days}"]
        esc = self.escalation
        if esc is not None and len(lv) > 1:
            unit = esc.unit[:-1] if esc.every == 1 else esc.unit
            every = f"every {esc.unit[:-1]}" if esc.every == 1 else f"every {esc.every} {unit}"
            if esc.levels_mg is not None:
                parts.append(f"escalated {every} through {'/'.join(_mg(x) for x in lv)} mg")
            else:
                parts.append(f"+{_mg(esc.step_mg)} mg {every} to {_mg(self.target)} mg")
            if esc.first_step_after is not None and esc.first_step_after != esc.every:
                n = esc.first_step_after
                parts[-1] += (
                    f" from {n} {esc.unit if n > 1 else esc.unit[:-1]} after the first dose"
                )
        fc = self.first_cycle
        if fc is not None:
            bits = []
            if fc.no_lenalidomide:
                bits.append("no lenalidomide in cycle 1 (partner drugs only)")
            if fc.cycle_days is not None:
                bits.append(f"cycle 1 lasts {fc.cycle_days} days")
            if fc.days_on is not None:
                bits.append(f"cycle 1 days {fc.days_on[0]}-{fc.days_on[1]}")
            if bits:
                parts.append("; ".join(bits))
        if self.reduction_levels_mg:
            red = "/".join(_mg(x) for x in self.reduction_levels_mg)
            parts.append(f"reductions to {red} mg")
        parts.append(f"{self.cycles} cycle{'s' if self.cycles > 1 else ''}")
        return ", ".join(parts)


def _mg(x: float) -> str:
    return f"{x:g}"


def _days_as_list(v):
    """days_on written as text ("1-21") gets the fix: a list of the first and last day."""
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-|to|\u2013)\s*(\d+)\s*", v)
        example = f"[{m[1]}, {m[2]}]" if m else "[1, 21]"
        raise ValueError(
            f"write the first and last day on drug as a list, {example}, not {brief(v)}"
        )
    return v


def _check_days(name: str, days: tuple[int, int], length: int) -> None:
    first, last = days
    if first < 1 or last < first:
        raise ValueError(
            f"{name} = [{first}, {last}]: days run from 1 and the last is >= the first"
        )
    if last > length:
        raise ValueError(
            f"{name} = [{first}, {last}] ends after the {length}-day cycle: "
            f"the last day on must be <= {length}"
        )


@dataclass(frozen=True)
class Schedule:
    """The expanded calendar of a regimen, for one patient, independent of events.

    Attributes
    ----------
    levels_mg : (L,) dose levels, increasing; index ``start_level`` is the starting dose
        (the levels below it are reductions only).
    cycle_days : (C,) length of each cycle in days.
    on : (C, D) True on the days lenalidomide is taken (D = longest cycle; padding False).
    steps : (C, D) escalation steps that have fallen within cycle c on or before day d.
    max_mg : the highest dose allowed.
    start_level : index of the starting dose in ``levels_mg``.
    """

    levels_mg: np.ndarray
    cycle_days: np.ndarray
    on: np.ndarray
    steps: np.ndarray
    max_mg: float
    start_level: int = 0

    @property
    def n_cycles(self) -> int:
        return int(self.cycle_days.size)

    @property
    def top_level(self) -> int:
        return int(self.levels_mg.size - 1)

    def nominal_start_levels(self) -> np.ndarray:
        """Level at the start of each cycle for a patient who escalates on schedule."""
        out = np.zeros(self.n_cycles, dtype=np.int64)
        level = self.start_level
        for c in range(self.n_cycles):
            out[c] = level
            level = min(level + int(self.steps[c].max()), self.top_level)
        return out

    def gap_before(self, cycle: int) -> int:
        """Days without lenalidomide between the last planned dose before ``cycle`` and
        the cycle's first dose; 0 for the first lenalidomide cycle or one without drug."""
        on = self.on[cycle]
        if not on.any():
            return 0
        before = [c for c in range(cycle) if self.on[c].any()]
        if not before:
            return 0
        last = before[-1]
        last_day = int(self.cycle_days[:last].sum()) + int(np.flatnonzero(self.on[last])[-1])
        first_day = int(self.cycle_days[:cycle].sum()) + int(np.flatnonzero(on)[0])
        return first_day - last_day - 1

    def daily_doses(self) -> np.ndarray:
        """Daily dose (mg, 0 on rest days) over the whole schedule, escalating on time."""
        start = self.nominal_start_levels()
        out = []
        for c in range(self.n_cycles):
            lev = np.minimum(start[c] + self.steps[c], self.top_level)
            dose = self.levels_mg[lev] * self.on[c]
            out.append(dose[: self.cycle_days[c]])
        return np.concatenate(out)


FEATURES = (
    "log_dose",
    "log_frac_on",
    "first",
    "first_log_dose",
    "rise",
    "log_cycle",
    "restart",
    "cum_exposure",
    "exposed",
)
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
    """(..., cycle days) mg taken on each day of ``cycle`` from start ``level`` (an array
    of patient states, with ``allowed``: whether the cycle's escalation steps are taken),
    0 on days off. ``taken``: every planned day (``all``); the first half of the days on
    drug only, as the engine takes a hold, reduce or discontinue to strike mid-cycle
    (``first_half``); or the second half at the level reached at mid-cycle
    (``mid_level``: a grade >= 3 event with action continue under
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
      ``dose_mean`` mean daily dose on the days on drug (mg), ``dose_max`` highest daily
      dose in the cycle (mg), ``dose_total`` mg over the cycle, ``intensity`` mg per
      day over the whole cycle, ``end_level`` level at the end of the cycle, and the
      hazard features: ``log_dose`` = log(dose_mean / 10 mg), ``log_frac_on`` =
      log(days on / cycle days), ``first`` (first cycle with lenalidomide),
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
    log_dose = np.log(dose_mean / 10.0)
    out = {
        "dose_mean": dose_mean,
        "dose_max": dose_max,
        "dose_total": dose_total,
        "intensity": dose_total / schedule.cycle_days[cycle],
        "end_level": end_level,
        "log_dose": log_dose,
        "log_frac_on": np.full(shape, np.log(n_on / schedule.cycle_days[cycle])),
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
