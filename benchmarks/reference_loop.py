"""The straightforward reference: a per-patient Python loop over cycles.

What an analyst would write from the model's description, with no vectorisation and no
tables: for each posterior draw, for each patient, for each cycle, evaluate the cycle's
exposure features for the patient's state (:func:`lenasim.core.regimen.cycle_features`), the
linear predictors (:meth:`HazardDraws.eta`) and the probabilities
(:func:`lenasim.core.hazard.cycle_probability`), draw the events and apply the dose rules.

By default it draws its own random numbers, so it agrees with the engine in
distribution, not number for number: ``tests/project/test_benchmarks.py`` checks the agreement
within Monte Carlo error, and ``benchmarks/run.py`` times it against the engine. With
``engine_streams=True`` it takes the engine's random numbers instead (the functions of
:mod:`lenasim.simulation.streams`, keyed by draw, patient and cycle), and must then agree to
rounding.
It returns the same per-draw quantities as :func:`lenasim.simulation.engine.simulate` (as a dict
of NumPy arrays: (S, 4, C) and (S, C)).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from lenasim.core.hazard import EVENTS, SEVERITY, HazardDraws, cycle_probability
from lenasim.core.regimen import Schedule, cycle_features
from lenasim.core.vocabulary import DOSE_COLUMNS
from lenasim.simulation import streams
from lenasim.simulation.scenario import Population, Rules

RANK = {"continue": 0, "hold": 1, "reduce": 2, "discontinue": 3}


def simulate_reference(
    schedule: Schedule,
    population: Population,
    rules: Rules,
    draws: HazardDraws,
    *,
    n_patients: int,
    seed: int,
    population_effect: str = "new_trial",
    engine_streams: bool = False,
) -> dict[str, np.ndarray]:
    s_n, c_n = draws.n_draws, schedule.n_cycles
    out = {v: np.zeros((s_n, 4, c_n)) for v in ("per_cycle", "per_cycle_sampled", "cumulative")}
    out.update({v: np.zeros((s_n, c_n)) for v in DOSE_COLUMNS})
    levels = schedule.levels_mg
    classes = set(population.partner_classes)
    for s in range(s_n):
        d = draws.take(slice(s, s + 1))
        if engine_streams:  # the engine's counter-based numbers (lenasim.simulation.streams)
            key = streams.draw_keys(seed, [s])[0]
            patients = np.arange(n_patients)
            u_std = streams.trial_normals(key)
            pd = streams.patient_draws(key, patients)
            z_all, elderly_u = pd[:, :3], pd[:, 3]
            unif = np.stack([streams.cycle_uniforms(key, patients, c) for c in range(c_n)])
        else:
            rng = np.random.default_rng([seed, s, 0xBE7C])
            u_std = rng.standard_normal(3)
            z_all = rng.standard_normal((n_patients, 3))
            elderly_u = rng.random(n_patients)
            unif = rng.random((c_n, n_patients, 4))  # flare, severity, TLS, neutropenia
        if population_effect == "new_trial":
            u = {k: float(d.tau[k][0]) * u_std[i] for i, k in enumerate(EVENTS)}
        else:
            u = dict.fromkeys(EVENTS, 0.0)
        p_sum = np.zeros((4, c_n))
        ev_sum = np.zeros((4, c_n))
        cum_sum = np.zeros((4, c_n))  # sum of p over the patients free of the event
        at_risk = np.zeros((4, c_n))  # patients free of the event (stopped ones too)
        n_start = np.zeros(c_n)
        n_stopped_in = np.zeros(c_n)
        dose = {v: np.zeros(c_n) for v in DOSE_COLUMNS}
        for i in range(n_patients):
            z = {k: z_all[i, j] for j, k in enumerate(EVENTS)}
            elderly = float(elderly_u[i] < population.elderly_share)
            level, allowed, highest_mg, on = schedule.start_level, True, 0.0, True
            ever = [False] * 4
            for c in range(c_n):
                if not on:  # stopped: no events, p = 0, still at risk if event-free
                    for e in range(4):
                        at_risk[e, c] += not ever[e]
                    continue
                n_start[c] += 1
                f = cycle_features(schedule, c, np.array(level), np.array(allowed),
                                   np.array(highest_mg))  # fmt: skip
                x = {k: float(v) for k, v in f.items()}
                x.update(
                    untreated=float(population.setting == "untreated"),
                    consolidation=float(population.setting == "consolidation"),
                    elderly=elderly,
                    anti_cd20=float("anti_cd20" in classes),
                    chemo=float("chemo" in classes),
                    cdk_inhibitor=float("cdk_inhibitor" in classes),
                    steroid=float(population.steroid_prophylaxis) * x["first"],
                )
                if x["exposed"]:
                    p = {}
                    for k in EVENTS:
                        eta = float(np.asarray(d.eta(k, x)).ravel()[0])
                        sigma = float(d.sigma[k][0])
                        p[k] = float(cycle_probability(eta, u[k], sigma, z[k], 1.0))
                    sev = float(special.expit(np.asarray(d.eta(SEVERITY, x)).ravel()[0]))
                    u_f, u_s, u_t, u_n = unif[c, i]
                    flare = u_f < p["flare"]
                    severe = flare and u_s < sev
                    tls = u_t < p["tls"]
                    neut = u_n < p["neutropenia"]
                    probs = [p["flare"], p["flare"] * sev, p["tls"], p["neutropenia"]]
                    events = [flare, severe, tls, neut]
                else:
                    probs, events = [0.0] * 4, [False] * 4
                    severe = tls = neut = False
                for e in range(4):
                    p_sum[e, c] += probs[e]
                    ev_sum[e, c] += events[e]
                    if not ever[e]:
                        cum_sum[e, c] += probs[e]
                        at_risk[e, c] += 1
                    ever[e] = ever[e] or events[e]
                action = "continue"
                for hit, rule in ((severe, rules.on_flare_grade3plus), (tls, rules.on_tls),
                                  (neut, rules.on_neutropenia)):  # fmt: skip
                    if hit and RANK[rule] > RANK[action]:
                        action = rule
                end = int(x["end_level"])
                delivered = x["intensity"]
                if rules.escalate_only_if_tolerated and (severe or tls or neut) and x["exposed"]:
                    # the event strikes mid-cycle: the steps of the second half wait
                    on_days = np.flatnonzero(schedule.on[c])
                    half = on_days.size // 2
                    lev = [min(level + allowed * int(schedule.steps[c][d]), len(levels) - 1)
                           for d in on_days]  # fmt: skip
                    end = lev[max(half - 1, 0)]
                    mg = sum(levels[v] for v in lev[:half]) + (on_days.size - half) * levels[end]
                    delivered = mg / schedule.cycle_days[c]
                if action == "reduce" and end == 0:
                    action = "hold" if rules.on_lowest == "hold" else "discontinue"
                dose["dose_mean_mg"][c] += x["dose_mean"]
                dose["dose_intensity"][c] += (
                    delivered if action == "continue" else x["intensity"] * 0.5
                )
                dose["share_at_target"][c] += x["dose_max"] >= levels[-1] - 1e-9
                dose["share_held"][c] += action in ("hold", "reduce")
                dose["share_reduced"][c] += action == "reduce"
                if x["exposed"]:
                    highest_mg = max(highest_mg, float(levels[end]))
                level = end - 1 if action == "reduce" else end
                allowed = action not in ("hold", "reduce")
                if rules.escalate_only_if_tolerated and (severe or tls or neut):
                    allowed = False
                if action == "discontinue":
                    on = False
                    n_stopped_in[c] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            inv = np.where(n_start > 0, 1.0 / n_start, np.nan)
        out["per_cycle"][s] = p_sum * inv
        out["per_cycle_sampled"][s] = ev_sum * inv
        # product limit over the hazards of the event-free (all patients' mean p if none)
        with np.errstate(invalid="ignore", divide="ignore"):
            hazard = np.where(at_risk > 0, cum_sum / at_risk, p_sum / n_patients)
        out["cumulative"][s] = 1 - np.cumprod(1 - hazard, axis=1)
        for v in ("dose_mean_mg", "dose_intensity", "share_at_target", "share_held",
                  "share_reduced"):  # fmt: skip
            out[v][s] = dose[v] * inv
        out["share_on"][s] = n_start / n_patients
        out["share_stopped"][s] = np.cumsum(n_stopped_in) / n_patients
    return out
