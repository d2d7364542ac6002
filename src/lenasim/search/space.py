"""The search space -> candidate schedules, each a :class:`~lenasim.core.regimen.Regimen`.

The axes are crossed in the order they are written (cycle length, days on, starting dose,
target, escalation options, steroid prophylaxis), so candidate ids are stable for a given
config. Combinations that are not schedules are skipped and counted by reason (a start
above the target, a ladder that does not run from that start to that target, a regimen
the regimen language refuses); combinations that expand to the same calendar as an
earlier one (a step every cycle and every 4 weeks on 28-day cycles) are dropped as
duplicates, so each schedule is simulated once.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from lenasim.core.errors import ConfigError
from lenasim.core.regimen import Escalation, Regimen, Schedule
from lenasim.search.config import EscalationOption, SearchConfig, axis_values
from lenasim.simulation.scenario import Scenario

__all__ = ["Candidate", "Space", "candidate_scenario", "days_to_target", "enumerate_space"]


@dataclass(frozen=True)
class Candidate:
    """One schedule to evaluate: an id (``c0001``, or a reference's name), the regimen and
    whether cycle 1 has steroid flare prophylaxis."""

    id: str
    regimen: Regimen
    steroid_prophylaxis: bool

    def describe(self) -> str:
        steroid = "; steroid prophylaxis in cycle 1" if self.steroid_prophylaxis else ""
        return self.regimen.describe() + steroid

    def params(self) -> dict[str, object]:
        """The schedule's parameters, one CSV column each."""
        reg, esc = self.regimen, self.regimen.escalation
        escalates = esc is not None and len(reg.escalation_levels()) > 1
        kind = "none" if not escalates else ("levels" if esc.levels_mg is not None else "step")
        return {
            "cycle_days": reg.cycle_days,
            "days_on": f"{reg.days_on[0]}-{reg.days_on[1]}",
            "start_mg": reg.start_mg,
            "target_mg": reg.target,
            "escalation": kind,
            "step_mg": esc.step_mg if escalates and esc.step_mg is not None else np.nan,
            "levels_mg": "/".join(f"{x:g}" for x in reg.escalation_levels()),
            "every": esc.every if escalates else np.nan,
            "unit": esc.unit if escalates else "",
            "first_step_after": ((esc.first_step_after or esc.every) if escalates else np.nan),
            "steroid_prophylaxis": self.steroid_prophylaxis,
            "cycles": reg.cycles,
        }


@dataclass(frozen=True)
class Space:
    """The candidates of a search and what was left out of the product of its axes."""

    candidates: tuple[Candidate, ...]
    combinations: int
    skipped: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0

    def summary(self) -> str:
        parts = [f"{len(self.candidates)} schedules from {self.combinations} combinations"]
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates of an earlier schedule dropped")
        parts += [f"{n} skipped: {why}" for why, n in self.skipped.items()]
        return "; ".join(parts)


def days_to_target(schedule: Schedule) -> float:
    """Days from the first dose to the first dose at the target (the top level), for a
    patient who escalates on schedule; 0 if the schedule starts there, NaN if it never
    gets there within its cycles."""
    daily = schedule.daily_doses()
    given = np.flatnonzero(daily > 0)
    at_top = np.flatnonzero(daily >= schedule.levels_mg[-1] - 1e-9)
    if given.size == 0 or at_top.size == 0:
        return float("nan")
    return float(at_top[0] - given[0])


def _escalations(option: EscalationOption, start: float, target: float):
    """(Escalation or None, skip reason or None) for every combination of one option."""
    if option.levels_mg is not None:
        kinds = [("levels_mg", lv) for lv in option.levels_mg]
    else:
        kinds = [("step_mg", s) for s in axis_values(option.step_mg)]
    for (key, value), every, unit, lead in itertools.product(
        kinds, option.every, option.unit, option.first_step_after
    ):
        if key == "levels_mg" and not (
            np.isclose(value[0], start) and np.isclose(value[-1], target)
        ):
            yield None, "a levels_mg ladder does not run from that start_mg to that target_mg"
            continue
        yield Escalation(**{key: value}, every=every, unit=unit, first_step_after=lead), None


def _schedule_key(schedule: Schedule, steroid: bool) -> str:
    h = hashlib.sha256()
    for a in (schedule.levels_mg, schedule.cycle_days, schedule.on, schedule.steps):
        h.update(np.ascontiguousarray(a).tobytes())
        h.update(str(a.shape).encode())
    h.update(f"{schedule.max_mg!r} {schedule.start_level} {steroid}".encode())
    return h.hexdigest()


def enumerate_space(cfg: SearchConfig, source: str = "the search config") -> Space:
    """The candidates of a search config. Raises :class:`ConfigError` if none is left,
    saying why each combination was skipped."""
    sp = cfg.space
    combos = 0
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    out: list[Candidate] = []
    duplicates = 0

    def add(regimen_kw: dict, steroid: bool) -> None:
        nonlocal duplicates
        try:
            reg = Regimen(**regimen_kw)
        except ValidationError as err:
            msg = str(err.errors()[0]["msg"]).removeprefix("Value error, ").split(" (")[0]
            skipped[f"not a valid regimen ({msg[:120]})"] += 1
            return
        key = _schedule_key(reg.expand(), steroid)
        if key in seen:
            duplicates += 1
            return
        seen.add(key)
        out.append(Candidate(id=f"c{len(out) + 1:04d}", regimen=reg, steroid_prophylaxis=steroid))

    for cyc, days_on, start, target, steroid in itertools.product(
        sp.cycle_days, sp.days_on, axis_values(sp.start_mg), axis_values(sp.target_mg),
        cfg.steroid_axis(),
    ):  # fmt: skip
        base = dict(cycle_days=cyc, days_on=days_on, start_mg=start, target_mg=target,
                    cycles=sp.cycles)  # fmt: skip
        if start > target:
            combos += 1
            skipped["start_mg above target_mg"] += 1
            continue
        if np.isclose(start, target):
            combos += 1
            add(base | {"target_mg": None}, steroid)
            continue
        if not sp.escalation:
            combos += 1
            skipped["target_mg above start_mg but space.escalation gives no escalation"] += 1
            continue
        for option in sp.escalation:
            for esc, why in _escalations(option, start, target):
                combos += 1
                if why is not None:
                    skipped[why] += 1
                else:
                    add(base | {"escalation": esc}, steroid)
    if not out:
        kinds = [f"{n} x {why}" for why, n in skipped.most_common()]
        more = f"; and {len(kinds) - 3} more kinds" if len(kinds) > 3 else ""
        reasons = "; ".join(kinds[:3]) + more or "no combinations"
        raise ConfigError(
            f"{source}: space: the search space is empty: none of its {combos} combinations "
            f"is a schedule ({reasons})"
        )
    return Space(tuple(out), combos, dict(skipped), duplicates)


def candidate_scenario(cfg: SearchConfig, cand: Candidate) -> Scenario:
    """The scenario a candidate is: the search's population (with the candidate's steroid
    prophylaxis), rules, limits, posterior and seed, and the candidate's regimen. ``lenasim run``
    on it gives the numbers the search computed (the same random numbers)."""
    pop = cfg.population.model_copy(update={"steroid_prophylaxis": cand.steroid_prophylaxis})
    return Scenario(
        name=f"{cfg.name}-{cand.id}",
        description=cand.describe(),
        population=pop,
        regimen=cand.regimen,
        rules=cfg.rules,
        limits=cfg.limits,
        posterior=cfg.posterior,
        population_effect=cfg.population_effect,
        seed=cfg.seed,
        output=cfg.output,
    )
