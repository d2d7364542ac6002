"""The virtual-cohort Monte Carlo engine: posterior draws x patients, stepping cycles.

For each posterior draw s (a thinned subsample of the chains) a cohort of N patients
is treated on the expanded schedule. Per draw: a trial effect u_k = tau_k * N(0, 1)
(``population_effect="new_trial"``) or 0 (``"typical"``); per patient: a frailty
z_ik ~ N(0, 1) per event and elderly ~ Bernoulli(elderly_share). In cycle c::

    logit p_ikc = eta_k(state_ic, covariates_i) + u_k + sigma_k z_ik
    flare_grade3plus = flare & (U_sev < s),  logit s = eta_severity(state_ic, covariates_i)

with p = 0 in cycles without lenalidomide and for patients who stopped. The state of a
patient at the start of a cycle is (dose level, escalation allowed this cycle, highest
dose so far); the features of each state come from :func:`lenasim.regimen.cycle_features`
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
  cycle. At the lowest level, reduce means discontinue.
- discontinue: stop now (half the cycle delivered); no events afterwards.
- ``escalate_only_if_tolerated``: a cycle's escalation steps are taken only if the
  previous cycle had no grade >= 3 event.

Approximations: a held patient's highest dose is the cycle's highest planned level
(with steps inside a cycle, a mid-cycle hold may in truth come before the last step).

Common random numbers: draw s gets its own generator,
``SeedSequence([seed, key_s])`` with ``key_s`` the posterior index of the draw, which
draws, in this order, the 3 trial-effect normals, the (N, 3) frailties, the (N,)
elderly uniforms, then one (N, 4) block of uniforms per cycle (columns: flare,
flare severity, TLS, neutropenia). The same seed, posterior draw and cohort size give
the same number to the same (draw, patient, cycle, event) in every scenario, whatever
the schedule, the rules, the number of cycles or the chunking.

Rao-Blackwellised outputs: ``per_cycle`` is the mean of p over the patients who start
the cycle; ``cumulative`` is F_c = F_(c-1) + mean_i[1(no event yet for i) * p_ic] over
all patients, an unbiased estimate of P(at least one event by the end of cycle c) under
any path dependence (tower property). The sampled shares are kept alongside.

Implementation: the features and eta of every (state, cycle) are tabulated once per
draw (few states: level x allowed x highest x elderly); per patient,
w_ik = exp(-(u_k + sigma_k z_ik)) is computed once, so that
p = 1 / (1 + exp(-eta_state) w_ik) = sigmoid(eta + u + sigma z) (the hazard of
:func:`lenasim.hazard.cycle_probability`) costs no exp per cell. One compiled kernel
(numba, no GIL) steps a cohort through its cycles in one pass per cycle; its uniforms
are drawn by NumPy several cycles at a time (consecutive blocks of the same stream).
Cohorts are independent, so they run on a thread pool (``threads``) with identical
results. ``benchmarks/`` measures the engine against the random-number floor.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numba
import numpy as np
import xarray as xr
from scipy import special

from lenasim.config import Population, Rules, Scenario
from lenasim.hazard import EVENTS, SEVERITY, HazardDraws
from lenasim.regimen import Schedule, cycle_features, nominal_features
from lenasim.summarize import DOSE_COLUMNS

__all__ = ["OUTPUT_EVENTS", "default_chunk_size", "simulate", "simulate_scenario"]

OUTPUT_EVENTS: tuple[str, ...] = ("flare", "flare_grade3plus", "tls", "neutropenia")
_CONTINUE, _HOLD, _REDUCE, _STOP = 0, 1, 2, 3
_ACTION = {"continue": _CONTINUE, "hold": _HOLD, "reduce": _REDUCE, "discontinue": _STOP}
# Columns of the per-cycle uniform block, fixed for common random numbers.
_U_FLARE, _U_SEV, _U_TLS, _U_NEUT = 0, 1, 2, 3
# A chunk holds the state tables of its draws (C x 4 x G floats per draw) and, per
# thread, one cohort's working memory (~70 bytes per patient): a few MB at any size.
_CELLS_PER_CHUNK = 1_000_000
_MAX_CHUNK = 256


def default_chunk_size(n_patients: int) -> int:
    """Draws per chunk (the progress step): about a million (draw, patient) cells, at
    most 256 draws."""
    return max(1, min(_MAX_CHUNK, _CELLS_PER_CHUNK // max(1, n_patients)))


def _n_threads(threads: int | None) -> int:
    if threads is None:
        env = os.environ.get("LENASIM_THREADS")
        if env:
            return max(1, int(env))
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, min(8, cpus or 1))
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return int(threads)


def simulate_scenario(
    scenario: Scenario,
    draws: HazardDraws,
    *,
    n_patients: int | None = None,
    posterior_index: np.ndarray | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    threads: int | None = None,
) -> xr.Dataset:
    """:func:`simulate` with everything taken from a validated scenario."""
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
) -> xr.Dataset:
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
    population_effect : "new_trial" draws u_k ~ N(0, tau_k) per cohort, "typical" sets 0.
    posterior_index : (S,) the posterior sample index of each draw; keys the random
        streams (default 0..S-1) and becomes the ``posterior_index`` coordinate.
    chunk_size : draws whose state tables are built at once (and the progress step);
        the result does not depend on it. Default: :func:`default_chunk_size`.
    progress : called with the number of draws finished after each chunk.
    name : the scenario name (stored in the attrs).
    threads : cohorts simulated in parallel (default: the CPUs this process may use,
        at most 8); the result does not depend on it.

    Returns
    -------
    xarray.Dataset with dims (draw, event, cycle); see ``docs`` in :func:`_dataset`.
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
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

    n_threads = _n_threads(threads)

    n_cyc = schedule.n_cycles
    out = {
        v: np.full((n_draws, len(OUTPUT_EVENTS), n_cyc), np.nan)
        for v in ("per_cycle", "per_cycle_sampled", "cumulative")
    }
    for v in _DOSE_VARS:
        out[v] = np.full((n_draws, n_cyc), np.nan)
    tabs = _Tables(schedule, [_state_table(schedule, c, population) for c in range(n_cyc)])
    acts = np.array(
        [_ACTION[rules.on_flare_grade3plus], _ACTION[rules.on_tls], _ACTION[rules.on_neutropenia]],
        np.int64,
    )
    tau = np.stack([draws.tau[k] for k in EVENTS], axis=1)  # (S, 3)
    sigma = np.stack([draws.sigma[k] for k in EVENTS], axis=1)
    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    try:
        for j0 in range(0, n_draws, chunk):
            j1 = min(j0 + chunk, n_draws)
            hazard = tabs.hazard(draws.take(slice(j0, j1)))  # (b, C, 4, G)
            res = np.empty((j1 - j0, n_cyc, _N_RES))

            def one(j: int, j0: int = j0, hazard: np.ndarray = hazard, res: np.ndarray = res):
                _simulate_draw(_generator(seed, keys[j]), tau[j], sigma[j], hazard[j - j0],
                               tabs, acts, rules, n_patients, population, population_effect,
                               res[j - j0])  # fmt: skip

            if pool is None:
                for j in range(j0, j1):
                    one(j)
            else:
                list(pool.map(one, range(j0, j1)))
            for v, col in (("per_cycle", _R_P), ("per_cycle_sampled", _R_SAMPLED),
                           ("cumulative", _R_CUM)):  # fmt: skip
                out[v][j0:j1] = res[:, :, col : col + 4].transpose(0, 2, 1)
            for i, v in enumerate(_DOSE_VARS):
                out[v][j0:j1] = res[:, :, _R_DOSE + i]
            if progress is not None:
                progress(j1 - j0)
    finally:
        if pool is not None:
            pool.shutdown()
    return _dataset(out, schedule, keys, name, seed, n_patients, population_effect)


_DOSE_VARS = DOSE_COLUMNS  # the per-cycle dose outputs, in the order of the tables


class _StateTable:
    """Features of every possible patient state in one cycle, flattened.

    A state is (level at cycle start, escalation allowed, highest level so far or -1,
    elderly); its flat index is ``((level * 2 + allowed) * (L + 1) + highest + 1) * 2
    + elderly``.
    """

    def __init__(self, schedule: Schedule, cycle: int, population: Population) -> None:
        n_lev = schedule.levels_mg.size
        lv, al, hi, el = (
            a.ravel()
            for a in np.meshgrid(
                np.arange(n_lev), [0, 1], np.arange(-1, n_lev), [0, 1], indexing="ij"
            )
        )
        highest_mg = np.where(hi >= 0, schedule.levels_mg[np.maximum(hi, 0)], 0.0)
        f = cycle_features(schedule, cycle, lv, al.astype(bool), highest_mg)
        self.n_levels = n_lev
        self.exposed = bool(f["exposed"].any())
        self.features = dict(f)
        self.features.update(_covariates(population, el, f["first"]))
        self.dose_mean = np.asarray(f["dose_mean"], float)
        self.dose_max = np.asarray(f["dose_max"], float)
        self.intensity = np.asarray(f["intensity"], float)
        self.end_level = np.asarray(f["end_level"], np.int32)

    def index(
        self, level: np.ndarray, allowed: np.ndarray, highest: np.ndarray, elderly: np.ndarray
    ) -> np.ndarray:
        idx = level * 2 + allowed
        idx *= self.n_levels + 1
        idx += highest + 1
        idx *= 2
        idx += elderly
        return idx


def _state_table(schedule: Schedule, cycle: int, population: Population) -> _StateTable:
    return _StateTable(schedule, cycle, population)


def _covariates(
    population: Population, elderly: np.ndarray, first: np.ndarray
) -> dict[str, np.ndarray]:
    """Covariate features of the states: setting and partners are the cohort's; the
    steroid prophylaxis goes with the first lenalidomide cycle only."""
    shape = elderly.shape
    classes = set(population.partner_classes)

    def const(flag: bool) -> np.ndarray:
        return np.full(shape, float(flag))

    return {
        "untreated": const(population.setting == "untreated"),
        "consolidation": const(population.setting == "consolidation"),
        "elderly": elderly.astype(float),
        "anti_cd20": const("anti_cd20" in classes),
        "chemo": const("chemo" in classes),
        "cdk_inhibitor": const("cdk_inhibitor" in classes),
        "steroid": float(population.steroid_prophylaxis) * np.asarray(first, float),
    }


def _eta_table(draws: HazardDraws, event: str, tab: _StateTable) -> np.ndarray:
    """eta of every draw in every state, (S, G), also when the event uses no feature."""
    eta = draws.eta(event, tab.features)
    n_states = tab.end_level.size
    return np.broadcast_to(eta if eta.ndim == 2 else eta[:, None], (draws.n_draws, n_states))


def _generator(seed: int, key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, int(key)])))


class _Tables:
    """The state tables of every cycle stacked for the kernel: (C, G) arrays."""

    def __init__(self, schedule: Schedule, tables: list[_StateTable]) -> None:
        self.tables = tables
        self.n_levels = schedule.levels_mg.size
        self.start_level = schedule.start_level
        self.exposed = np.array([t.exposed for t in tables], np.bool_)
        self.end_level = np.stack([t.end_level for t in tables]).astype(np.int64)
        self.dose_mean = np.stack([t.dose_mean for t in tables])
        self.intensity = np.stack([t.intensity for t in tables])
        top = schedule.levels_mg[-1] - 1e-9
        self.at_target = np.stack([t.dose_max >= top for t in tables])

    def hazard(self, draws: HazardDraws) -> np.ndarray:
        """(S, C, 4, G): exp(-eta) of flare, TLS and neutropenia and the severity
        probability, in every state of every cycle, for every draw (0 where unexposed).

        eta is clipped to +-700 (p changes by < 1e-300) so that exp never overflows."""
        s, n_cyc, g = draws.n_draws, self.exposed.size, self.end_level.shape[1]
        out = np.zeros((s, n_cyc, 4, g))
        for c, tab in enumerate(self.tables):
            if not tab.exposed:
                continue
            for k_i, k in enumerate(EVENTS):
                eta = np.clip(_eta_table(draws, k, tab), -_ETA_CLIP, _ETA_CLIP)
                np.exp(-eta, out=out[:, c, k_i])
            out[:, c, 3] = special.expit(_eta_table(draws, SEVERITY, tab))
        return out


_ETA_CLIP = 700.0
# Columns of the kernel's per-cycle result row.
_R_P, _R_SAMPLED, _R_CUM, _R_DOSE = 0, 4, 8, 12
_N_RES = 12 + len(_DOSE_VARS)


# Uniforms drawn per kernel call: whole cycles, about 2 MB (one block of C x N x 4 for
# cohorts up to ~5,000 patients, one cycle at a time beyond).
_UNIF_BLOCK = 1 << 18


def _simulate_draw(
    gen: np.random.Generator,
    tau: np.ndarray,
    sigma: np.ndarray,
    hazard: np.ndarray,
    tabs: _Tables,
    acts: np.ndarray,
    rules: Rules,
    n: int,
    population: Population,
    population_effect: str,
    res: np.ndarray,
) -> None:
    """One cohort (one posterior draw): its random numbers in the fixed order (3 trial
    normals, (N, 3) frailties, (N,) elderly uniforms, then an (N, 4) block per cycle),
    and the kernel over the cycles. Successive cycle blocks are consecutive in the
    stream, so several cycles are drawn with one call."""
    u_std = gen.standard_normal(len(EVENTS))
    w = gen.standard_normal((n, len(EVENTS)))  # the frailties z, made w in place
    elderly_u = gen.random(n)
    u = u_std * tau if population_effect == "new_trial" else np.zeros_like(u_std)
    # w = exp(-(u_k + sigma_k z_ik)); with r = exp(-eta) per state, p = 1 / (1 + r w) =
    # sigmoid(eta + u + sigma z): lenasim.hazard.cycle_probability without an exp per cell.
    elderly = _patient_terms(w, u, sigma, elderly_u, population.elderly_share)
    n_cyc = tabs.exposed.size
    per_call = max(1, min(n_cyc, _UNIF_BLOCK // (4 * n)))
    unif = np.empty((per_call, n, 4))
    state = np.zeros((4, n), np.int64)  # level, allowed, highest + 1, stopped
    state[0] = tabs.start_level
    state[1] = 1
    ever = np.zeros(n, np.uint8)  # bit e: event e (OUTPUT_EVENTS order) has occurred
    cum = np.zeros(4)
    for c0 in range(0, n_cyc, per_call):
        k = min(per_call, n_cyc - c0)
        gen.random(out=unif[:k])
        _cohort_kernel(c0, unif[:k], hazard, tabs.end_level, tabs.dose_mean, tabs.intensity,
                       tabs.at_target, tabs.exposed, tabs.n_levels, w, elderly, acts,
                       bool(rules.escalate_only_if_tolerated), state, ever, cum, res)  # fmt: skip


@numba.njit(nogil=True, cache=True)
def _patient_terms(z, u, sigma, elderly_u, elderly_share):
    """z (N, 3) -> w = exp(-(u + sigma z)) in place (exponent clipped to +-700); returns
    the elderly flags (N,) 0/1."""
    n = z.shape[0]
    elderly = np.empty(n, np.int64)
    for i in range(n):
        for k in range(3):
            x = min(max(u[k] + sigma[k] * z[i, k], -_ETA_CLIP), _ETA_CLIP)
            z[i, k] = np.exp(-x)
        elderly[i] = elderly_u[i] < elderly_share
    return elderly


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _cohort_kernel(c0, unif, hazard, end_level, dose_mean, intensity, at_target, exposed,
                   n_levels, w, elderly, acts, escalate_only, state, ever, cum, res):  # fmt: skip
    """Cycles c0 .. c0 + len(unif) - 1 of one cohort, one pass over the patients each.

    unif: (k, N, 4) the cycles' uniforms (flare, severity, TLS, neutropenia).
    hazard: (C, 4, G) exp(-eta) of flare, TLS, neutropenia, and the severity probability.
    end_level, dose_mean, intensity, at_target: (C, G) state tables; exposed: (C,).
    w: (N, 3) exp(-(u_k + sigma_k z_ik)); elderly: (N,) 0/1.
    acts: (3,) actions on grade >= 3 flare, TLS, neutropenia.
    state: (4, N) level, escalation allowed, highest level + 1, stopped; ever: (N,) bits;
    cum: (4,) cumulative sums, all updated in place. res: (C, _N_RES) output rows.
    The state machine is the one of the module docstring.
    """
    n = w.shape[0]
    a_sev, a_tls, a_neut = acts[0], acts[1], acts[2]
    level, allowed, high1, stopped = state[0], state[1], state[2], state[3]
    for cc in range(unif.shape[0]):
        c = c0 + cc
        u = unif[cc]
        exp_c = exposed[c]
        r_f, r_t, r_n, sev_c = hazard[c, 0], hazard[c, 1], hazard[c, 2], hazard[c, 3]
        end_c, dmean_c, inten_c, target_c = end_level[c], dose_mean[c], intensity[c], at_target[c]
        p0 = p1 = p2 = p3 = 0.0
        e0 = e1 = e2 = e3 = 0
        c0s = c1s = c2s = c3s = 0.0
        n_start = n_left = n_target = n_held = n_reduced = 0
        dose_sum = deliv_sum = 0.0
        for i in range(n):
            if stopped[i]:
                continue
            n_start += 1
            s = ((level[i] * 2 + allowed[i]) * (n_levels + 1) + high1[i]) * 2 + elderly[i]
            end = end_c[s]
            act = 0
            g3 = False
            if exp_c:
                pf = 1.0 / (1.0 + r_f[s] * w[i, 0])
                pt = 1.0 / (1.0 + r_t[s] * w[i, 1])
                pn = 1.0 / (1.0 + r_n[s] * w[i, 2])
                sev = sev_c[s]
                pg = pf * sev
                p0 += pf
                p1 += pg
                p2 += pt
                p3 += pn
                ev = ever[i]
                c0s += pf * ((ev & 1) == 0)
                c1s += pg * ((ev & 2) == 0)
                c2s += pt * ((ev & 4) == 0)
                c3s += pn * ((ev & 8) == 0)
                ef = u[i, 0] < pf
                eg = ef & (u[i, 1] < sev)
                et = u[i, 2] < pt
                en = u[i, 3] < pn
                e0 += ef
                e1 += eg
                e2 += et
                e3 += en
                ever[i] = ev | ef | (eg << 1) | (et << 2) | (en << 3)
                act = max(eg * a_sev, et * a_tls, en * a_neut)
                g3 = eg | et | en
                if act == _REDUCE and end == 0:
                    act = _STOP
                high1[i] = max(high1[i], end + 1)
            dose_sum += dmean_c[s]
            deliv_sum += inten_c[s] * (1.0 if act == _CONTINUE else 0.5)
            n_target += target_c[s]
            held = (act == _HOLD) | (act == _REDUCE)
            n_held += held
            n_reduced += act == _REDUCE
            level[i] = end - (act == _REDUCE)
            allowed[i] = not (held | (escalate_only & g3))
            stopped[i] = act == _STOP
            n_left += act != _STOP
        inv = 1.0 / n_start if n_start > 0 else np.nan
        cum[0] += c0s / n
        cum[1] += c1s / n
        cum[2] += c2s / n
        cum[3] += c3s / n
        row = res[c]
        row[_R_P + 0] = p0 * inv
        row[_R_P + 1] = p1 * inv
        row[_R_P + 2] = p2 * inv
        row[_R_P + 3] = p3 * inv
        row[_R_SAMPLED + 0] = e0 * inv
        row[_R_SAMPLED + 1] = e1 * inv
        row[_R_SAMPLED + 2] = e2 * inv
        row[_R_SAMPLED + 3] = e3 * inv
        for e in range(4):
            row[_R_CUM + e] = cum[e]
        row[_R_DOSE + 0] = dose_sum * inv
        row[_R_DOSE + 1] = deliv_sum * inv
        row[_R_DOSE + 2] = n_start / n
        row[_R_DOSE + 3] = n_target * inv
        row[_R_DOSE + 4] = n_held * inv
        row[_R_DOSE + 5] = n_reduced * inv
        row[_R_DOSE + 6] = 1.0 - n_left / n


def _dataset(
    out: dict[str, np.ndarray],
    schedule: Schedule,
    keys: np.ndarray,
    name: str,
    seed: int,
    n_patients: int,
    population_effect: str,
) -> xr.Dataset:
    """Assemble draws.nc. Dims: draw, event, cycle (1-based)."""
    n_cyc = schedule.n_cycles
    coords = {
        "draw": np.arange(keys.size),
        "event": list(OUTPUT_EVENTS),
        "cycle": np.arange(1, n_cyc + 1),
        "posterior_index": ("draw", keys.astype(np.int64)),
    }
    doc = {
        "per_cycle": ("probability of the event in the cycle for a patient who starts it "
                      "(Rao-Blackwellised: mean of p over the patients starting the cycle)"),
        "per_cycle_sampled": "share of the patients starting the cycle who had the event (sampled)",
        "cumulative": ("probability of at least one event by the end of the cycle, of all "
                       "patients (Rao-Blackwellised)"),
        "dose_mean_mg": ("mean daily dose on the days on drug (mg/day), mean over patients "
                         "starting the cycle (0 in cycles without lenalidomide)"),
        "dose_intensity": "mg delivered per day of the cycle, mean over patients starting it",
        "planned_intensity": "nominal mg per day of the cycle under the regimen (no events)",
        "share_on": "share of all patients who start the cycle",
        "share_at_target": "share of the patients starting the cycle whose dose reaches the target",
        "share_held": "share of the patients starting the cycle held or reduced in it",
        "share_reduced": "share of the patients starting the cycle reduced one level after it",
        "share_stopped": "share of all patients discontinued by the end of the cycle",
    }  # fmt: skip
    units = {"dose_mean_mg": "mg/day", "dose_intensity": "mg/day", "planned_intensity": "mg/day"}
    data = {}
    for v in ("per_cycle", "per_cycle_sampled", "cumulative"):
        data[v] = (("draw", "event", "cycle"), out[v])
    for v in _DOSE_VARS:
        data[v] = (("draw", "cycle"), out[v])
    data["planned_intensity"] = (
        ("cycle",),
        np.asarray(nominal_features(schedule)["intensity"], float),
    )
    ds = xr.Dataset(data, coords=coords)
    for v, text in doc.items():
        ds[v].attrs["description"] = text
        if v in units:
            ds[v].attrs["units"] = units[v]
    ds.attrs.update(
        scenario=name,
        seed=int(seed),
        n_patients=int(n_patients),
        population_effect=population_effect,
    )
    return ds
