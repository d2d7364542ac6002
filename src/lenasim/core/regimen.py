"""The regimen language: a lenalidomide schedule as a protocol writes it.

A :class:`Regimen` is validated data (pydantic): this module is its schema and its
validation, and its words (:meth:`Regimen.describe`). :meth:`Regimen.expand` turns it
into a :class:`~lenasim.core.schedule.Schedule` (:mod:`lenasim.core.schedule`): the
calendar of one patient's treatment, independent of what happens to that patient.
:func:`~lenasim.core.exposure.cycle_features` (:mod:`lenasim.core.exposure`) then
evaluates one cycle for any array of patient states, for the fit and the simulator alike.
``Schedule``, ``cycle_features`` and ``nominal_features`` are importable from here too.

Units: doses in mg on the days taken (``dosing``: daily or every other day), days as
protocol days (day 1 is the first day of a cycle), cycles numbered from 1 in text and
from 0 in arrays.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

# The schedule and its exposure features live in their own modules; their public names
# stay importable from here, where every stage has always found them.
from lenasim.core.exposure import cycle_features, nominal_features
from lenasim.core.schedule import INTERVAL_DAYS, Schedule, expand
from lenasim.core.schema import LAX, Strict, brief

__all__ = [
    "CAPSULE_MG",
    "INTERVAL_DAYS",
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
    dosing: Literal["daily", "every_other_day"] = Field(
        "daily",
        description="How often a dose is taken within days_on: daily, or every other day "
        "(on the first day on and every second day after it, in each cycle; EU SmPC: 15 mg "
        "every other day below CrCl 30). The risk model sees the average exposure a day: "
        "15 mg every other day is 7.5 mg daily (docs/configuration.md, Every other day).",
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
        return expand(self, cycles)

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
        if self.dosing == "every_other_day":
            parts = [f"{_mg(self.start_mg)} mg every other day, days {d0}-{d1} of "
                     f"{self.cycle_days}-day cycles"]  # fmt: skip
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
