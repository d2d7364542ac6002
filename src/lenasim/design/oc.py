"""Operating characteristics of a design, each with its Monte Carlo SE.

Over the T simulated trials of one truth. Proportions carry the binomial SE
sqrt(p (1 - p) / T); means carry sd / sqrt(T) (the trials are independent). Rows of the
table (``quantity``, with ``candidate`` and ``what`` where they apply):

- ``p_select``: P(the trial selects the candidate); candidate ``none``: no selection;
- ``p_selected_over_limit``: P(the selected candidate's true risk exceeds the limit)
  (no selection counts as not exceeding);
- ``patients``: mean patients per trial, overall and per candidate (backfill included);
  ``patients_backfill``: of them, backfilled;
- ``patients_with_event``: mean patients per trial with the event at least once over
  their planned cycles (flare, grade >= 3 flare, TLS, grade 3-4 neutropenia);
- ``patients_over_limit``: mean patients per trial treated on a candidate whose true
  risk exceeds the limit;
- ``p_stop``: P(the trial ends for each reason) (:data:`lenasim.design.trial.STOP_REASONS`);
- ``duration_days``: mean days from the first enrolment to the last decision;
- ``dose_intensity``: mean over trials of the patients' mean mg/day delivered;
- ``width_prior`` and ``width_after``: the 90% interval width of each limit's risk at
  the selected candidate, today (the in-trial prior) and after the trial (mean over the
  trials that select one): what the trial would teach;
- ``low_ess_decisions``: mean decisions per trial whose update had too few effective draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lenasim.core.vocabulary import OUTPUT_EVENTS
from lenasim.design.trial import STOP_REASONS, TrialRecord
from lenasim.design.truth import ScheduleOutcomes
from lenasim.design.update import DrawModel, weighted_quantile

__all__ = ["operating_characteristics", "trial_table"]


def _prop(x: np.ndarray) -> tuple[float, float]:
    p = float(np.mean(x))
    return p, float(np.sqrt(p * (1 - p) / x.size))


def _mean(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    sd = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    return float(x.mean()), sd / np.sqrt(x.size)


def _width(model: DrawModel, w: np.ndarray, j: int, lim: int) -> float:
    lo, hi = weighted_quantile(model.limit_risk[:, j, lim], w, [0.05, 0.95])
    return float(hi - lo)


def trial_table(
    records: list[TrialRecord], outcomes: ScheduleOutcomes, names: list[str]
) -> pd.DataFrame:
    """One row per simulated trial: what it did (for cross-checks and pairing)."""
    rows = []
    for t, r in enumerate(records):
        n_j = np.bincount(r.candidate, minlength=len(names))
        rows.append(
            {
                "trial": t,
                "selected": names[r.selected] if r.selected >= 0 else "none",
                "stop": r.stop,
                "patients": int(r.candidate.size),
                **{f"n_{nm}": int(n) for nm, n in zip(names, n_j, strict=True)},
                "backfilled": int(r.backfill.sum()),
                "duration_days": round(r.duration, 3),
                "decisions": r.decisions,
                "low_ess": r.low_ess,
            }
        )
    return pd.DataFrame(rows)


def operating_characteristics(
    records: list[TrialRecord],
    outcomes: ScheduleOutcomes,
    risks: np.ndarray,
    model: DrawModel | None,
    names: list[str],
    limit_names: list[str],
    limit_max: np.ndarray,
) -> pd.DataFrame:
    """The long table of the module docstring, for T trials of one truth.

    risks : (T, J, L) each trial's true risk of each limit on each candidate.
    model : the in-trial prior (for the interval widths; None for rules without one).
    """
    n_t, n_j = len(records), len(names)
    rows: list[dict] = []

    def add(quantity: str, value: tuple[float, float], candidate: str = "", what: str = ""):
        rows.append({"quantity": quantity, "candidate": candidate, "what": what,
                     "value": value[0], "mcse": value[1]})  # fmt: skip

    sel = np.array([r.selected for r in records])
    for j in range(-1, n_j):
        add("p_select", _prop(sel == j), names[j] if j >= 0 else "none")
    over = risks > limit_max[None, None, :]  # (T, J, L)
    for li, lname in enumerate(limit_names):
        hit = np.array([sel[t] >= 0 and over[t, sel[t], li] for t in range(n_t)])
        add("p_selected_over_limit", _prop(hit), what=lname)
    counts = np.array([np.bincount(r.candidate, minlength=n_j) for r in records])
    add("patients", _mean(counts.sum(1)))
    for j in range(n_j):
        add("patients", _mean(counts[:, j]), names[j])
    add("patients_backfill", _mean(np.array([r.backfill.sum() for r in records])))
    with_event = np.zeros((n_t, len(OUTPUT_EVENTS)))
    intensity = np.full(n_t, np.nan)
    on_over = np.zeros((n_t, len(limit_names)))
    for t, r in enumerate(records):
        ev = outcomes.events[t, np.arange(r.candidate.size), r.candidate]  # (n, 4, C)
        with_event[t] = (ev == 1).any(axis=2).sum(axis=0)
        if r.candidate.size:
            intensity[t] = np.nanmean(
                outcomes.intensity[t, np.arange(r.candidate.size), r.candidate]
            )
        on_over[t] = over[t, r.candidate].sum(axis=0)
    for k, ev_name in enumerate(OUTPUT_EVENTS):
        add("patients_with_event", _mean(with_event[:, k]), what=ev_name)
    for li, lname in enumerate(limit_names):
        add("patients_over_limit", _mean(on_over[:, li]), what=lname)
    stops = np.array([r.stop for r in records])
    for reason in STOP_REASONS:
        add("p_stop", _prop(stops == reason), what=reason)
    add("duration_days", _mean(np.array([r.duration for r in records])))
    add("dose_intensity", _mean(intensity), what="mg/day")
    add("low_ess_decisions", _mean(np.array([r.low_ess for r in records], float)))
    if model is not None:
        final = [None if r.selected < 0 else r.final_weights if r.final_weights is not None
                 else model.weights(r.final)[0] for r in records]  # fmt: skip
        for li, lname in enumerate(limit_names):
            before = np.full(n_t, np.nan)
            after = np.full(n_t, np.nan)
            for t, r in enumerate(records):
                if r.selected >= 0:
                    before[t] = _width(model, model.prior, r.selected, li)
                    after[t] = _width(model, final[t], r.selected, li)
            add("width_prior", _mean(before), what=lname)
            add("width_after", _mean(after), what=lname)
    return pd.DataFrame(rows)
