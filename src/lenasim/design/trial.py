"""One simulated trial: cohorts enrolled on candidates, followed, decided on.

The trial runs on *potential outcomes* (:class:`Outcomes`): for every patient (in order
of enrolment) and every candidate, the events the patient would have in each cycle on
that candidate. A design only chooses which candidate each patient gets; two designs run
on the same outcomes meet the same patients (common random numbers), so their
differences are paired.

Time, in days from the first enrolment:

- patients arrive at the accrual rate (a Poisson process; ``accrual_per_28_days``) or,
  without one, whenever the trial is ready for them;
- a cohort takes the next ``cohort_size`` arrivals from the moment the previous decision
  was made (arrivals while the trial waits are lost, unless backfilled);
- the next decision is made ``followup_days`` after the cohort's last patient started;
- patients arriving while the trial waits are enrolled on the highest candidate below
  the current one that the design has escalated from (*backfill*), up to
  ``backfill_max`` per candidate, when the design allows it.

What a decision sees (:func:`observe`), per candidate, event and cycle: the events seen
so far (an event in a cycle is seen at mid-cycle, where the engine places it) and the
follow-up of those without a seen event, as the share of the cycle elapsed (partial
follow-up counts, as in the TITE-CRM's linear weight; Cheung and Chappell, Biometrics
2000). Count rules (3+3, BOIN) see the patients whose first cycle is complete and
whether they had any event in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "STOP_REASONS",
    "Data",
    "Decision",
    "Outcomes",
    "TrialDesign",
    "TrialRecord",
    "lower",
    "observe",
    "run_trial",
]

# Why a trial ended. too_toxic: the lowest candidate is unacceptable; enough_patients: the
# recommended candidate has the patients the design asks for; max_patients: the sample
# size is used up; design_end: the rule's own conclusion (3+3).
STOP_REASONS = ("too_toxic", "enough_patients", "max_patients", "design_end")
_EPS = 1e-6  # days


@dataclass(frozen=True)
class Outcomes:
    """Potential outcomes of the patients of one simulated trial.

    events : (N, J, K, C) int8: 1 when patient n has event k in cycle c on candidate j,
        0 when not, -1 when the patient is off treatment in that cycle (discontinued).
    cycle_days : (J, C) the cycle lengths of each candidate, in days.
    intensity : (N, J) mg per day the patient would receive over the planned cycles on
        each candidate (NaN when unknown).
    """

    events: np.ndarray
    cycle_days: np.ndarray
    intensity: np.ndarray

    @property
    def n_patients(self) -> int:
        return int(self.events.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self.events.shape[1])


@dataclass(frozen=True)
class TrialDesign:
    """The conduct of the trial (the rule that moves between candidates is separate)."""

    cohort_size: int
    max_patients: int
    start: int = 0
    followup_days: float = 28.0
    enough_patients: int | None = None
    accrual_per_28_days: float | None = None
    backfill_max: int | None = None
    # The events that count as a dose-limiting toxicity for the count rules (indices in
    # the outcomes' event axis); None: every event.
    dlt_events: tuple[int, ...] | None = None
    # A partial order of the candidates: below[j] the candidates j is immediately more
    # intense than (listed before j); None: the total order of the indices.
    below: tuple[tuple[int, ...], ...] | None = None


@dataclass
class Data:
    """What a decision sees at one time (see the module docstring).

    events, exposure : (J, K, C) events seen, and the follow-up (in cycles) of the
        patient-cycles without a seen event.
    n_complete, dlt_complete : (J,) patients with a complete first cycle, and of those
        the ones with any event in it.
    n_treated : (J,) patients enrolled on each candidate.
    patient : (n,) the candidate of each patient enrolled (None: not kept).
    patient_events, patient_exposure : (n, K, C) each patient's part of events and
        exposure (the in-trial update's patient frailty needs them).
    """

    events: np.ndarray
    exposure: np.ndarray
    n_complete: np.ndarray
    dlt_complete: np.ndarray
    n_treated: np.ndarray
    patient: np.ndarray | None = None
    patient_events: np.ndarray | None = None
    patient_exposure: np.ndarray | None = None


@dataclass(frozen=True)
class Decision:
    """The next candidate, or a stop with its reason and the selected candidate (-1:
    none)."""

    next: int
    stop: str | None = None
    selected: int = -1
    low_ess: bool = False


@dataclass
class TrialRecord:
    """What one simulated trial did."""

    selected: int
    stop: str
    candidate: np.ndarray  # (n,) candidate of each enrolled patient
    enrolled_at: np.ndarray  # (n,) day of enrolment
    backfill: np.ndarray  # (n,) bool
    duration: float
    decisions: int
    low_ess: int
    final: Data = field(repr=False)
    # The in-trial posterior's weights on the final data, when the rule has one (kept by
    # the caller: lenasim.design.simulate.simulate_batch).
    final_weights: np.ndarray | None = field(default=None, repr=False)


def observe(
    out: Outcomes,
    candidate: np.ndarray,
    enrolled_at: np.ndarray,
    t: float,
    dlt_events: tuple[int, ...] | None = None,
) -> Data:
    """The data at day ``t`` of the patients enrolled so far (patient i is the i-th);
    ``dlt_events``: the events that make a first-cycle DLT (default: all)."""
    n_j, n_k, n_c = out.n_candidates, out.events.shape[2], out.events.shape[3]
    events = np.zeros((n_j, n_k, n_c))
    exposure = np.zeros((n_j, n_k, n_c))
    n_treated = np.bincount(candidate, minlength=n_j)
    if candidate.size == 0:
        z = np.zeros(n_j, np.int64)
        return Data(events, exposure, z, z.copy(), n_treated)
    ev = out.events[np.arange(candidate.size), candidate]  # (n, K, C)
    length = out.cycle_days[candidate]  # (n, C)
    start = np.cumsum(length, axis=1) - length
    # Days followed; + _EPS so that a decision made exactly a cycle (or half a cycle)
    # after a start, as t = start + followup_days is, sees the whole cycle despite the
    # rounding of t - start.
    elapsed = (t - enrolled_at)[:, None] + _EPS
    share = np.clip((elapsed - start) / length, 0.0, 1.0)  # (n, C) of each cycle followed
    seen = (ev == 1) & (elapsed >= start + length / 2)[:, None, :]
    quiet = (ev >= 0) & ~seen
    w = np.where(quiet, share[:, None, :], 0.0)
    seen = seen.astype(float)
    np.add.at(events, candidate, seen)
    np.add.at(exposure, candidate, w)
    complete = share[:, 0] >= 1.0
    ks = slice(None) if dlt_events is None else list(dlt_events)
    dlt = (ev[:, ks, 0] == 1).any(axis=1) & complete
    return Data(
        events,
        exposure,
        np.bincount(candidate[complete], minlength=n_j),
        np.bincount(candidate[dlt], minlength=n_j),
        n_treated,
        candidate,
        seen,
        w,
    )


def lower(below: tuple[tuple[int, ...], ...] | None, j: int) -> set[int]:
    """The candidates less intense than j (transitively): 0 .. j - 1 in a total order."""
    if below is None:
        return set(range(j))
    out: set[int] = set()
    todo = list(below[j])
    while todo:
        k = todo.pop()
        if k not in out:
            out.add(k)
            todo.extend(below[k])
    return out


class _Arrivals:
    """Arrival days of a Poisson process of rate ``per_28`` per 28 days, drawn lazily
    from ``rng``; without a rate, a patient is there whenever asked for."""

    def __init__(self, per_28: float | None, rng: np.random.Generator | None) -> None:
        self.mean_gap = None if per_28 is None else 28.0 / per_28
        self.rng = rng
        self.times = np.zeros(0)
        self.i = 0

    def _at(self, i: int) -> float:
        while i >= self.times.size:
            gaps = self.rng.exponential(self.mean_gap, 64)
            last = self.times[-1] if self.times.size else 0.0
            self.times = np.concatenate([self.times, last + np.cumsum(gaps)])
        return float(self.times[i])

    def next_after(self, t: float) -> float:
        """The day the next patient starts, at or after day t (lost arrivals skipped)."""
        if self.mean_gap is None:
            return t
        while self._at(self.i) < t:
            self.i += 1
        self.i += 1
        return self._at(self.i - 1)

    def before(self, t: float) -> float | None:
        """The next arrival if it comes before day t (consumed), else None."""
        if self.mean_gap is None or self._at(self.i) >= t:
            return None
        self.i += 1
        return self._at(self.i - 1)


def run_trial(
    out: Outcomes,
    design: TrialDesign,
    rule,
    rng: np.random.Generator | None = None,
) -> TrialRecord:
    """Run one trial on its potential outcomes.

    ``rule`` has ``decide(data, current, highest) -> Decision`` and ``select(data,
    current, highest) -> int`` (see :mod:`lenasim.design.rules`); ``rng`` draws the
    arrivals (needed with an accrual rate). The loop enforces what every rule shares:
    no skipping (never above the highest candidate tried + 1), the maximum sample size
    and the "enough patients on the recommended candidate" stop.
    """
    if design.max_patients > out.n_patients:
        raise ValueError(
            f"the outcomes hold {out.n_patients} patients, the design may enrol "
            f"{design.max_patients}"
        )
    arrivals = _Arrivals(design.accrual_per_28_days, rng)
    current = highest = design.start
    cand: list[int] = []
    when: list[float] = []
    back: list[bool] = []
    cleared: set[int] = set()
    backfilled = np.zeros(out.n_candidates, np.int64)
    t = 0.0
    decisions = low_ess = 0
    while True:
        size = min(design.cohort_size, design.max_patients - len(cand))
        for _ in range(size):
            cand.append(current)
            when.append(arrivals.next_after(t))
            back.append(False)
        t = when[-1] + design.followup_days
        below = [c for c in cleared if c in lower(design.below, current)]
        if design.backfill_max and below:
            b = max(below)
            while len(cand) < design.max_patients and backfilled[b] < design.backfill_max:
                day = arrivals.before(t)
                if day is None:
                    break
                cand.append(b)
                when.append(day)
                back.append(True)
                backfilled[b] += 1
        c_arr, w_arr = np.asarray(cand, np.int64), np.asarray(when)
        data = observe(out, c_arr, w_arr, t, design.dlt_events)
        dec = rule.decide(data, current, highest)
        decisions += 1
        low_ess += int(dec.low_ess)
        stop, selected = dec.stop, dec.selected
        nxt = dec.next  # a partial order's rule keeps to it (no skipping) itself
        if design.below is None:
            nxt = min(dec.next, highest + 1, out.n_candidates - 1)  # no skipping
        if stop is None and len(cand) >= design.max_patients:
            stop, selected = "max_patients", rule.select(data, current, highest)
        if (
            stop is None
            and design.enough_patients is not None
            and data.n_treated[nxt] >= design.enough_patients
        ):
            stop, selected = "enough_patients", rule.select(data, current, highest)
        if stop is not None:
            return TrialRecord(
                selected=int(selected),
                stop=stop,
                candidate=c_arr,
                enrolled_at=w_arr,
                backfill=np.asarray(back, bool),
                duration=t,
                decisions=decisions,
                low_ess=low_ess,
                final=data,
            )
        if nxt > current:
            cleared.add(current)
        current = nxt
        highest = max(highest, current)
