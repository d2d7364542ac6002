"""Synthetic patient-level data from known parameters, by the engine (issue 24, item 6):
the CSV that ``fit --patients`` reads (:mod:`lenasim.model.patient_data`), for the shipped
example (``examples/patient_level/``), the recovery test and the README's numbers.

Each synthetic trial is a regimen, a number of patients, a share aged 65 or more and a
setting. The trial's effect u_k ~ N(0, tau_k) is drawn once (or given) and folded into
the intercepts; each patient is then a one-patient cohort of the engine (its own frailty
per event, its own uniforms, keyed by (seed, patient number)), as the design stage
simulates trial patients, and his per-cycle events are the engine's sampled events. The
patients follow the protocol (no dose rule), so each cycle's doses are the regimen's.
A share of patients is cut by the end of follow-up (entered late): they are followed for
a uniform time over the schedule, the last cycle in part, and an event of that cycle is
seen with probability the share followed (the event time uniform in the cycle, as
TITE-CRM assumes; :mod:`lenasim.model.patient_data`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lenasim.core.exposure import nominal_features
from lenasim.core.hazard import EVENTS, HazardDraws
from lenasim.core.regimen import Regimen
from lenasim.core.vocabulary import OUTPUT_EVENTS, active
from lenasim.simulation.engine import simulate
from lenasim.simulation.scenario import Population, Rules

__all__ = ["SyntheticTrial", "fold", "simulate_patient_cycles"]


@dataclass(frozen=True)
class SyntheticTrial:
    name: str
    regimen: Regimen
    patients: int
    elderly_share: float = 0.0
    setting: str = "relapsed"
    censored_share: float = 0.0  # patients cut by the end of follow-up


def fold(truth: HazardDraws, effect: np.ndarray) -> HazardDraws:
    """One draw with the trial effect ``effect`` (E,) folded into the intercepts and no
    between-trial SD (a known trial)."""
    intercept = dict(truth.intercept)
    for e, k in enumerate(EVENTS):
        intercept[k] = truth.intercept[k] + effect[e]
    zero = {k: np.zeros_like(v) for k, v in truth.tau.items()}
    return HazardDraws(truth.terms, intercept, truth.coefs, zero, truth.sigma, None, truth.link)


def simulate_patient_cycles(
    truth: HazardDraws,
    trials: list[SyntheticTrial],
    seed: int,
    effects: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The patient-cycle CSV's rows for ``trials`` under ``truth`` (one draw), and the
    trial effects used ((T, E): ``effects`` or drawn from N(0, tau))."""
    rng = np.random.default_rng([int(seed), 0x5EED])
    tau = np.array([truth.tau[k][0] for k in EVENTS])
    if effects is None:
        effects = rng.standard_normal((len(trials), len(EVENTS))) * tau
    covs = active().covariate_terms
    out, key = [], 0
    for t, tr in enumerate(trials):
        one = fold(truth, np.asarray(effects[t], float))
        sch = tr.regimen.expand()
        f = nominal_features(sch)
        n_c = sch.n_cycles
        first_day = np.array([int(np.flatnonzero(sch.on[c])[0]) + 1 if sch.on[c].any() else 1
                              for c in range(n_c)])  # fmt: skip
        days_on = sch.on[:n_c].sum(axis=1)
        dose_first = np.array([
            float(sch.daily_doses()[int(sch.cycle_days[:c].sum()) + first_day[c] - 1])
            for c in range(n_c)
        ])  # fmt: skip
        elderly = (rng.random(tr.patients) < tr.elderly_share).astype(int)
        for old in (0, 1):
            ids = np.flatnonzero(elderly == old)
            if not ids.size:
                continue
            pop = Population(patients=1, setting=tr.setting, elderly_share=float(old))
            keys = np.arange(key, key + ids.size, dtype=np.int64)
            key += ids.size
            ds = simulate(sch, pop, Rules(), one.take(np.zeros(ids.size, np.int64)),
                          n_patients=1, seed=seed, population_effect="typical",
                          posterior_index=keys, threads=1, light=True)  # fmt: skip
            ev = ds["per_cycle_sampled"].values  # (patients, outputs, C): 0/1
            for j, pid in enumerate(ids):
                for c in range(n_c):
                    row = {
                        "trial": tr.name, "patient": f"{tr.name}-{pid + 1:03d}", "cycle": c + 1,
                        "dose_mg": round(float(f["dose_mean"][c]), 4),
                        "dose_max_mg": float(f["dose_max"][c]),
                        "dose_first_mg": dose_first[c], "first_day": int(first_day[c]),
                        "days_on": int(days_on[c]), "cycle_days": int(sch.cycle_days[c]),
                        "followed_days": int(sch.cycle_days[c]),
                    }  # fmt: skip
                    for k in (*EVENTS, active().severity.output):
                        row[k] = int(ev[j, OUTPUT_EVENTS.index(k), c])
                    row.update({c_: 0 for c_ in covs})
                    row["elderly"] = int(old)
                    if tr.setting != "relapsed":
                        row[tr.setting] = 1
                    row["_order"] = pid
                    out.append(row)
    df = pd.DataFrame(out).sort_values(["trial", "_order", "cycle"], kind="stable")
    df = df.drop(columns="_order").reset_index(drop=True)
    df = _censor(df, trials, rng)
    return df, np.asarray(effects)


def _censor(df: pd.DataFrame, trials: list[SyntheticTrial], rng) -> pd.DataFrame:
    """Cut a share of each trial's patients at a uniform time over their schedule."""
    keep = np.ones(len(df), bool)
    events = [*EVENTS, active().severity.output]
    for tr in trials:
        pats = df.loc[df["trial"] == tr.name, "patient"].unique()
        cut = pats[rng.random(pats.size) < tr.censored_share]
        for p in cut:
            idx = np.flatnonzero((df["patient"] == p).to_numpy())
            days = df["cycle_days"].to_numpy()[idx]
            end = rng.uniform(0, days.sum())
            start = np.concatenate([[0], np.cumsum(days)[:-1]])
            last = int(np.searchsorted(start, end, side="right") - 1)
            keep[idx[last + 1 :]] = False
            i = idx[last]
            followed = max(1, int(np.ceil(end - start[last])))
            followed = min(followed, int(days[last]))
            df.loc[i, "followed_days"] = followed
            for k in events[:-1]:  # an event is seen if it came before the cut
                if rng.random() >= followed / days[last]:
                    df.loc[i, k] = 0
            if df.loc[i, active().severity.event] == 0:
                df.loc[i, events[-1]] = 0
    return df[keep].reset_index(drop=True)
