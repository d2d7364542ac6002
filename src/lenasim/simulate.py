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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import xarray as xr
from scipy import special

from lenasim.config import Population, Rules, Scenario
from lenasim.hazard import EVENTS, SEVERITY, HazardDraws, cycle_probability
from lenasim.regimen import Schedule, cycle_features, nominal_features

__all__ = ["OUTPUT_EVENTS", "default_chunk_size", "simulate", "simulate_scenario"]

OUTPUT_EVENTS: tuple[str, ...] = ("flare", "flare_grade3plus", "tls", "neutropenia")
_CONTINUE, _HOLD, _REDUCE, _STOP = 0, 1, 2, 3
_ACTION = {"continue": _CONTINUE, "hold": _HOLD, "reduce": _REDUCE, "discontinue": _STOP}
# Columns of the per-cycle uniform block, fixed for common random numbers.
_U_FLARE, _U_SEV, _U_TLS, _U_NEUT = 0, 1, 2, 3
# Working memory is ~300 bytes per (draw, patient); 1e6 of them per chunk is ~300 MB.
_CELLS_PER_CHUNK = 1_000_000


def default_chunk_size(n_patients: int) -> int:
    """Draws per chunk so that a chunk holds about a million (draw, patient) cells."""
    return max(1, _CELLS_PER_CHUNK // max(1, n_patients))


def simulate_scenario(
    scenario: Scenario,
    draws: HazardDraws,
    *,
    n_patients: int | None = None,
    posterior_index: np.ndarray | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
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
    chunk_size : draws simulated at once (memory ~ 300 bytes x chunk_size x n_patients);
        the result does not depend on it. Default: :func:`default_chunk_size`.
    progress : called with the number of draws finished after each chunk.
    name : the scenario name (stored in the attrs).

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

    n_cyc = schedule.n_cycles
    out = {
        v: np.full((n_draws, len(OUTPUT_EVENTS), n_cyc), np.nan)
        for v in ("per_cycle", "per_cycle_sampled", "cumulative")
    }
    for v in _DOSE_VARS:
        out[v] = np.full((n_draws, n_cyc), np.nan)
    tables = [_state_table(schedule, c, population) for c in range(n_cyc)]
    for j0 in range(0, n_draws, chunk):
        j1 = min(j0 + chunk, n_draws)
        _simulate_chunk(
            schedule, tables, rules, draws.take(slice(j0, j1)), keys[j0:j1],
            n_patients, seed, population, population_effect,
            {k: v[j0:j1] for k, v in out.items()},
        )  # fmt: skip
        if progress is not None:
            progress(j1 - j0)
    return _dataset(out, schedule, keys, name, seed, n_patients, population_effect)


_DOSE_VARS = (
    "dose_mean_mg",
    "dose_intensity",
    "share_on",
    "share_at_target",
    "share_held",
    "share_reduced",
    "share_stopped",
)


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


def _generators(seed: int, keys: np.ndarray) -> list[np.random.Generator]:
    return [
        np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, int(k)]))) for k in keys
    ]


def _simulate_chunk(
    schedule: Schedule,
    tables: list[_StateTable],
    rules: Rules,
    draws: HazardDraws,
    keys: np.ndarray,
    n: int,
    seed: int,
    population: Population,
    population_effect: str,
    out: dict[str, np.ndarray],
) -> None:
    """Simulate the draws of one chunk, writing into the views ``out``."""
    b = draws.n_draws
    gens = _generators(seed, keys)
    # Per-draw, then per-patient random numbers, in a fixed order (common random numbers).
    u_std = np.empty((b, len(EVENTS)))
    z = np.empty((b, n, len(EVENTS)))
    elderly_u = np.empty((b, n))
    for j, g in enumerate(gens):
        g.standard_normal(out=u_std[j])
        g.standard_normal(out=z[j])
        g.random(out=elderly_u[j])
    tau = np.stack([draws.tau[k] for k in EVENTS], axis=1)  # (b, 3)
    sigma = np.stack([draws.sigma[k] for k in EVENTS], axis=1)
    u = u_std * tau if population_effect == "new_trial" else np.zeros_like(u_std)
    elderly = (elderly_u < population.elderly_share).astype(np.int32)
    del elderly_u

    act_of = {
        "neutropenia": _ACTION[rules.on_neutropenia],
        "flare_grade3plus": _ACTION[rules.on_flare_grade3plus],
        "tls": _ACTION[rules.on_tls],
    }
    level = np.zeros((b, n), np.int32)
    allowed = np.ones((b, n), np.int32)
    highest = np.full((b, n), -1, np.int32)
    active = np.ones((b, n), bool)
    ever = np.zeros((len(OUTPUT_EVENTS), b, n), bool)
    cum = np.zeros((len(OUTPUT_EVENTS), b))
    unif = np.empty((b, n, 4))
    rows = np.arange(b)[:, None]

    for c, tab in enumerate(tables):
        for j, g in enumerate(gens):
            g.random(out=unif[j])
        n_start = active.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            inv_start = np.where(n_start > 0, 1.0 / n_start, np.nan)
        idx = tab.index(level, allowed, highest, elderly)
        p = {}
        if tab.exposed:
            for k_i, k in enumerate(EVENTS):
                eta = _eta_table(draws, k, tab)  # (b, G): few states, all draws
                p[k] = cycle_probability(
                    eta[rows, idx], u[:, k_i, None], sigma[:, k_i, None], z[:, :, k_i], 1.0
                )
                p[k] *= active
            sev = special.expit(_eta_table(draws, SEVERITY, tab)[rows, idx])
            p["flare_grade3plus"] = p["flare"] * sev
            ev = {
                "flare": unif[:, :, _U_FLARE] < p["flare"],
                "tls": unif[:, :, _U_TLS] < p["tls"],
                "neutropenia": unif[:, :, _U_NEUT] < p["neutropenia"],
            }
            ev["flare_grade3plus"] = ev["flare"] & (unif[:, :, _U_SEV] < sev)
        else:
            zero = np.zeros((b, n))
            p = dict.fromkeys(OUTPUT_EVENTS, zero)
            ev = dict.fromkeys(OUTPUT_EVENTS, np.zeros((b, n), bool))

        for e_i, k in enumerate(OUTPUT_EVENTS):
            out["per_cycle"][:, e_i, c] = p[k].sum(axis=1) * inv_start
            out["per_cycle_sampled"][:, e_i, c] = ev[k].sum(axis=1) * inv_start
            cum[e_i] += np.mean(p[k] * ~ever[e_i], axis=1)
            out["cumulative"][:, e_i, c] = cum[e_i]
            ever[e_i] |= ev[k]

        # Dose-modification state machine.
        act = np.zeros((b, n), np.int8)
        for k, a in act_of.items():
            if a != _CONTINUE:
                np.maximum(act, np.where(ev[k], a, 0).astype(np.int8), out=act)
        end = tab.end_level[idx]
        act[(act == _REDUCE) & (end == 0)] = _STOP
        act[~active] = _CONTINUE
        modified = act != _CONTINUE
        delivered = np.where(modified, 0.5, 1.0) * active
        at_target = tab.dose_max[idx] >= schedule.levels_mg[-1] - 1e-9
        out["dose_mean_mg"][:, c] = (tab.dose_mean[idx] * active).sum(axis=1) * inv_start
        out["dose_intensity"][:, c] = (tab.intensity[idx] * delivered).sum(axis=1) * inv_start
        out["share_on"][:, c] = n_start / n
        out["share_at_target"][:, c] = (at_target & active).sum(axis=1) * inv_start
        out["share_held"][:, c] = ((act == _HOLD) | (act == _REDUCE)).sum(axis=1) * inv_start
        out["share_reduced"][:, c] = (act == _REDUCE).sum(axis=1) * inv_start

        if tab.exposed:
            highest = np.where(active, np.maximum(highest, end), highest)
        level = np.where(act == _REDUCE, end - 1, end).astype(np.int32)
        grade3 = ev["neutropenia"] | ev["flare_grade3plus"] | ev["tls"]
        ok = ~((act == _HOLD) | (act == _REDUCE))
        if rules.escalate_only_if_tolerated:
            ok &= ~grade3
        allowed = ok.astype(np.int32)
        active &= act != _STOP
        out["share_stopped"][:, c] = 1.0 - active.mean(axis=1)


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
