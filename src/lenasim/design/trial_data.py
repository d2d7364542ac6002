"""A simulated trial's patient-cycles, as patient-level data for a full refit
(:mod:`lenasim.model.patient_data`), and the decision points of a simulated trial.

At a decision made on day t, patient i (enrolled on day e_i on candidate j) has started
the cycles whose start is before t - e_i; each row is one of those cycles with the doses
the engine gave him. The engine's dose path is replayed through its own state machine
(:class:`lenasim.simulation.tables.Tables`: the state at the start of a cycle, the
outcome of the cycle from the patient's events and the config's dose rules, the next
state), so the doses of cycle c follow from the events of cycles 1 .. c - 1, as in the
engine. An event is in the data when the decision sees it (:func:`lenasim.design.trial.observe`:
at mid-cycle); the patient's last cycle is followed in part (``followed_days``), where
an event not yet seen counts as the patient likelihood's TITE term says.

What the CSV cannot say exactly: under ``escalate_only_if_tolerated`` a grade >= 3 event
leaves the patient at the level reached at mid-cycle, and the engine takes that as the
highest dose so far; the CSV's highest dose is the largest planned dose of the earlier
cycles, so the next cycle's ``rise`` (and only it) may differ. :func:`trial_csv` counts
the cells where the features read back from the CSV differ from the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lenasim.core.regimen import Schedule
from lenasim.core.vocabulary import OUTPUT_EVENTS, active
from lenasim.design.trial import Data, Decision, Outcomes, observe
from lenasim.simulation.scenario import Population, Rules
from lenasim.simulation.streams import Layout
from lenasim.simulation.tables import Strata, Tables, outcome_codes, state_table

__all__ = ["DecisionPoint", "Recorder", "Replay", "decision_points", "trial_csv"]

_EPS = 1e-6  # days, as lenasim.design.trial.observe


class Recorder:
    """A rule that records every decision of the rule it wraps (data, current, highest,
    decision), in order."""

    def __init__(self, rule) -> None:
        self.rule = rule
        self.calls: list[tuple[Data, int, int, Decision]] = []

    def decide(self, data: Data, current: int, highest: int) -> Decision:
        d = self.rule.decide(data, current, highest)
        self.calls.append((data, current, highest, d))
        return d

    def select(self, data: Data, current: int, highest: int) -> int:
        return self.rule.select(data, current, highest)


@dataclass(frozen=True)
class DecisionPoint:
    """One decision of one simulated trial: the patients enrolled by then (candidate,
    day of enrolment), the day ``t``, what the decision saw and what it decided."""

    trial: int
    number: int  # 1-based
    last: bool  # the trial's last decision
    t: float
    candidate: np.ndarray
    enrolled_at: np.ndarray
    data: Data
    current: int
    highest: int
    decision: Decision


def decision_points(trial: int, record, calls, out: Outcomes, design) -> list[DecisionPoint]:
    """The decision points of a trial run with a :class:`Recorder`: decision i saw the
    first n_i patients (patients are enrolled in order), on the day its cohort's last
    patient started plus the follow-up. Each is checked: :func:`observe` on them gives
    the data the rule saw."""
    points = []
    for i, (data, current, highest, dec) in enumerate(calls):
        n = int(data.n_treated.sum())
        cohort = np.flatnonzero(~record.backfill[:n])
        t = float(record.enrolled_at[cohort[-1]] + design.followup_days)
        cand, when = record.candidate[:n], record.enrolled_at[:n]
        again = observe(out, cand, when, t, design.dlt_events)
        if not (np.array_equal(again.events, data.events)
                and np.allclose(again.exposure, data.exposure)):  # fmt: skip
            raise AssertionError(f"trial {trial}, decision {i + 1}: the data cannot be rebuilt")
        points.append(DecisionPoint(trial, i + 1, i == len(calls) - 1, t, cand, when, data,
                                    current, highest, dec))  # fmt: skip
    return points


class Replay:
    """The engine's state machine of each candidate (:class:`lenasim.simulation.tables.Tables`),
    to replay a patient's dose path from his events."""

    def __init__(self, schedules: list[Schedule], population: Population, rules: Rules):
        vocab = active()
        strata = Strata.of(vocab, population, {})
        if strata.n != 2 or population.elderly_share not in (0.0, 1.0):
            raise ValueError(
                "the refit check needs a population of one stratum: elderly_share 0 or 1 "
                "and no other patient covariate"
            )
        self.stratum = int(population.elderly_share)
        self.population = population
        self.schedules = schedules
        codes = outcome_codes(vocab, rules)
        self.codes = np.array([codes.get(o, 0) for o in OUTPUT_EVENTS], np.int64)
        self.tables, self.tabs = [], []
        for sch in schedules:
            tables = [state_table(sch, c, population, strata) for c in range(sch.n_cycles)]
            self.tables.append(tables)
            self.tabs.append(Tables(sch, tables, rules, Layout.of(vocab)))

    def path(self, j: int, events: np.ndarray) -> list[int]:
        """The states of a patient on candidate j in each cycle he starts, from his
        potential events (4, C) (-1: off treatment)."""
        tabs, sch = self.tabs[j], self.schedules[j]
        g = tabs.n_states - 1
        s = int(tabs.start[self.stratum])
        states = []
        for c in range(sch.n_cycles):
            if s == g or events[0, c] < 0:
                break
            states.append(s)
            hit = events[:, c] == 1
            o = int(self.codes[hit].max()) if hit.any() else 0
            if o == 3 and tabs.reduce_stops[c, s] != 0:
                o = 4 if tabs.reduce_stops[c, s] > 0 else 2
            s = int(tabs.next_state[c, s, o])
        return states

    def row(self, j: int, c: int, s: int) -> dict:
        """The dose columns of cycle c in state s on candidate j."""
        t, sch = self.tables[j][c], self.schedules[j]
        on = np.flatnonzero(sch.on[c])
        lev = min(int(t.level[s]) + int(t.allowed[s]) * int(sch.steps[c][on[0]]), sch.top_level)
        return {
            "dose_mg": float(t.dose_mean[s]),
            "dose_max_mg": float(t.dose_max[s]),
            "dose_first_mg": float(sch.levels_mg[lev]),
            "first_day": int(on[0]) + 1,
            "days_on": int(on.size),
            "cycle_days": float(sch.cycle_days[c]),
        }

    def features(self, j: int, c: int, s: int, terms) -> dict[str, float]:
        f = self.tables[j][c].features
        return {k: float(np.broadcast_to(f[k], self.tables[j][c].level.shape)[s]) for k in terms}


def trial_csv(point: DecisionPoint, out: Outcomes, replay: Replay, name: str = "DESIGN"):
    """The patient-cycle rows (a DataFrame in the CSV's columns) of the patients of a
    decision point, as one new trial ``name``; and (N, terms) the engine's hazard
    features of each row, to check the CSV's against."""
    vocab = active()
    terms = [t for t in vocab.terms if t not in ("cum_exposure",)]
    rows, feats = [], []
    for i, (j, e) in enumerate(zip(point.candidate, point.enrolled_at, strict=True)):
        ev = out.events[i, j]  # (4, C)
        length = out.cycle_days[j]
        start = np.cumsum(length) - length
        elapsed = point.t - e + _EPS
        for c, s in enumerate(replay.path(int(j), ev)):
            if elapsed <= start[c]:
                break
            followed = min(float(length[c]), elapsed - start[c])
            seen = ev[:, c] == 1 if elapsed >= start[c] + length[c] / 2 else np.zeros(4, bool)
            row = {"trial": name, "patient": f"P{i + 1:02d}", "cycle": c + 1,
                   **replay.row(int(j), c, s),
                   "followed_days": round(followed, 6) if followed < length[c] else length[c]}  # fmt: skip
            for k, o in enumerate(OUTPUT_EVENTS):
                row[o] = int(seen[k])
            for cov in vocab.covariate_terms:
                row[cov] = 0
            if replay.population.setting != "relapsed":
                row[replay.population.setting] = 1
            row["elderly"] = replay.stratum
            rows.append(row)
            feats.append(replay.features(int(j), c, s, terms))
    return pd.DataFrame(rows), pd.DataFrame(feats)
