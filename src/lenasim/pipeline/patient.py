"""The patient in front of you (issue 24, item 5): one patient's per-cycle and cumulative
risks under a config's schedule and each of its ``compare_starts``, with 90% intervals over
the posterior draws and what drives them (the renal exposure factor, the tumour terms).

The patient is one profile (:func:`lenasim.simulation.population.patient`); the cohort of
``patients`` virtual copies of them differs only in frailty, so its Rao-Blackwellised risk
is the patient's risk averaged over the unknown frailty (what a clinician can know). The
exposure factor and the tumour terms are prior-only (the output says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lenasim.core.errors import ConfigError
from lenasim.core.regimen import Regimen
from lenasim.core.renal import crcl_band
from lenasim.pipeline.posterior import posterior_for
from lenasim.simulation.population import (
    BOUNDS,
    TUMOUR_PRIORS,
    patient,
    patient_draws,
    renal_groups,
    simulate_profiles,
)
from lenasim.simulation.scenario import load_scenario
from lenasim.simulation.streams import select_draws

__all__ = ["CHARACTERISTICS", "patient_risks", "scaled_regimen"]

CHARACTERISTICS = ("age", "sex", "weight_kg", "creatinine_mg_dl", "alc", "node_cm", "prior_lines")
_MG_KEYS = ("start_mg", "target_mg", "max_mg")


def scaled_regimen(reg: Regimen, start_mg: float, source: str) -> Regimen:
    """The regimen with every dose scaled by start_mg / its start (ORIGIN's half-dose arm
    halves each level: 2.5 -> 5 -> 7.5 mg for 5 -> 10 -> 15 mg)."""
    f = start_mg / reg.start_mg
    doc = reg.model_dump(mode="python", exclude_none=True)
    for k in _MG_KEYS:
        if k in doc:
            doc[k] = [x * f for x in doc[k]] if isinstance(doc[k], list) else doc[k] * f
    if "reduction_levels_mg" in doc:  # kept where below the new start (capsule sizes)
        doc["reduction_levels_mg"] = [x for x in doc["reduction_levels_mg"] if x < start_mg]
        if not doc["reduction_levels_mg"]:
            del doc["reduction_levels_mg"]
    esc = doc.get("escalation")
    if esc:
        for k in ("step_mg", "levels_mg"):
            if k in esc:
                esc[k] = [x * f for x in esc[k]] if isinstance(esc[k], list) else esc[k] * f
    try:
        return Regimen.model_validate(doc, strict=False)
    except ValueError as err:
        first = [x.split(" [type=")[0] for x in str(err).splitlines()[2:3]] or [str(err)]
        raise ConfigError(
            f"{source}: compare_starts: {start_mg:g} mg scales the regimen's doses by "
            f"{f:g}, which the regimen refuses ({first[0].strip()}); choose another start"
        ) from None


def _check(given: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in given.items():
        if v is None:
            continue
        if k == "sex":
            if str(v).upper() not in ("F", "M"):
                raise ConfigError(f"patient: sex: {v!r} is not F or M")
            out[k] = str(v).upper()
            continue
        if k not in BOUNDS:
            raise ConfigError(
                f"patient: {k!r} is not a characteristic; use {', '.join(CHARACTERISTICS)}"
            )
        lo, hi, unit = BOUNDS[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ConfigError(
                f"patient: {k}: {v!r} is outside the plausible range {lo:g} to {hi:g} {unit}"
            )
        out[k] = float(v)
    if "creatinine_mg_dl" in out and ("age" not in out or "weight_kg" not in out):
        raise ConfigError(
            "patient: creatinine needs age and weight (CrCl by Cockcroft-Gault): give both"
        )
    return out


def _interval(x: np.ndarray) -> dict[str, float]:
    q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    return {"mean": float(x.mean()), "q05": float(q05), "q50": float(q50), "q95": float(q95)}


def _renal_band(sc, prof) -> tuple[Regimen, str] | None:
    """The regimen that ``renal_dosing`` gives this patient's CrCl, with where it comes from
    (``renal_dosing: CrCl < X``); None when the patient takes ``regimen``."""
    for mask, reg in renal_groups(sc, prof):
        if mask[0] and reg is not sc.regimen:
            below = min(b.crcl_below for b in sc.renal_dosing if b.regimen is reg)
            return reg, f"renal_dosing: CrCl < {below:g} mL/min"
    return None


def patient_risks(
    config: str | Path, given: dict[str, Any], *, draws: int = 200, patients: int = 2000
) -> dict[str, Any]:
    """The patient's risks under the config's schedule and its compare_starts (a mapping
    ready for JSON: ``patient``, ``drivers``, ``schedules``; module docstring)."""
    sc = load_scenario(config)
    chars = _check(given)
    post = posterior_for(config, sc.posterior.spec, min(draws, sc.posterior.draws), quiet=True)
    idx = select_draws(post.draws.n_draws, min(draws, sc.posterior.draws), sc.seed)
    d = post.draws.take(idx)
    prof = patient(**chars)
    _, pri = patient_draws(d, prof, sc.seed, idx)
    t = {k: float(v[0]) for k, v in prof.terms().items()}
    crcl = float(prof.crcl[0])
    drivers: dict[str, Any] = {
        "crcl_ml_min": None if np.isnan(crcl) else round(crcl, 1),
        "crcl_band": None if np.isnan(crcl) else str(crcl_band(crcl)),
        "exposure_factor": _interval(np.exp(pri["theta"] * t["log_f"])),
        "bulky": bool(t["bulky"]),
        "prior_only": "the exposure factor, bulky, ALC and age terms are priors (issue 24): "
        "no published row informs them",
    }
    for name in TUMOUR_PRIORS:
        feature = {"bulky": "bulky", "alc": "log_alc", "age": "age10"}[name.split("_")[0]]
        drivers[f"odds_ratio_{name}"] = _interval(np.exp(pri[name] * t[feature]))
    starts = [sc.regimen.start_mg, *[s for s in sc.compare_starts if s != sc.regimen.start_mg]]
    plans = [(sc.regimen if s == sc.regimen.start_mg else scaled_regimen(sc.regimen, s, str(config)),
              "regimen" if s == sc.regimen.start_mg else "compare_starts") for s in starts]  # fmt: skip
    band = _renal_band(sc, prof)
    if band is not None:  # the patient's own CrCl band's regimen comes first
        plans.insert(0, band)
    schedules = []
    for reg, source in plans:
        s = reg.start_mg
        ds = simulate_profiles(reg.expand(), sc.population, sc.rules, d, prof, seed=sc.seed,
                               posterior_index=idx, n_patients=patients,
                               population_effect=sc.population_effect)  # fmt: skip
        rows = []
        for ev in ds["event"].values:
            for c in ds["cycle"].values:
                sel = {"event": ev, "cycle": c}
                pc = ds["per_cycle"].sel(sel).values
                rows.append({"event": str(ev), "cycle": int(c),
                             "per_cycle": _interval(pc[np.isfinite(pc)] if np.isfinite(pc).any()
                                                    else np.zeros(1)),
                             "cumulative": _interval(ds["cumulative"].sel(sel).values)})  # fmt: skip
        schedules.append({"start_mg": s, "levels_mg": reg.expand().levels_mg.tolist(),
                          "source": source, "regimen": reg.describe(), "risks": rows})  # fmt: skip
    return {"config": str(config), "scenario": sc.name, "patient": chars, "draws": int(idx.size),
            "patients": patients, "drivers": drivers, "schedules": schedules}  # fmt: skip
