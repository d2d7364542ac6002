"""A design config, simulated: the prior, the truths, the trials, the operating
characteristics and the decision table.

Order of work: the in-trial prior (the posterior's draws on every candidate), then per
truth the potential outcomes of every patient on every candidate, the trials, and the
operating characteristics. The same seed gives the same patients to every design and
truth (:mod:`lenasim.design.truth`); trials are independent and run in order, so the
results do not depend on how the work is split.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lenasim.core.hazard import EVENTS, HazardDraws
from lenasim.core.vocabulary import OUTPUT_EVENTS, active
from lenasim.design.config import DesignConfig
from lenasim.design.oc import operating_characteristics, trial_table
from lenasim.design.prior import data_events, engine_trial_effect, prior_model
from lenasim.design.rules import Boin, OverdoseControl, ThreePlusThree
from lenasim.design.trial import Decision, Outcomes, TrialDesign, TrialRecord, observe, run_trial
from lenasim.design.truth import (
    ScheduleOutcomes,
    Truths,
    arrivals_rng,
    fixed_truths,
    new_trial_truths,
    schedule_outcomes,
    true_risks,
)
from lenasim.design.update import DrawModel
from lenasim.simulation.streams import select_draws

__all__ = [
    "Batch",
    "DesignResult",
    "decision_table",
    "make_rule",
    "run_design",
    "simulate_batch",
    "trial_design",
]


@dataclass
class DesignResult:
    """What :func:`run_design` computed."""

    oc: pd.DataFrame  # long table, one block per truth (column ``truth``)
    trials: pd.DataFrame  # one row per simulated trial and truth
    decisions: pd.DataFrame  # the decision table of the first two cohorts
    truths: dict[str, np.ndarray]  # truth -> (T,) posterior index of each trial's truth
    seconds: dict[str, float]  # wall time by stage: prior, outcomes, true_risks, trials, oc
    # truth -> (T, J, L) each trial's true risk of each limit on each candidate (the report's
    # "truly within the limits"; not written to the CSVs)
    risks: dict[str, np.ndarray] = field(default_factory=dict)


def trial_design(cfg: DesignConfig) -> TrialDesign:
    c = cfg.trial
    return TrialDesign(
        cohort_size=c.cohort_size,
        max_patients=c.max_patients,
        start=cfg.start_index,
        followup_days=c.followup_days,
        enough_patients=c.enough_patients,
        accrual_per_28_days=c.accrual_per_28_days,
        backfill_max=c.backfill_max,
        dlt_events=tuple(int(k) for k in data_events(cfg.limits)),
        below=cfg.below,
    )


def make_rule(cfg: DesignConfig, model: DrawModel):
    if cfg.decide.rule == "boin":
        return Boin(cfg.decide.target)
    if cfg.decide.rule == "three_plus_three":
        return ThreePlusThree()
    return OverdoseControl(model, cfg.update.min_ess, cfg.below, cfg.decide.stop_probability,
                           cfg.decide.min_patients_to_stop)  # fmt: skip


def _truths(cfg, truth, draws: HazardDraws, model: DrawModel, idx: np.ndarray) -> Truths:
    if truth.kind == "new_trial":
        return new_trial_truths(draws, cfg.trials, cfg.seed, truth.name)
    if truth.kind == "trial_effect":
        fixed = np.array([truth.trial_effect.get(k, 0.0) for k in EVENTS])
        return new_trial_truths(draws, cfg.trials, cfg.seed, truth.name, effect=fixed)
    # The prior draw (posterior component) at the percentile of risk on the starting
    # candidate, risk scored as the largest ratio of a limit's risk to the limit, with
    # the trial effect the engine gave it.
    score = (model.limit_risk[: idx.size, cfg.start_index] / model.limit_max).max(axis=1)
    order = np.argsort(score, kind="stable")
    pick = order[min(idx.size - 1, int(round(truth.percentile / 100 * (idx.size - 1))))]
    sub = draws.take(idx[[pick]])
    effect = engine_trial_effect(sub, idx[[pick]], cfg.seed)[0]
    return fixed_truths(draws, int(idx[pick]), effect, cfg.trials, truth.name)


@dataclass
class Batch:
    """What one batch of trials of one truth gives (:func:`simulate_batch`)."""

    records: list[TrialRecord]
    events: np.ndarray  # (t, N, J, 4, C)
    intensity: np.ndarray  # (t, N, J)
    risks: np.ndarray  # (t, J, L)
    seconds: dict[str, float]


def simulate_batch(
    cfg: DesignConfig, truths: Truths, first: int, model: DrawModel, threads: int | None = None
) -> Batch:
    """Trials ``first`` .. ``first + truths.n_trials - 1`` of one truth: their patients on
    every candidate, their true risks and the trials. Every random number is keyed by the
    trial's index, so batches of any size (in process or on Dask workers) give the same
    bytes."""
    clock = _Clock()
    schedules = [c.regimen.expand() for c in cfg.candidates]
    out = schedule_outcomes(schedules, cfg.population, cfg.rules, truths, cfg.trial.max_patients,
                            cfg.seed, threads, first_trial=first)  # fmt: skip
    clock("outcomes")
    risks = true_risks(schedules, cfg.population, cfg.rules, truths, cfg.limits, cfg.seed,
                       threads, first_trial=first)  # fmt: skip
    clock("true_risks")
    rule, design = make_rule(cfg, model), trial_design(cfg)
    records = []
    for i in range(truths.n_trials):
        r = run_trial(out.trial(i), design, rule, arrivals_rng(cfg.seed, first + i))
        if isinstance(rule, OverdoseControl):  # the last decision's weights (kept by the model)
            r.final_weights = model.weights(r.final)[0]
        records.append(r)
    clock("trials")
    return Batch(records, out.events, out.intensity, risks, clock.seconds)


def _in_process(fn, arglist):
    return [fn(*args) for args in arglist]


def run_design(
    cfg: DesignConfig,
    draws: HazardDraws,
    progress: Callable[[str, int], None] | None = None,
    threads: int | None = None,
    mapper: Callable | None = None,
    batch_trials: int = 250,
) -> DesignResult:
    """Simulate the design over its truths (see the module docstring). ``progress`` is
    called with (stage, units done). ``mapper(fn, [args, ...])`` runs the batches of
    ``batch_trials`` trials and returns their results in order (default: one after the
    other in this process; ``lenasim design --dask`` maps them on a cluster); the results
    do not depend on it nor on the batch size."""
    mapper = mapper or _in_process
    schedules = [c.regimen.expand() for c in cfg.candidates]
    names = [c.name for c in cfg.candidates]
    idx = select_draws(draws.n_draws, min(cfg.posterior.draws, draws.n_draws), cfg.seed)
    tick = (lambda n: progress("prior", n)) if progress else None
    clock = _Clock()
    model = prior_model(schedules, cfg.population, cfg.rules, draws.take(idx), idx, cfg.limits,
                        cfg.seed, cfg.update.robust_weight, cfg.update.robust_sd, threads,
                        tick, cfg.update.frailty)  # fmt: skip
    clock("prior")
    rule = make_rule(cfg, model)
    limits = cfg.limits.items()
    lnames = [lim.describe(ev) for ev, lim in limits]
    lmax = np.array([lim.max for _, lim in limits])
    n_c = max(s.n_cycles for s in schedules)
    days = np.full((len(schedules), n_c), 28.0)
    for j, sch in enumerate(schedules):
        days[j, : sch.n_cycles] = sch.cycle_days
    ocs, tabs, used, true = [], [], {}, {}
    for truth in cfg.truths:
        tr = _truths(cfg, truth, draws, model, idx)
        used[truth.name] = tr.posterior_index
        cuts = list(range(0, cfg.trials, batch_trials)) + [cfg.trials]
        args = [(cfg, Truths(tr.name, tr.draws.take(slice(a, b)), tr.posterior_index[a:b]), a,
                 model, threads) for a, b in zip(cuts, cuts[1:], strict=False)]  # fmt: skip
        if mapper is _in_process:  # one batch after the other, the bar moving with them
            batches = []
            for a in args:
                batches.append(simulate_batch(*a))
                if progress is not None:
                    progress("trials", a[1].n_trials)
        else:
            batches = mapper(simulate_batch, args)
            if progress is not None:
                progress("trials", cfg.trials)
        for b in batches:
            for k, v in b.seconds.items():
                clock.seconds[k] = round(clock.seconds.get(k, 0.0) + v, 3)
        clock.last = time.perf_counter()
        records = [r for b in batches for r in b.records]
        out = ScheduleOutcomes(np.concatenate([b.events for b in batches]), days,
                               np.concatenate([b.intensity for b in batches]))  # fmt: skip
        risks = np.concatenate([b.risks for b in batches])
        true[truth.name] = risks
        oc = operating_characteristics(records, out, risks, model if cfg.decide.rule ==
                                       "overdose_control" else None, names, lnames, lmax)  # fmt: skip
        oc.insert(0, "truth", truth.name)
        ocs.append(oc)
        tab = trial_table(records, out, names)
        tab.insert(0, "truth", truth.name)
        tab.insert(2, "posterior_index", tr.posterior_index)
        tabs.append(tab)
        clock("oc")
    dec = decision_table(cfg, rule, [s.cycle_days for s in schedules])
    clock("oc")
    return DesignResult(pd.concat(ocs, ignore_index=True), pd.concat(tabs, ignore_index=True),
                        dec, used, clock.seconds, true)  # fmt: skip


class _Clock:
    """Wall time by stage: each call adds the time since the previous one to a stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + now - self.last, 3)
        self.last = now


def decision_table(cfg: DesignConfig, rule, cycle_days: list[np.ndarray]) -> pd.DataFrame:
    """The next candidate after each outcome of the first two cohorts: y patients of a
    cohort with the event in cycle 1 (the others event-free so far), each decision made
    ``followup_days`` after the cohort started, as in the trial (:func:`observe`)."""
    m, n_j = cfg.trial.cohort_size, len(cfg.candidates)
    names = [c.name for c in cfg.candidates]
    n_c = max(d.size for d in cycle_days)
    days = np.full((n_j, n_c), 28.0)
    for j, d in enumerate(cycle_days):
        days[j, : d.size] = d
    fu = cfg.trial.followup_days
    start = cfg.start_index
    events = sorted({e for e, _ in cfg.limits.items()}, key=OUTPUT_EVENTS.index) or ["flare"]

    sev = active().severity

    def decide(k: int, cands: list[int], ys: list[int]) -> Decision:
        ev = np.zeros((m * len(cands), n_j, len(OUTPUT_EVENTS), n_c), np.int8)
        # A grade >= 3 flare is a flare too (the engine's outputs, the update's data).
        ks = [k] + ([OUTPUT_EVENTS.index(sev.event)] if OUTPUT_EVENTS[k] == sev.output else [])
        for i, y in enumerate(ys):
            ev[i * m : i * m + y, :, ks, 0] = 1
        out = Outcomes(ev, days, np.full(ev.shape[:2], np.nan))
        cand = np.repeat(np.asarray(cands, np.int64), m)
        when = np.repeat(np.arange(len(cands)) * fu, m)
        data = observe(out, cand, when, len(cands) * fu, trial_design(cfg).dlt_events)
        return rule.decide(data, cands[-1], max(cands))

    def label(d: Decision) -> str:
        return f"stop ({d.stop})" if d.stop else names[min(d.next, n_j - 1)]

    rows = []
    for event in events:
        k = OUTPUT_EVENTS.index(event)
        for y1 in range(m + 1):
            d1 = decide(k, [start], [y1])
            base = {"event": event, "cohort_1": f"{y1}/{m} on {names[start]}", "then": label(d1)}
            if d1.stop:
                rows.append({**base, "cohort_2": "", "next": ""})
                continue
            nxt = d1.next if cfg.below is not None else min(d1.next, start + 1, n_j - 1)
            for y2 in range(m + 1):
                d2 = decide(k, [start, nxt], [y1, y2])
                rows.append({**base, "cohort_2": f"{y2}/{m} on {names[nxt]}", "next": label(d2)})
    return pd.DataFrame(rows)
