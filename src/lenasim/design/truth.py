"""The truth of each simulated trial, as potential outcomes (:class:`~lenasim.design.trial.Outcomes`).

Every random number is keyed by (seed, trial, patient): the same seed gives every design
the same patients, whatever the design does with them.

- :func:`dose_level_outcomes`: the dose-finding textbook's special case, one cycle and one
  binary toxicity with a true rate per candidate. Patient n of trial t has one latent
  uniform U and has the toxicity on candidate j when U < p_j (the shared latent uniforms
  of Sweeting et al. 2023, which the R package escalation uses to pair designs): a
  patient who is toxic on a candidate is toxic on every more intense one.
- :func:`schedule_outcomes`: candidates are schedules; each patient is simulated by the
  engine on every candidate (per-cycle events of the four outcome events, dose holds,
  reductions and discontinuation by the config's rules) under the trial's truth: a
  posterior draw with a new trial effect (:func:`new_trial_truths`), or one fixed truth
  (:func:`fixed_truths`: the draw at a percentile of risk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lenasim.core.hazard import EVENTS, HazardDraws
from lenasim.core.limits import RiskLimits
from lenasim.core.regimen import Schedule
from lenasim.core.vocabulary import OUTPUT_EVENTS
from lenasim.design.trial import Outcomes
from lenasim.simulation.engine import simulate
from lenasim.simulation.scenario import Population, Rules

__all__ = [
    "ScheduleOutcomes",
    "Truths",
    "arrivals_rng",
    "dose_level_outcomes",
    "fixed_truths",
    "fold_trial_effect",
    "limit_risk",
    "new_trial_truths",
    "schedule_outcomes",
    "trial_rng",
    "true_risks",
]

_PURPOSE_LATENT, _PURPOSE_ARRIVALS, _PURPOSE_TRUTH = 0x1A7E, 0xACC, 0x7247


def trial_rng(seed: int, trial: int, purpose: int) -> np.random.Generator:
    """A generator keyed by (seed, trial, purpose): the same for every design."""
    return np.random.default_rng([int(seed), int(trial), int(purpose)])


def arrivals_rng(seed: int, trial: int) -> np.random.Generator:
    """The generator of a trial's arrival times."""
    return trial_rng(seed, trial, _PURPOSE_ARRIVALS)


def dose_level_outcomes(
    rates, n_patients: int, seed: int, trial: int, cycle_days: float = 28.0
) -> Outcomes:
    """One cycle, one toxicity with true rate ``rates[j]`` on candidate j (see the module
    docstring)."""
    p = np.asarray(rates, float)
    u = trial_rng(seed, trial, _PURPOSE_LATENT).random(n_patients)
    events = (u[:, None] < p[None, :]).astype(np.int8)[:, :, None, None]
    return Outcomes(
        events=events,
        cycle_days=np.full((p.size, 1), float(cycle_days)),
        intensity=np.full((n_patients, p.size), np.nan),
    )


# ------------------------------------------------------------------ from a posterior


def limit_risk(ds, limits: RiskLimits) -> np.ndarray:
    """(S, L) the risk each limit bounds, from an engine dataset (draw x event x cycle):
    the per-cycle probability in the limit's cycle, or the cumulative one by its cycle
    (the schedule's last by default)."""
    n_cyc = ds.sizes["cycle"]
    cols = []
    for event, lim in limits.items():
        if lim.cumulative:
            cols.append(ds["cumulative"].sel(event=event).values[:, (lim.cycle or n_cyc) - 1])
        else:
            cols.append(ds["per_cycle"].sel(event=event).values[:, (lim.cycle or 1) - 1])
    return np.stack(cols, axis=1) if cols else np.zeros((ds.sizes["draw"], 0))


def fold_trial_effect(draws: HazardDraws, effect: np.ndarray) -> HazardDraws:
    """The draws with a fixed trial effect ``effect`` (S, 3: flare, TLS, neutropenia) added
    to the intercepts and no between-trial SD: a known trial, simulated as ``typical``."""
    intercept = dict(draws.intercept)
    for i, k in enumerate(EVENTS):
        intercept[k] = draws.intercept[k] + effect[:, i]
    zero = {k: np.zeros_like(v) for k, v in draws.tau.items()}
    return HazardDraws(
        terms=draws.terms, intercept=intercept, coefs=draws.coefs, tau=zero,
        sigma=draws.sigma, trial_df=None,
    )  # fmt: skip


@dataclass(frozen=True)
class Truths:
    """The truth of each of T simulated trials: a posterior draw with its trial effect
    folded in (:func:`fold_trial_effect`)."""

    name: str
    draws: HazardDraws  # T draws, tau = 0
    posterior_index: np.ndarray  # (T,)

    @property
    def n_trials(self) -> int:
        return self.draws.n_draws


def new_trial_truths(
    draws: HazardDraws,
    n_trials: int,
    seed: int,
    name: str = "new_trial",
    effect: np.ndarray | None = None,
) -> Truths:
    """Trial t: a posterior draw chosen at random and a new trial effect u_k = tau_k x
    N(0, 1) (a Student-t scale mixture when the posterior's trial effects are
    Student-t), keyed by (seed, t). With ``effect`` (3: flare, TLS, neutropenia, on the
    logit scale) the trial effect is that instead, in every trial: a user-written truth
    (a trial unlike the average published one by that much), with the posterior's
    parameter uncertainty kept (the same draws as without it)."""
    idx = np.empty(n_trials, np.int64)
    effects = np.empty((n_trials, len(EVENTS)))
    for t in range(n_trials):
        rng = trial_rng(seed, t, _PURPOSE_TRUTH)
        idx[t] = rng.integers(draws.n_draws)
        z = rng.standard_normal(len(EVENTS))
        if draws.trial_df is not None:
            z *= np.sqrt(draws.trial_df / rng.chisquare(draws.trial_df, len(EVENTS)))
        effects[t] = z * np.array([draws.tau[k][idx[t]] for k in EVENTS])
    if effect is not None:
        effects[:] = np.asarray(effect, float)
    return Truths(name, fold_trial_effect(draws.take(idx), effects), idx)


def fixed_truths(
    draws: HazardDraws, index: int, effect: np.ndarray, n_trials: int, name: str
) -> Truths:
    """Every trial on one truth: draw ``index`` with trial effect ``effect`` (3,)."""
    idx = np.full(n_trials, int(index), np.int64)
    one = fold_trial_effect(draws.take(np.array([index])), np.asarray(effect, float)[None, :])
    return Truths(name, one.take(np.zeros(n_trials, np.int64)), idx)


@dataclass(frozen=True)
class ScheduleOutcomes:
    """Potential outcomes of T trials of N patients on J candidate schedules.

    events : (T, N, J, 4, C) int8 for the engine's output events (flare, grade >= 3
        flare, TLS, grade 3-4 neutropenia); -1 off treatment or beyond a candidate's cycles.
    cycle_days : (J, C); intensity : (T, N, J) mg/day over the planned days.
    """

    events: np.ndarray
    cycle_days: np.ndarray
    intensity: np.ndarray

    def trial(self, t: int) -> Outcomes:
        return Outcomes(self.events[t], self.cycle_days, self.intensity[t])


def schedule_outcomes(
    schedules: list[Schedule],
    population: Population,
    rules: Rules,
    truths: Truths,
    n_patients: int,
    seed: int,
    threads: int | None = None,
    first_trial: int = 0,
) -> ScheduleOutcomes:
    """Each patient of each trial on each candidate, by the engine: one cohort of one
    patient per (trial, patient), under the trial's truth, its random numbers keyed by
    (seed, t x N + n) (so patient n of trial t is the same patient on every candidate,
    in every design and under every truth); t counts from ``first_trial`` (the truths
    given are trials first_trial, first_trial + 1, ...)."""
    n_t, n_j = truths.n_trials, len(schedules)
    n_c = max(s.n_cycles for s in schedules)
    events = np.full((n_t, n_patients, n_j, len(OUTPUT_EVENTS), n_c), -1, np.int8)
    days = np.full((n_j, n_c), 28.0)
    intensity = np.zeros((n_t, n_patients, n_j))
    step = max(1, _CHUNK_PATIENTS // n_patients)  # trials per engine call (bounded memory)
    for t0 in range(0, n_t, step):
        t1 = min(n_t, t0 + step)
        rep = truths.draws.take(np.repeat(np.arange(t0, t1), n_patients))
        keys = np.arange((first_trial + t0) * n_patients, (first_trial + t1) * n_patients,
                         dtype=np.int64)  # fmt: skip
        for j, sch in enumerate(schedules):
            ds = simulate(sch, population, rules, rep, n_patients=1, seed=seed,
                          population_effect="typical", posterior_index=keys, threads=threads,
                          light=True)  # fmt: skip
            got = ds["per_cycle_sampled"].values  # (T*N, 4, C_j): 0/1, NaN when not started
            c = got.shape[2]
            ev = np.where(np.isnan(got), -1, got).astype(np.int8)
            events[t0:t1, :, j, :, :c] = ev.reshape(t1 - t0, n_patients, len(OUTPUT_EVENTS), c)
            days[j, :c] = sch.cycle_days
            mg = np.nan_to_num(ds["dose_intensity"].values) * ds["share_on"].values
            per = (mg * sch.cycle_days).sum(1) / sch.cycle_days.sum()
            intensity[t0:t1, :, j] = per.reshape(t1 - t0, n_patients)
    return ScheduleOutcomes(events, days, intensity)


_CHUNK_PATIENTS = 100_000  # one-patient cohorts per engine call


def true_risks(
    schedules: list[Schedule],
    population: Population,
    rules: Rules,
    truths: Truths,
    limits: RiskLimits,
    seed: int,
    threads: int | None = None,
    first_trial: int = 0,
) -> np.ndarray:
    """(T, J, L) each trial's true risk of each limit on each candidate: the engine's
    Rao-Blackwellised risk of ``population.patients`` virtual patients under the truth.
    Fixed truths (one draw for every trial) are simulated once; the virtual patients of
    trial t are keyed by (seed, t), t counting from ``first_trial``."""
    one = bool(np.all(truths.posterior_index == truths.posterior_index[0])) and _same(truths.draws)
    draws = truths.draws.take(np.array([0])) if one else truths.draws
    keys = np.array([0]) if one else np.arange(first_trial, first_trial + truths.n_trials)
    out = []
    for sch in schedules:
        ds = simulate(sch, population, rules, draws, n_patients=population.patients, seed=seed,
                      population_effect="typical", posterior_index=keys, threads=threads,
                      light=True)  # fmt: skip
        out.append(limit_risk(ds, limits))
    risk = np.stack(out, axis=1)
    return np.repeat(risk, truths.n_trials, axis=0) if one else risk


def _same(draws: HazardDraws) -> bool:
    return all(np.all(v == v[0]) for v in draws.intercept.values())
