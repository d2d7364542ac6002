"""Virtual patients with characteristics (issue 24, items 1, 2 and 4): age, sex, weight,
serum creatinine (-> CrCl by Cockcroft-Gault -> the renal exposure factor), absolute
lymphocyte count (ALC), largest lymph node and prior lines, given as distributions or as a
CSV of a clinic's patients to resample.

How they enter the engine. The characteristics are correlated (CrCl depends on age and
weight; a clinic's rows are joint), so they are not independent covariates: a population is
reduced to K *profiles* (representative patients, each with a probability): a CSV's rows
(each 1/n; at most :data:`MAX_PROFILES`, an evenly spaced subsample by CrCl beyond), or a
Latin hypercube of K points of the stated distributions. The profile is one categorical
patient covariate of an extended vocabulary (:class:`lenasim.core.vocabulary.PatientCovariate`),
and :class:`PatientDraws` adds each profile's terms to the hazard of every posterior draw.
The discretisation is the one approximation (K = 32 Latin hypercube points by default:
on configs/patients/renal_origin.yaml the posterior means of cycle-1 and cumulative risks
were within 0.003 (absolute) of K = 256, 100 draws x 1000 patients, 2026-12-07).

The terms, all **prior-only** (the published aggregate rows cannot inform them; the fitted
model and its posterior are unchanged; each is drawn once per posterior draw from its prior,
keyed by the seed and the draw's posterior index, so common random numbers hold):

- exposure: the dose terms act on log(mg x F / 10 mg), log F = theta x log F(CrCl)
  (:mod:`lenasim.core.renal`): a patient adds theta x log F x (b_log_dose + first x
  b_first_log_dose) to every hazard that has those terms (the severity included);
- bulky (largest node >= 5 cm) on flare and TLS, log(ALC / 30) on flare and TLS, age on
  flare: :data:`TUMOUR_PRIORS` (no readable source gives odds ratios: wide priors centred
  on the direction the studies report);
- elderly: when ages are given, a profile is elderly when aged 65 or more (the fitted
  ``elderly`` term, not the population's ``elderly_share``).

A population without characteristics is simulated exactly as before (the shipped configs'
bytes do not move); a profile at the reference values (CrCl >= 80, node < 5 cm, ALC 30,
no age) adds 0 to every hazard.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lenasim.core.errors import ConfigError
from lenasim.core.hazard import HazardDraws, linear_predictor, linear_predictor_rows
from lenasim.core.renal import RENAL_THETA_SD, cockcroft_gault, log_exposure_factor
from lenasim.core.vocabulary import PatientCovariate, active, use
from lenasim.simulation import engine
from lenasim.simulation.characteristics import (
    AGE_REFERENCE,
    ALC_REFERENCE,
    BOUNDS,
    BULKY_CM,
    MAX_PROFILES,
    TUMOUR_PRIORS,
    Characteristics,
    Normal,
)

__all__ = [
    "BOUNDS",
    "Characteristics",
    "MAX_PROFILES",
    "PatientDraws",
    "Profiles",
    "TUMOUR_PRIORS",
    "patient_draws",
    "prior_terms",
    "profiles_of",
    "read_cohort",
    "simulate_scenario",
]


@dataclass(frozen=True)
class Profiles:
    """K representative patients: their characteristics (NaN where not given), derived
    terms and probabilities."""

    values: dict[str, np.ndarray]
    probs: np.ndarray

    @property
    def k(self) -> int:
        return self.probs.size

    @property
    def crcl(self) -> np.ndarray:
        return self.values["crcl"]

    def terms(self) -> dict[str, np.ndarray]:
        """The terms' features: log F (0 without CrCl), bulky, log(ALC/30), (age-65)/10
        and elderly (NaN without age), each 0 at the reference."""
        v = self.values
        log_f = np.where(np.isnan(v["crcl"]), 0.0, log_exposure_factor(np.nan_to_num(v["crcl"])))
        return {
            "log_f": log_f,
            "bulky": np.where(np.isnan(v["node_cm"]), 0.0, v["node_cm"] >= BULKY_CM),
            "log_alc": np.where(np.isnan(v["alc"]), 0.0, np.log(v["alc"] / ALC_REFERENCE)),
            "age10": np.where(np.isnan(v["age"]), 0.0, (v["age"] - AGE_REFERENCE) / 10.0),
            "elderly": np.where(np.isnan(v["age"]), np.nan, v["age"] >= AGE_REFERENCE),
        }

    def subset(self, mask: np.ndarray) -> Profiles:
        p = np.where(mask, self.probs, 0.0)
        return Profiles(self.values, p / p.sum())


_COLUMNS = ("age", "sex", "weight_kg", "creatinine_mg_dl", "alc", "node_cm")


def patient(**given: float | str | None) -> Profiles:
    """One patient (``sex`` 'F' or 'M'); missing characteristics at their reference."""
    vals = {k: np.array([np.nan if given.get(k) is None else float(given[k])] * 2)
            for k in BOUNDS}  # fmt: skip
    sex = str(given.get("sex") or "M").upper()
    return _derive(vals, np.array([sex == "F"] * 2), np.array([1.0, 0.0]))


def _derive(vals: dict[str, np.ndarray], female: np.ndarray, probs: np.ndarray) -> Profiles:
    if not np.isnan(vals["creatinine_mg_dl"]).all():
        crcl = cockcroft_gault(vals["age"], vals["weight_kg"], vals["creatinine_mg_dl"], female)
    else:
        crcl = np.full(probs.size, np.nan)
    return Profiles({**vals, "female": female.astype(float), "crcl": crcl}, probs)


def read_cohort(path: Path) -> Profiles:
    """A CSV of patients: every row checked (file, column, row named in each error)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"{path}: cannot be read as a CSV of patients ({err})") from None
    if not rows:
        raise ConfigError(f"{path}: holds no patients (a header and one row per patient)")
    missing = [c for c in _COLUMNS if c not in rows[0]]
    if missing:
        raise ConfigError(
            f"{path}: column {missing[0]} is missing; the columns are {', '.join(_COLUMNS)} "
            "(prior_lines optional)"
        )
    vals = {k: np.full(len(rows), np.nan) for k in BOUNDS}
    female = np.zeros(len(rows), bool)
    for i, row in enumerate(rows, start=2):  # row 1 is the header
        sex = (row.get("sex") or "").strip().upper()
        if sex not in ("F", "M"):
            raise ConfigError(f"{path}: row {i}, column sex: {sex!r} is not F or M")
        female[i - 2] = sex == "F"
        for k, (lo, hi, unit) in BOUNDS.items():
            text = (row.get(k) or "").strip()
            if k == "prior_lines" and not text:
                continue
            try:
                x = float(text)
            except ValueError:
                raise ConfigError(
                    f"{path}: row {i}, column {k}: {text[:20]!r} is not a number"
                ) from None
            if not lo <= x <= hi:
                raise ConfigError(
                    f"{path}: row {i}, column {k}: {x:g} {unit} is outside the plausible "
                    f"range {lo:g} to {hi:g} {unit}"
                )
            vals[k][i - 2] = x
    n = len(rows)
    out = _derive(vals, female, np.full(n, 1.0 / n))
    if n > MAX_PROFILES:  # an evenly spaced subsample by CrCl keeps the spread of kidney function
        pick = np.argsort(out.crcl, kind="stable")[np.linspace(0, n - 1, MAX_PROFILES).astype(int)]
        out = Profiles({k: v[pick] for k, v in out.values.items()},
                       np.full(MAX_PROFILES, 1.0 / MAX_PROFILES))  # fmt: skip
    return out


def profiles_of(ch: Characteristics, seed: int, folder: Path | None = None) -> Profiles:
    """The profiles of a population's characteristics: the CSV's rows, or a Latin
    hypercube of ``ch.profiles`` points keyed by the seed (the same in every scenario)."""
    if ch.csv is not None:
        path = ch.csv if ch.csv.is_absolute() or folder is None else folder / ch.csv
        return read_cohort(path)
    from scipy.special import ndtri  # the standard normal's quantile: scipy.stats.norm.ppf's
    # own function, bit for bit, without importing all of scipy.stats (~0.4-0.6 s)

    k = ch.profiles
    rng = np.random.default_rng([int(seed), 0xC0F1])
    vals = {name: np.full(k, np.nan) for name in BOUNDS}
    for name, (lo, hi, _) in BOUNDS.items():
        d = getattr(ch, name)
        if d is None:
            continue
        u = (rng.permutation(k) + 0.5) / k
        if isinstance(d, Normal):
            x = d.mean + d.sd * ndtri(u)
        else:
            x = d.median * np.exp(np.log(d.gsd) * ndtri(u))
        vals[name] = np.clip(x, lo, hi)
    female = ((rng.permutation(k) + 0.5) / k) < ch.female_share
    return _derive(vals, female, np.full(k, 1.0 / k))


def prior_terms(seed: int, posterior_index: np.ndarray) -> dict[str, np.ndarray]:
    """Each prior-only term's value per draw: ``theta`` (log-normal, median 1, SD
    :data:`~lenasim.core.renal.RENAL_THETA_SD`) and the :data:`TUMOUR_PRIORS`; keyed by the
    seed and the posterior index (common to every scenario of the seed)."""
    names = ["theta", *TUMOUR_PRIORS]
    out = {n: np.empty(len(posterior_index)) for n in names}
    for i, idx in enumerate(np.asarray(posterior_index, np.int64)):
        z = np.random.default_rng([int(seed), int(idx), 0x24A7]).standard_normal(len(names))
        out["theta"][i] = np.exp(RENAL_THETA_SD * z[0])
        for j, (n, (_, mean, sd)) in enumerate(TUMOUR_PRIORS.items(), start=1):
            out[n][i] = mean + sd * z[j]
    return out


@dataclass(frozen=True)
class PatientDraws(HazardDraws):
    """Hazard draws with each profile's prior-only terms: ``eta`` adds ``offset[k][s,
    profile]`` (+ ``offset_first[k][s, profile]`` in a first cycle) to the fitted
    predictor over ``base_terms``."""

    base_terms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    offset: dict[str, np.ndarray] = field(default_factory=dict)
    offset_first: dict[str, np.ndarray] = field(default_factory=dict)

    def take(self, index: np.ndarray | slice) -> PatientDraws:
        d = HazardDraws.take(self, index)
        return PatientDraws(
            d.terms, d.intercept, d.coefs, d.tau, d.sigma, d.trial_df, d.link, self.base_terms,
            {k: v[index] for k, v in self.offset.items()},
            {k: v[index] for k, v in self.offset_first.items()},
        )  # fmt: skip

    def eta(self, event: str, features: Mapping[str, np.ndarray]) -> np.ndarray:
        terms, a, coefs = self.base_terms[event], self.intercept[event], self.coefs[event]
        j = np.asarray(features["profile"]).astype(np.int64)
        if j.ndim == 1 and all(np.ndim(features[t]) == 1 for t in terms):  # a state table
            eta = linear_predictor_rows(a, coefs, features, terms)  # once per distinct row
        else:
            shape = (-1,) + (1,) * max((np.ndim(features[t]) for t in terms), default=0)
            coefs = {t: c.reshape(shape) for t, c in coefs.items()}
            eta = linear_predictor(a.reshape(shape), coefs, features, terms)
        off = self.offset[event][:, j]
        if event in self.offset_first:
            off = off + self.offset_first[event][:, j] * np.asarray(features["first"])
        return eta + off


def patient_draws(
    draws: HazardDraws, prof: Profiles, seed: int, posterior_index: np.ndarray
) -> tuple[PatientDraws, dict[str, np.ndarray]]:
    """The draws with the profiles' terms (and the prior-only terms' draws, for reports)."""
    pri = prior_terms(seed, posterior_index)
    t = prof.terms()
    shift = pri["theta"][:, None] * t["log_f"][None, :]  # (S, K): theta x log F
    terms, offset, offset_first = {}, {}, {}
    for k, base in draws.terms.items():
        off = np.zeros((draws.n_draws, prof.k))
        if "log_dose" in base:
            off += draws.coefs[k]["log_dose"][:, None] * shift
        if "elderly" in base and not np.isnan(t["elderly"]).any():
            off += draws.coefs[k]["elderly"][:, None] * t["elderly"][None, :]
        for name, (hazard, _, _) in TUMOUR_PRIORS.items():
            if hazard == k:
                feature = t[
                    {"bulky": "bulky", "alc": "log_alc", "age": "age10"}[name.split("_")[0]]
                ]
                off += pri[name][:, None] * feature[None, :]
        offset[k] = off
        extra = ("profile",)
        if "first_log_dose" in base:
            offset_first[k] = draws.coefs[k]["first_log_dose"][:, None] * shift
            extra += ("first",) if "first" not in base else ()
        terms[k] = (*base, *extra)
    out = PatientDraws(terms, draws.intercept, draws.coefs, draws.tau, draws.sigma,
                       draws.trial_df, draws.link, dict(draws.terms), offset,
                       offset_first)  # fmt: skip
    return out, pri


def profile_covariate(prof: Profiles) -> PatientCovariate:
    """The categorical covariate whose level is a patient's profile."""
    return PatientCovariate(
        "profile", "patient profile", "categorical",
        values=tuple(float(i) for i in range(prof.k)), probs=tuple(prof.probs.tolist()),
    )  # fmt: skip


def profile_chunk_size(n_patients: int, k: int) -> int:
    """Draws per chunk of a cohort of ``k`` profiles: the engine's default, and at most
    4096 / k, since the state tables of a chunk grow with the profiles."""
    return max(1, min(engine.default_chunk_size(n_patients), 4096 // k))


def simulate_profiles(schedule, population, rules, draws: HazardDraws, prof: Profiles, *,
                      seed: int, posterior_index: np.ndarray | None = None, **kw: Any):  # fmt: skip
    """:func:`lenasim.simulation.engine.simulate` of a cohort drawn from the profiles, with
    their prior-only terms (module docstring). ``kw`` as ``simulate``'s."""

    keys = np.arange(draws.n_draws) if posterior_index is None else np.asarray(posterior_index)
    pdraws, _ = patient_draws(draws, prof, seed, keys)
    if not np.isnan(prof.terms()["elderly"]).any():
        population = population.model_copy(update={"elderly_share": 0.0})
    vocab = active().extended(patient_covariates=[profile_covariate(prof)])
    if kw.get("chunk_size") is None:  # the state tables grow with the profiles
        kw["chunk_size"] = profile_chunk_size(kw["n_patients"], prof.k)
    with use(vocab):
        ds = engine.simulate(schedule, population, rules, pdraws, seed=seed, posterior_index=keys,
                      covariates={"profile": prof.probs}, **kw)  # fmt: skip
    ds.attrs["prior_only_terms"] = "renal exposure factor, bulky, ALC, age (issue 24)"
    return ds


# The per-cycle outputs of "the patients starting the cycle" (mixed with weights w x
# share_on) and those of all patients (mixed with weights w).
_OF_STARTERS = ("per_cycle", "per_cycle_sampled", "dose_mean_mg", "dose_intensity",
                "share_at_target", "share_held", "share_reduced")  # fmt: skip
_OF_ALL = ("cumulative", "share_on", "share_stopped", "planned_intensity")


def mix(dss: list, weights: list[float]):
    """The run of a population made of groups simulated apart (each its own cohort of the
    same draws): every output of the mixture, exactly weighted (module docstring)."""
    if len(dss) == 1:
        return dss[0]
    out = dss[0].copy(deep=True)
    w = np.asarray(weights, float) / np.sum(weights)
    for v in _OF_ALL:
        out[v] = sum(wb * ds[v] for wb, ds in zip(w, dss))
    den = sum(wb * ds["share_on"] for wb, ds in zip(w, dss))
    for v in _OF_STARTERS:
        num = sum(wb * ds["share_on"] * ds[v].fillna(0.0) for wb, ds in zip(w, dss))
        out[v] = (num / den).where(den > 0).transpose(*dss[0][v].dims)
    for v in dss[0].data_vars:
        out[v].attrs = dict(dss[0][v].attrs)
    return out


def renal_groups(scenario, prof: Profiles) -> list[tuple[np.ndarray, Any]]:
    """(mask of the profiles, their regimen) per CrCl group of ``renal_dosing``."""
    bands = sorted(scenario.renal_dosing, key=lambda b: b.crcl_below)
    if not bands:
        return [(np.ones(prof.k, bool), scenario.regimen)]
    crcl = np.nan_to_num(prof.crcl, nan=np.inf)
    taken = np.zeros(prof.k, bool)
    groups = []
    for b in bands:
        mask = (crcl < b.crcl_below) & ~taken & (prof.probs > 0)
        taken |= mask
        groups.append((mask, b.regimen))
    groups.append((~taken & (prof.probs > 0), scenario.regimen))
    return [(m, r) for m, r in groups if m.any()]


def simulate_population(scenario, draws: HazardDraws, prof: Profiles | None = None, **kw: Any):
    """A scenario whose population has characteristics: its profiles, each CrCl group on
    its own regimen (``renal_dosing``), mixed (:func:`mix`). ``kw``: ``simulate``'s
    ``n_patients``, ``posterior_index``, ``chunk_size``, ``progress``, ``threads``."""
    if prof is None:
        prof = profiles_of(scenario.population.characteristics, scenario.seed)
    groups = renal_groups(scenario, prof)
    progress = kw.pop("progress", None)
    dss, weights = [], []
    for i, (mask, reg) in enumerate(groups):
        dss.append(simulate_profiles(
            reg.expand(), scenario.population, scenario.rules, draws, prof.subset(mask),
            seed=scenario.seed, population_effect=scenario.population_effect,
            name=scenario.name, progress=progress if i == len(groups) - 1 else None, **kw,
        ))  # fmt: skip
        weights.append(float(prof.probs[mask].sum()))
    return mix(dss, weights)


SUBGROUPS = {
    "crcl_band": (("<30", 0, 30), ("30-60", 30, 60), (">=60", 60, np.inf)),
    "age_band": (("<65", 0, 65), ("65-74", 65, 75), (">=75", 75, np.inf)),
    "bulky": (("no", 0, BULKY_CM), ("yes", BULKY_CM, np.inf)),
}
_SUBGROUP_OF = {"crcl_band": "crcl", "age_band": "age", "bulky": "node_cm"}


def subgroup_risks(scenario, draws: HazardDraws, posterior_index: np.ndarray, n_patients: int):
    """Risks by subgroup (CrCl band, age band, bulky or not), every subgroup a cohort of
    ``n_patients`` on the same draws. Two pandas DataFrames: per subgroup with patients, its
    share, each event's cycle-1 and last-cycle cumulative risk (mean, 90% interval:
    subgroups.csv); and the same risks draw by draw (``draw``, ``posterior_index``,
    ``cycle1``, ``cumulative``: subgroup_draws.csv, what `compare` pairs by subgroup)."""
    import pandas as pd

    prof = profiles_of(scenario.population.characteristics, scenario.seed)
    rows, per_draw = [], []
    for group, levels in SUBGROUPS.items():
        x = prof.values[_SUBGROUP_OF[group]]
        for label, lo, hi in levels:
            mask = (x >= lo) & (x < hi) & (prof.probs > 0)
            if not mask.any():
                continue
            ds = simulate_population(scenario, draws, prof.subset(mask), n_patients=n_patients,
                                     posterior_index=posterior_index)  # fmt: skip
            for ev in ds["event"].values:
                c1 = ds["per_cycle"].sel(event=ev, cycle=1).values
                cum = ds["cumulative"].sel(event=ev).isel(cycle=-1).values
                rows.append({"subgroup": group, "level": label,
                             "share": float(prof.probs[mask].sum()), "event": str(ev),
                             "cycle1_mean": np.nanmean(c1), "cycle1_q05": np.nanquantile(c1, 0.05),
                             "cycle1_q95": np.nanquantile(c1, 0.95), "cumulative_mean": cum.mean(),
                             "cumulative_q05": np.quantile(cum, 0.05),
                             "cumulative_q95": np.quantile(cum, 0.95),
                             "prior_dominated": True})  # fmt: skip
                per_draw.append(pd.DataFrame({
                    "subgroup": group, "level": label, "event": str(ev),
                    "draw": np.arange(c1.size), "posterior_index": np.asarray(posterior_index),
                    "cycle1": c1, "cumulative": cum}))  # fmt: skip
    empty = pd.DataFrame(columns=["subgroup", "level", "event", "draw", "posterior_index",
                                  "cycle1", "cumulative"])  # fmt: skip
    return pd.DataFrame(rows), (pd.concat(per_draw, ignore_index=True) if per_draw else empty)


def prior_only_rows(ch: Characteristics | None) -> list[dict]:
    """The caveats' prior-dominated rows of the patient terms a population uses (ratio 1:
    prior-only, no row of the evidence informs them)."""
    if ch is None:
        return []
    given = {k for k in BOUNDS if getattr(ch, k) is not None} | (set(BOUNDS) if ch.csv else set())
    rows = []
    if "creatinine_mg_dl" in given:
        rows.append(("renal", "theta", "renal exposure factor (Chen 2007 AUC ratios x theta)"))
    words = {"bulky": "node >= 5 cm", "alc": "log ALC / 30", "age": "age per 10 years"}
    need = {"bulky": "node_cm", "alc": "alc", "age": "age"}
    for name, (hazard, _, _) in TUMOUR_PRIORS.items():
        what = name.split("_")[0]
        if need[what] in given:
            rows.append((hazard, what, f"{hazard}: {words[what]}"))
    return [{"block": b, "param": p, "label": f"Patient term (prior only), {w}", "ratio": 1.0}
            for b, p, w in rows]  # fmt: skip


def simulate_scenario(scenario, draws: HazardDraws, **kw: Any):
    """A validated scenario simulated: a population with characteristics through its
    representative patients (:func:`simulate_population`), any other by
    :func:`lenasim.simulation.engine.simulate_scenario`. ``kw``: ``n_patients``,
    ``posterior_index``, ``chunk_size``, ``progress``, ``threads``."""
    if scenario.population.characteristics is None:
        return engine.simulate_scenario(scenario, draws, **kw)
    if kw.get("n_patients") is None:
        kw["n_patients"] = scenario.population.patients
    return simulate_population(scenario, draws, **kw)
