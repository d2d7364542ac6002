"""The in-trial prior from a lenasim posterior: per draw and candidate, the per-cycle
probabilities of every event of the hazards the limits name (:func:`data_model`) and the
risks the limits bound, for a new trial.

Each prior draw is a posterior draw with the engine's own new trial effect (the trial to
be run is a new trial), simulated on every candidate with ``population.patients``
virtual patients (Rao-Blackwellised per-cycle probabilities). The robust component
(``update.robust_weight`` > 0) is the same draws with each between-trial SD widened to
sqrt(tau^2 + robust_sd^2): a trial whose risks may sit far from the published trials'.
"""

from __future__ import annotations

import numpy as np

from lenasim.core.hazard import EVENTS, HazardDraws
from lenasim.core.limits import RiskLimits
from lenasim.core.regimen import Schedule
from lenasim.core.vocabulary import OUTPUT_EVENTS, active
from lenasim.design.truth import limit_risk
from lenasim.design.update import DrawModel
from lenasim.simulation.engine import simulate, student_t_scale
from lenasim.simulation.scenario import Population, Rules
from lenasim.simulation.streams import draw_keys, trial_normals

__all__ = ["data_events", "data_model", "engine_trial_effect", "prior_model", "widened"]


def data_events(limits: RiskLimits) -> np.ndarray:
    """Indices (in the engine's output events) of the events the limits name, in order."""
    names = sorted({e for e, _ in limits.items()}, key=OUTPUT_EVENTS.index)
    return np.array([OUTPUT_EVENTS.index(e) for e in names], np.int64)


def data_model(limits: RiskLimits) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """What the in-trial working likelihood sees (:mod:`lenasim.design.update`): the
    indices (in the engine's output events, in order) of every event of the hazards the
    limits name, and the (any grade, grade >= 3) pairs among them as positions in that
    list. A limit on grade >= 3 flare names the flare hazard: flares of every grade and
    their grade are data."""
    vocab = active()
    sev = vocab.severity
    hazards = set()
    for e, _ in limits.items():
        hazards.add(sev.event if e == sev.output else e)
    names = [o for o in vocab.outputs
             if o in hazards or (o == sev.output and sev.event in hazards)]  # fmt: skip
    events = np.array([vocab.outputs.index(o) for o in names], np.int64)
    graded = ()
    if sev.event in hazards:
        graded = ((names.index(sev.event), names.index(sev.output)),)
    return events, graded


def widened(draws: HazardDraws, extra_sd: float) -> HazardDraws:
    """The draws with each between-trial SD widened to sqrt(tau^2 + extra_sd^2)."""
    tau = {k: np.sqrt(v**2 + extra_sd**2) for k, v in draws.tau.items()}
    return HazardDraws(draws.terms, draws.intercept, draws.coefs, tau, draws.sigma, draws.trial_df)


def engine_trial_effect(draws: HazardDraws, posterior_index: np.ndarray, seed: int) -> np.ndarray:
    """(S, 3) the new trial effects the engine gives these draws under this seed
    (:mod:`lenasim.simulation.streams`: the draw's trial normals times tau)."""
    keys = draw_keys(seed, posterior_index)
    z = np.stack([trial_normals(k) for k in keys])
    tau = np.stack([draws.tau[k] for k in EVENTS], axis=1)
    if draws.trial_df is not None:
        tau = tau * student_t_scale(seed, posterior_index, draws.trial_df)
    return z * tau


def prior_model(
    schedules: list[Schedule],
    population: Population,
    rules: Rules,
    draws: HazardDraws,
    posterior_index: np.ndarray,
    limits: RiskLimits,
    seed: int,
    robust_weight: float = 0.0,
    robust_sd: float = 2.0,
    threads: int | None = None,
    progress=None,
    frailty: bool = True,
) -> DrawModel:
    """The :class:`DrawModel` of these posterior draws on these candidates (see the module
    docstring); the robust component's draws follow the posterior's. ``frailty``: the
    working likelihood integrates each patient's frailty (:mod:`lenasim.design.frailty`)
    with the draws' frailty SDs."""
    comps = [(draws, 1.0 - robust_weight)]
    if robust_weight > 0:
        comps.append((widened(draws, robust_sd), robust_weight))
    ev, graded = data_model(limits)
    n_c = max(s.n_cycles for s in schedules)
    ps, risks, prior, sigmas = [], [], [], []
    names = [OUTPUT_EVENTS[i] for i in ev]
    for comp, weight in comps:
        p = np.full((comp.n_draws, len(schedules), ev.size, n_c), 0.5)
        risk = np.empty((comp.n_draws, len(schedules), len(limits.items())))
        for j, sch in enumerate(schedules):
            ds = simulate(sch, population, rules, comp, n_patients=population.patients,
                          seed=seed, population_effect="new_trial",
                          posterior_index=posterior_index, threads=threads, light=True)  # fmt: skip
            got = ds["per_cycle"].values[:, ev, :]  # NaN where no patient starts the cycle
            p[:, j, :, : got.shape[2]] = np.where(np.isnan(got), 0.5, got)
            risk[:, j] = limit_risk(ds, limits)
            if progress is not None:
                progress(1)
        ps.append(p)
        risks.append(risk)
        prior.append(np.full(comp.n_draws, weight / comp.n_draws))
        zero = np.zeros(comp.n_draws)
        sigmas.append(np.stack([np.asarray(comp.sigma.get(n, zero), float) for n in names], 1))
    maxes = np.array([lim.max for _, lim in limits.items()])
    return DrawModel(
        p=np.concatenate(ps),
        events=ev,
        limit_risk=np.concatenate(risks),
        limit_max=maxes,
        max_probability=limits.max_probability,
        prior=np.concatenate(prior),
        graded=graded,
        sigma=np.concatenate(sigmas) if frailty else None,
    )
