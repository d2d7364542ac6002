"""The virtual-cohort Monte Carlo engine: posterior draws x patients, stepping cycles.

The engine is generic: the events, the severity and the patient covariates are those the
active vocabulary declares (:mod:`lenasim.core.vocabulary`; shipped: flare, TLS, grade 3-4
neutropenia, flare severity, elderly), and the layout of its random numbers and results
comes from :class:`lenasim.simulation.streams.Layout`, in one place.

For each posterior draw s (a thinned subsample of the chains) a cohort of N patients
is treated on the expanded schedule. Per draw: a trial effect u_k = tau_k * N(0, 1)
(``population_effect="new_trial"``) or 0 (``"typical"``); per patient: a frailty
z_ik ~ N(0, 1) per event and a value of each patient covariate (elderly ~
Bernoulli(elderly_share)). In cycle c::

    logit p_ikc = eta_k(state_ic, covariates_i) + u_k + sigma_k z_ik
    flare_grade3plus = flare & (U_sev < s),  logit s = eta_severity(state_ic, covariates_i)

with p = 0 in cycles without lenalidomide and for patients who stopped. The state of a
patient at the start of a cycle is (dose level, escalation allowed this cycle, highest
dose so far); the features of each state come from :func:`lenasim.core.regimen.cycle_features`
(the only schedule code), evaluated on the few distinct states and gathered.

Dose-modification rules act on grade >= 3 events (grade 3-4 neutropenia, grade >= 3
flare, TLS); with several events in one cycle the strongest action wins
(continue < hold < reduce < discontinue):

- continue: nothing changes.
- hold: the rest of the cycle is not taken. Events are assumed to strike mid-cycle on
  average, so half of the cycle's planned mg is delivered (on half of its days on
  drug). The next cycle restarts at the level reached in this cycle and does not take
  its own escalation steps ("same level next cycle"); escalation resumes after that.
- reduce: as hold, and the next cycle starts one level below the highest level of this
  cycle. At the lowest level there is no level below: ``rules.on_lowest`` says what
  reduce does there (discontinue, the default where the regimen lists reduction levels,
  or hold); a config that reduces without either is refused (scenario.py).
- discontinue: stop now (half the cycle delivered); no events afterwards.
- ``escalate_only_if_tolerated``: an escalation step is taken only if no grade >= 3
  event came before it. A per-cycle model gives events no day; they are taken to strike
  mid-cycle, as for holds. So after a cycle with a grade >= 3 event the next cycle takes
  no steps, and the steps of the event cycle's second half (steps inside a cycle, e.g.
  weekly escalation) are not taken either: the patient continues from the level reached
  at mid-cycle (the last day on drug of the first half), and with action continue
  receives that level on the second half's days (``dose_intensity``). The event cycle's
  probabilities keep its planned profile: they are the chance of a first event in the
  cycle, which the dose after that event does not change.

Approximations: without ``escalate_only_if_tolerated``, a held patient's highest dose is
the cycle's highest planned level (with steps inside a cycle, a mid-cycle hold may in
truth come before the last step).

Common random numbers: every random number is a function of (scenario seed, posterior
index of the draw, patient, cycle, purpose), by a counter-based generator (Philox4x32-10;
the layout is in :mod:`lenasim.simulation.streams`): the trial effects of a draw, each patient's
frailties and covariate draws, and one uniform per patient, cycle and output event (flare,
flare severity, TLS, neutropenia shipped). The same seed and posterior draw give the same number to
the same (patient, cycle, event) in every scenario, whatever the schedule, the rules,
the number of cycles or patients, the chunking or the threads.

Rao-Blackwellised outputs: ``per_cycle`` is the mean of p over the patients who start
the cycle; ``cumulative`` is the product limit F_c = 1 - prod_(c' <= c) (1 - h_c'), where
h_c = mean of p_ic over the patients with no event before cycle c (stopped patients
included, with p = 0): h_c estimates the discrete hazard P(event in c | none before), so
F_c estimates P(at least one event by the end of cycle c) under any path dependence
(the chain rule), consistently, and lies in [0, 1] and never falls, in every draw and at
any cohort size. When every patient of a cohort has had the event (small cohorts, common
events), no one is left to estimate h_c from; it is then the mean p over all patients,
which is higher than the hazard of the event-free under frailty (F errs upwards, towards
caution). Without frailty, trial effect or rules every patient has the same p and F_c is
exact. (The sum F_(c-1) + mean_i[1(no event yet) p_ic] used before is unbiased but not
bounded: with few patients, or many at high risk, it exceeded 1.) The sampled shares
are kept alongside.

Patient covariates enter the state tables as strata: a binary one as its two values, a
continuous one as ``strata`` equal-probability strata, each at the conditional mean of the
covariate in it (a patient's stratum comes from one uniform). That discretisation is the
one approximation: with 16 strata of a normal covariate, per-cycle and cumulative risks
are within 1e-3 (absolute) of the exact integral over the covariate for effects up to 1.5
logits per SD (odds ratio 4.5), within 5e-4 up to 0.8 (measured by quadrature,
benchmarks/README.md "Continuous covariates"; ``tests/simulation/test_generic_engine.py`` checks it).

Implementation: the features of every (state, cycle) are tabulated once per scenario and
r = exp(-eta) once per draw (few states: level x allowed x highest x covariate stratum,
plus "stopped": :func:`n_states`); so are the state transitions of the dose rules. Per patient,
w_ik = exp(-(u_k + sigma_k z_ik)) is computed once, so that
p = 1 / (1 + r_state w_ik) = sigmoid(eta + u + sigma z) (the hazard of
:func:`lenasim.core.hazard.cycle_probability`) costs no exp per cell. One compiled function
(C, ``_engine.c``, called through ctypes without the GIL) simulates a batch of draws,
looping over the output events the layout declares: a cycle is a few passes over the
patients: the Philox words (four patients per AVX2 instruction, one block of four words
per four outputs), one pass per output event (probabilities, comparisons, sums: no table
look-ups, so it vectorises) and the transitions (table look-ups, dose sums in patient
order, the next cycle's rows).
Batches of draws run on a thread pool (``threads``) with identical results.
``benchmarks/`` measures the engine against the random-number floor.

This module is the driver (checks, chunks of draws, threads, the compiled call); the
state tables and the transitions are in :mod:`lenasim.simulation.tables`, the result
rows and the dataset in :mod:`lenasim.simulation.results`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from lenasim.core.errors import LenasimError
from lenasim.core.exposure import REFERENCE_EXPOSURE_DAYS
from lenasim.core.hazard import HazardDraws
from lenasim.core.regimen import Schedule
from lenasim.core.vocabulary import DOSE_COLUMNS, OUTPUT_EVENTS, active
from lenasim.simulation._native import lib
from lenasim.simulation.paths import env_threads
from lenasim.simulation.results import Results, dataset
from lenasim.simulation.scenario import Population, Rules, Scenario
from lenasim.simulation.streams import Layout, draw_keys
from lenasim.simulation.tables import (
    Strata,
    Tables,
    n_states,
    outcome_codes,
    state_table,
    tables_for,
)

__all__ = [
    "OUTPUT_EVENTS",
    "default_chunk_size",
    "memory_estimate",
    "n_states",
    "simulate",
    "simulate_scenario",
    "thread_count",
]

# A chunk holds the state tables of its draws (C x 4 x G floats per draw) and, per
# thread, one cohort's working memory (~70 bytes per patient): a few MB at any size.
_CELLS_PER_CHUNK = 1_000_000
_MAX_CHUNK = 256


def default_chunk_size(n_patients: int) -> int:
    """Draws per chunk (the progress step): about a million (draw, patient) cells, at
    most 256 draws."""
    return max(1, min(_MAX_CHUNK, _CELLS_PER_CHUNK // max(1, n_patients)))


def memory_estimate(
    n_levels: int,
    n_cycles: int,
    n_patients: int,
    n_draws: int,
    threads: int | None = None,
    n_strata: int | None = None,
) -> dict[str, int]:
    """Bytes :func:`simulate` holds at once, by part: ``patients`` (each thread's cohort,
    8 bytes per scratch row and patient: 112 bytes a patient shipped), ``tables`` (the state tables of the schedule: they grow with
    the square of the dose levels, times the cycles; those of one chunk of draws
    included) and ``outputs`` (per draw and cycle); and ``threads``, the cohorts held at
    once. The draws add only outputs: they are simulated in chunks."""
    lay = Layout.of()
    n_threads = min(thread_count(threads), n_draws)
    states = n_states(n_levels, n_strata)
    chunk = min(default_chunk_size(n_patients), n_draws)
    cells = n_cycles * states
    k = len(lay.hazards)
    return {
        "threads": n_threads,
        "patients": n_threads * 8 * n_patients * _work_rows(lay),  # work_f, work_i
        # per chunk: hazard (K per state) and its distinct rows; per scenario: features,
        # transitions, doses (~30 per state); one cycle's features per day on drug
        "tables": 8 * (k * chunk * cells + (len(active().terms) + 30) * cells + 2 * 84 * states),
        "outputs": 8 * n_draws * n_cycles * (lay.n_res - len(DOSE_COLUMNS)
                                             + len(DOSE_COLUMNS) + 1),
    }  # fmt: skip


# Patient-cycles a thread of the default takes at least: the compiled engine does ~50,000
# in ~1 ms, about what a thread costs (2026-12-07, this machine, 12 cycles: 2 one-patient
# cohorts 0.9 ms of CPU on one thread, 1.7 ms on two; 200 x 200 patients 13.0 and 13.3 ms).
THREAD_WORK = 50_000


def thread_count(threads: int | None) -> int:
    if threads is None:
        env = env_threads()  # LENASIM_THREADS, validated
        if env is not None:
            return env
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, min(8, cpus or 1))
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return int(threads)


def student_t_scale(seed: int, posterior_index: np.ndarray, df: float) -> np.ndarray:
    """(S, E) factors sqrt(df / chi2_df) that turn the engine's normal trial effects
    into Student-t ones (a normal scale mixture), one per event and draw, keyed by the
    seed and the posterior index like every other random number (common across
    scenarios)."""
    n_ev = len(active().events)
    out = np.empty((len(posterior_index), n_ev))
    for i, idx in enumerate(np.asarray(posterior_index, np.int64)):
        rng = np.random.default_rng([int(seed), int(idx), 0x57D7])
        out[i] = np.sqrt(df / rng.chisquare(df, size=n_ev))
    return out


def simulate_scenario(
    scenario: Scenario,
    draws: HazardDraws,
    *,
    n_patients: int | None = None,
    posterior_index: np.ndarray | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    threads: int | None = None,
    light: bool = False,
) -> Any:
    """:func:`simulate` with everything taken from a validated scenario (a population with
    characteristics is simulated by :func:`lenasim.simulation.population.simulate_scenario`)."""
    if scenario.population.characteristics is not None:
        raise ValueError(
            "a population with characteristics is simulated by "
            "lenasim.simulation.population.simulate_scenario"
        )
    return simulate(
        scenario.regimen.expand(),
        scenario.population,
        scenario.rules,
        draws,
        n_patients=scenario.population.patients if n_patients is None else n_patients,
        seed=scenario.seed,
        population_effect=scenario.population_effect,
        posterior_index=posterior_index,
        chunk_size=chunk_size,
        progress=progress,
        name=scenario.name,
        threads=threads,
        light=light,
    )


def simulate(
    schedule: Schedule,
    population: Population,
    rules: Rules,
    draws: HazardDraws,
    *,
    n_patients: int,
    seed: int,
    population_effect: Literal["new_trial", "typical"] = "new_trial",
    posterior_index: np.ndarray | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    name: str = "",
    threads: int | None = None,
    covariates: dict | None = None,
    light: bool = False,
) -> Any:
    """Simulate virtual cohorts over the given parameter draws (see the module docstring).

    Parameters
    ----------
    schedule : the expanded regimen (``Regimen.expand()``).
    population : covariates of the cohort (``population.patients`` is ignored: use
        ``n_patients``).
    rules : dose-modification rules.
    draws : S parameter draws, already subsampled; one cohort per draw.
    n_patients : patients per cohort.
    seed : the scenario seed (non-negative).
    population_effect : "new_trial" draws u_k ~ N(0, tau_k) per cohort (Student-t if the
        draws say so: ``draws.trial_df``), "typical" sets 0.
    posterior_index : (S,) the posterior sample index of each draw; keys the random
        streams (default 0..S-1) and becomes the ``posterior_index`` coordinate.
    chunk_size : draws whose state tables are built at once (and the progress step);
        the result does not depend on it. Default: :func:`default_chunk_size`.
    progress : called with the number of draws finished after each chunk.
    name : the scenario name (stored in the attrs).
    threads : cohorts simulated in parallel (default: the CPUs this process may use,
        at most 8, and one per :data:`THREAD_WORK` patient-cycles of a chunk: a thread
        costs more than it saves on less); the result does not depend on it.
    covariates : patient covariate -> its distribution in this cohort, overriding the
        population's (a share for a binary covariate; a quantile function, or an object
        with ``ppf``, for a continuous one). See :class:`lenasim.core.vocabulary.PatientCovariate`.
    light : return the :class:`lenasim.simulation.results.RunDataset` (NumPy only) instead
        of the xarray.Dataset made from it (what ``lenasim run`` uses: no xarray imported).

    Returns
    -------
    xarray.Dataset with dims (draw, event, cycle); see :func:`lenasim.simulation.results.dataset`.
    """
    if not 1 <= n_patients < 2**32:  # a patient's index is one 32-bit counter word
        raise ValueError(f"n_patients must be in [1, 2**32), got {n_patients}")
    if population_effect not in ("new_trial", "typical"):
        raise ValueError(
            f"population_effect must be new_trial or typical, got {population_effect!r}"
        )
    n_draws = draws.n_draws
    keys = np.arange(n_draws) if posterior_index is None else np.asarray(posterior_index, np.int64)
    if keys.shape != (n_draws,):
        raise ValueError(f"posterior_index has shape {keys.shape}, expected ({n_draws},)")
    chunk = default_chunk_size(n_patients) if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk}")

    n_threads = thread_count(threads)
    # the default's threads, only as many as the work fills (tiny cohorts: one)
    per_thread = THREAD_WORK if threads is None and env_threads() is None else 1
    vocab = active()
    lay = Layout.of(vocab)
    lay.check()
    lay.check_draws(draws)
    strata = Strata.of(vocab, population, covariates or {})

    n_cyc = schedule.n_cycles
    results = Results(lay, n_draws, n_cyc)
    tables = [state_table(schedule, c, population, strata) for c in range(n_cyc)]
    tabs = tables_for(schedule, tables, rules, lay)
    outputs = lay.outputs_table(outcome_codes(vocab, rules))
    tau = np.stack([draws.tau[k] for k in lay.events], axis=1)  # (S, E)
    if draws.trial_df is not None and population_effect == "new_trial":
        tau = tau * student_t_scale(seed, keys, draws.trial_df)
    sigma = np.stack([draws.sigma[k] for k in lay.events], axis=1)
    philox_keys = draw_keys(seed, keys)
    new_trial = population_effect == "new_trial"
    pool = None
    try:
        for j0 in range(0, n_draws, chunk):
            j1 = min(j0 + chunk, n_draws)
            chunk_draws = draws.take(slice(j0, j1))
            hazard = tabs.hazard(chunk_draws)  # (b, K, C, G + 1)
            cum_beta = tabs.cum_beta(chunk_draws)  # (b, K) or None
            res = np.empty((j1 - j0, n_cyc, lay.n_res))
            # The chunk's draws in one contiguous slice per thread: one compiled call each.
            fill = max(1, (j1 - j0) * n_patients * n_cyc // per_thread)
            cuts = np.linspace(0, j1 - j0, min(n_threads, j1 - j0, fill) + 1).astype(int)

            def part(a: int, b: int, j0: int = j0, hazard=hazard, res=res, cb=cum_beta) -> None:
                sl = slice(j0 + a, j0 + b)
                _run_draws(philox_keys[sl], tau[sl], sigma[sl], hazard[a:b], tabs, lay,
                           outputs, strata, n_patients, new_trial, res[a:b],
                           None if cb is None else cb[a:b])  # fmt: skip

            if len(cuts) == 2:
                part(0, j1 - j0)
            else:
                pool = pool or ThreadPoolExecutor(n_threads)
                list(pool.map(part, cuts[:-1], cuts[1:]))
            results.store(j0, j1, res)
            if progress is not None:
                progress(j1 - j0)
    finally:
        if pool is not None:
            pool.shutdown()
    return dataset(results.out, schedule, keys, name, seed, n_patients, population_effect,
                   lay.outputs, light=light)  # fmt: skip


# The layout errors of lenasim_simulate (check_layout in _engine.c), in words.
_LAYOUT_ERRORS = {
    1: "the numbers of events, hazards and outputs",
    2: "the columns of a result row",
    3: "the random-number blocks",
    4: "the output events' hazard rows or severities",
}


_INT_ROWS = 3  # the kernel's int scratch rows: state, events so far, outcome (first the stratum)


def _work_rows(lay: Layout) -> int:
    """Rows of n of the kernel's scratch: float (frailty factors, hazards, a block of
    uniforms per 4 slots) and int (:data:`_INT_ROWS`). Shipped: 11 + 3 (112 bytes a
    patient; the outcome has its own row: folding it into the events' bits, as before
    issue 20, saved 8 bytes but cost ~4% of the engine's time)."""
    blocks = max(lay.cycle_blocks, lay.patient_blocks)
    return len(lay.events) + len(lay.hazards) + 4 * blocks + _INT_ROWS


def _run_draws(
    keys: np.ndarray,
    tau: np.ndarray,
    sigma: np.ndarray,
    hazard: np.ndarray,
    tabs: Tables,
    lay: Layout,
    outputs: np.ndarray,
    strata: Strata,
    n: int,
    new_trial: bool,
    res: np.ndarray,
    cum_beta: np.ndarray | None = None,
) -> None:
    """Cohorts of the draws with these keys (one per draw), results into res.

    keys: (S, 2) Philox keys; tau, sigma: (S, E); hazard: (S, K, C, G + 1) (see
    :meth:`Tables.hazard`); res: (S, C, lay.n_res) output rows. The compiled function
    (``lenasim_simulate`` in _engine.c) does, per draw: the patients' random terms (as
    :mod:`lenasim.simulation.streams`), then per cycle a pass over the patients per output
    event (no table look-ups, vectorised) and one for the transitions (next state, dose
    sums, the next cycle's table rows). With ``cum_beta`` ((S, K), :meth:`Tables.cum_beta`)
    it also carries each patient's exposure from cycle to cycle (``lenasim_simulate_carry``:
    E' = E K + A by state and outcome, :attr:`Tables.carry`) and multiplies the hazards'
    exp(-eta) by exp(-beta log(1 + E / REFERENCE_EXPOSURE_DAYS))."""
    s, n_cyc, g1 = keys.shape[0], tabs.next_state.shape[0], tabs.n_states
    work_f = np.empty((_work_rows(lay) - _INT_ROWS, n))
    work_i = np.empty((_INT_ROWS, n), np.int64)
    n_k = len(lay.hazards)
    if hazard.shape[1:] != (n_k, n_cyc, g1) or res.shape[1:] != (n_cyc, lay.n_res):
        raise LenasimError(
            f"the engine's tables do not match its layout: hazard {hazard.shape[1:]} and "
            f"results {res.shape[1:]}, expected {(n_k, n_cyc, g1)} and {(n_cyc, lay.n_res)}"
        )
    args = (
        lay.header(strata.n), outputs, strata.table, strata.thresholds,
        s, n, n_cyc, g1, np.ascontiguousarray(keys), np.ascontiguousarray(tau),
        np.ascontiguousarray(sigma), np.ascontiguousarray(hazard),
        tabs.next_state, tabs.reduce_stops, tabs.dose, tabs.start,
        int(new_trial), work_f, work_i, np.empty((n_k + 5) * g1), res,
    )  # fmt: skip
    if cum_beta is None:
        bad = lib.lenasim_simulate(*args)
    else:
        bad = lib.lenasim_simulate_carry(
            *args, np.ascontiguousarray(cum_beta, float), tabs.carry,
            REFERENCE_EXPOSURE_DAYS, np.empty(n),
        )  # fmt: skip
    if bad:
        raise LenasimError(
            f"the compiled engine refused the layout of the vocabulary ({', '.join(lay.outputs)})"
            f": {_LAYOUT_ERRORS.get(int(bad), 'check ' + str(bad))} do not agree with _engine.c"
        )
