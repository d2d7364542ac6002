"""The in-trial update checked against a full NUTS refit (issue 25, item 3).

For a design config, K simulated trials (truth: a new trial drawn from the posterior, as
``new_trial``) are run with the design's own in-trial update (:mod:`lenasim.design.update`:
importance reweighting of the posterior's draws). At chosen decisions of each trial
(the decisions after the first cohorts, and the trial's last decision with its
selection) the trial's patient-cycles so far become patient-level data of a new trial
(:mod:`lenasim.design.trial_data`), fitted by NUTS beside the evidence rows under the
posterior's own spec (:class:`lenasim.model.fit.Fitter`). Each refit draw, with the
trial's own effect u folded in, is simulated on every candidate by the engine (the
config's virtual patients, as the prior's draws are), which gives its limit risks. Then
per decision point:

- the decision of the overdose-control rule on each posterior (the rule, unchanged, run on
  the refit's draws with equal weights), and at the last decision the selection;
- per candidate and limit the posterior mean of the risk and P(risk > limit), with their
  Monte Carlo SEs: for the reweighting the self-normalised importance sampling SE,
  sqrt(sum_s w_s^2 (x_s - m)^2) (w normalised; the prior draws taken as independent),
  for NUTS ArviZ's ``mcse(method="mean")`` of each quantity (sd / sqrt(its mean ESS));
- the reweighting's ESS.

Four reweighted posteriors are compared with the refit: ``design``, the config's update
as the trial ran it (robustified when ``update.robust_weight`` > 0, with the low-ESS
fallback); ``plain``, the same draws without the robust component and without the
fallback, whose prior is the refit's (so that only the working likelihood and Monte
Carlo error separate them); ``independent``, plain without the patient frailty (every
patient-cycle independent given the draw: the design's update until 2026-12-07, 14:00
UTC); and ``exact``, the plain draws reweighted by the full patient likelihood instead
of the working one (:func:`exact_model`: the refit's own likelihood, so that only Monte
Carlo error separates it from the refit, when its ESS allows). The working likelihood
(:mod:`lenasim.design.update`) sees every event of the hazards the limits name, flares of
any grade with their grade, and (``update.frailty``, the default) integrates each
patient's frailty over his cycles; it differs from the full one in taking each cycle's
conditional risk from the engine's average patient (not the patient's own dose path)
and partial follow-up as a share of exposure. (Until 2026-12-07 it saw only the limits'
own events, grade >= 3 flare without the flares below grade 3; this check found that:
benchmarks/README.md.) A disagreement is put down to, in this order: ``low_ess`` (the
reweighting's ESS below ``update.min_ess``: for ``design`` the fallback acts; for the
others the reweighting is not to be trusted), ``threshold`` (every P(risk > limit) whose
side of ``max_probability`` differs lies within 2 MCSE of it in either posterior: a
verdict within Monte Carlo noise), or ``likelihood`` (neither: the working likelihood
against the full one).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.hazard import EVENTS, HazardDraws
from lenasim.design.config import DesignConfig
from lenasim.design.prior import engine_trial_effect, prior_model
from lenasim.design.rules import OverdoseControl
from lenasim.design.simulate import make_rule, trial_design
from lenasim.design.trial import run_trial
from lenasim.design.trial_data import DecisionPoint, Recorder, Replay, decision_points, trial_csv
from lenasim.design.truth import (
    arrivals_rng,
    fold_trial_effect,
    limit_risk,
    new_trial_truths,
    schedule_outcomes,
)
from lenasim.design.update import DrawModel
from lenasim.model.fit import Fitter, load_data
from lenasim.model.posterior import draws_from_dataset
from lenasim.model.spec import load_spec
from lenasim.simulation.engine import simulate
from lenasim.simulation.streams import select_draws

__all__ = ["NutsSettings", "check", "clopper_pearson", "points_to_check", "summarise"]

TRIAL = "DESIGN"  # the simulated trial's name in the refit (a new trial)


@dataclass(frozen=True)
class NutsSettings:
    chains: int = 2
    draws: int = 500
    tune: int = 500
    seed: int = 1


def points_to_check(cfg: DesignConfig, draws: HazardDraws, n_trials: int,
                    first: tuple[int, ...] = (1, 2), threads: int | None = None,
                    last: bool = True):  # fmt: skip
    """The design's prior model, the trials' outcomes and the decision points to check:
    decisions ``first`` (1-based) of each trial and (``last``) its last one."""
    schedules = [c.regimen.expand() for c in cfg.candidates]
    idx = select_draws(draws.n_draws, min(cfg.posterior.draws, draws.n_draws), cfg.seed)
    model = prior_model(schedules, cfg.population, cfg.rules, draws.take(idx), idx, cfg.limits,
                        cfg.seed, cfg.update.robust_weight, cfg.update.robust_sd,
                        threads, frailty=cfg.update.frailty)  # fmt: skip
    truths = new_trial_truths(draws, n_trials, cfg.seed)
    out = schedule_outcomes(schedules, cfg.population, cfg.rules, truths,
                            cfg.trial.max_patients, cfg.seed, threads)  # fmt: skip
    design = trial_design(cfg)
    points = []
    for i in range(n_trials):
        rec = Recorder(make_rule(cfg, model))
        r = run_trial(out.trial(i), design, rec, arrivals_rng(cfg.seed, i))
        pts = decision_points(i, r, rec.calls, out.trial(i), design)
        points += [p for p in pts if p.number in first or (last and p.last)]
    return model, out, points, idx


def plain_model(model: DrawModel, n_posterior: int) -> DrawModel:
    """The prior model's posterior component alone (no robust component)."""
    s = slice(0, n_posterior)
    sigma = None if model.sigma is None else model.sigma[s]
    return DrawModel(model.p[s], model.events, model.limit_risk[s], model.limit_max,
                     model.max_probability, np.full(n_posterior, 1.0 / n_posterior),
                     model.graded, sigma)  # fmt: skip


def _is_summary(model: DrawModel, data) -> dict:
    """The reweighted posterior's means and their Monte Carlo SEs: the delta-method SE of
    a self-normalised importance sampling estimate, sqrt(sum_s w_s^2 (x_s - m)^2) with
    normalised weights (Owen 2013, Monte Carlo theory, methods and examples, ch. 9,
    eq. 9.8; Hesterberg 1995, Technometrics 37:185). It takes the prior draws as
    independent: the 1,000 evenly spaced posterior draws of configs/design_untreated.yaml
    have an ESS of 900-960 in every limit risk (arviz ``ess(method="mean")`` in chain
    order, 2026-12-07), so that costs ~3%. The virtual patients' Monte Carlo error in
    each draw's risk x_s (1,000 patients a draw, their own random numbers per draw) is
    independent between draws, so it is in the spread (x_s - m)^2 here, as in the
    refit's draws' spread: counted on both sides, once. The formula is asymptotic: at a
    small ESS it is itself noisy and the estimate's O(1/n) bias is not in it (Owen,
    section 9.3), so comparisons are summarised apart below ``min_ess``."""
    w, ess = model.weights(data)
    over = model._over
    out = {"ess": ess, "acceptable": model.acceptable(w)}
    for key, x in (("mean", model.limit_risk), ("pover", over)):
        m = np.einsum("s,sjl->jl", w, x)
        out[key] = m
        out[f"se_{key}"] = np.sqrt(np.einsum("s,sjl->jl", w**2, (x - m) ** 2))
    return out


def _nuts_summary(risk: np.ndarray, limit_max: np.ndarray, max_probability: float) -> dict:
    """risk (chains, draws, J, L)."""
    import arviz as az

    over = (risk > limit_max).astype(float)
    out = {}
    for key, x in (("mean", risk), ("pover", over)):
        m = x.mean(axis=(0, 1))
        se = np.zeros_like(m)
        for j, lim in np.ndindex(m.shape):
            v = x[:, :, j, lim]
            # The MCSE of a posterior mean: sd / sqrt(ESS of the mean), the ESS of the
            # quantity itself, not rank-normalised (Vehtari, Gelman, Simpson, Carpenter
            # and Buerkner 2021, Bayesian Analysis 16:667, section 3.2; arviz
            # ``mcse(method="mean")``). Until 2026-12-07 the bulk ESS stood in for it.
            se[j, lim] = np.ravel(az.mcse(v, method="mean"))[0] if v.std() > 0 else 0.0
        out[key], out[f"se_{key}"] = m, se
    out["acceptable"] = (out["pover"] <= max_probability).all(axis=1)
    return out


def refit(cfg: DesignConfig, spec_path, point: DecisionPoint, out, replay: Replay,
          settings: NutsSettings, threads: int | None = None) -> dict:  # fmt: skip
    """NUTS on the evidence rows and the decision point's patient-cycles (a new trial),
    and the refit draws' limit risks on every candidate: (chains, draws, J, L)."""
    from lenasim.model.patient_csv import read_patient_cycles

    df, feats = trial_csv(point, out, replay, TRIAL)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trial.csv"
        df.to_csv(path, index=False, lineterminator="\n")
        pdata = read_patient_cycles(path)
    # The engine's own features (the CSV's differ only in `rise` after an interrupted
    # escalation: lenasim.design.trial_data); counted, then replaced.
    fixed = {k: np.abs(pdata.features[k] - feats[k].to_numpy()) > 1e-9
             for k in feats.columns if k in pdata.features}  # fmt: skip
    n_fixed = {k: int(v.sum()) for k, v in fixed.items() if v.any()}
    features = {k: (feats[k].to_numpy() if k in feats.columns else v)
                for k, v in pdata.features.items()}  # fmt: skip
    pdata = replace(pdata, features=features)
    spec = load_spec(spec_path)
    t0 = time.perf_counter()
    merged = pdata.merged() if hasattr(pdata, "merged") else pdata  # identical records once
    fitter = Fitter(spec, load_data(spec, patients=merged))
    sampled = fitter.sample(draws=settings.draws, tune=settings.tune, chains=settings.chains,
                            seed=settings.seed)  # fmt: skip
    seconds = time.perf_counter() - t0
    post = sampled.idata.posterior
    hd = draws_from_dataset(post)
    u = post["u"].sel(trial=TRIAL).stack(sample=("chain", "draw"))
    effect = np.stack([u.sel(event=k).values for k in EVENTS], axis=1)
    folded = fold_trial_effect(hd, effect)
    keys = np.arange(folded.n_draws, dtype=np.int64)
    risks = []
    for c in cfg.candidates:
        ds = simulate(c.regimen.expand(), cfg.population, cfg.rules, folded,
                      n_patients=cfg.population.patients, seed=cfg.seed,
                      population_effect="typical", posterior_index=keys, threads=threads,
                      light=True)  # fmt: skip
        risks.append(limit_risk(ds, cfg.limits))
    risk = np.stack(risks, axis=1).reshape(settings.chains, settings.draws, len(risks), -1)
    diag = sampled.diagnostics
    return {"risk": risk, "seconds": seconds, "nuts": sampled.seconds, "rows": len(df), "rise_fixed": n_fixed,
            "diagnostics": diag, "pdata": pdata}  # fmt: skip


class _Fixed(DrawModel):
    """A DrawModel whose weights are given (they do not depend on the data)."""

    def weights(self, data):
        w = self.prior
        return w, float(1.0 / np.dot(w, w))


def exact_model(plain: DrawModel, draws: HazardDraws, effect: np.ndarray, pdata, spec):
    """The plain model's draws reweighted by the full patient likelihood
    (:func:`lenasim.model.patient_data.patient_loglik_numpy`: each patient's frailty
    integrated over his cycles, every event and the flare's grade) instead of the working
    one; each draw's trial effect is the one the engine gave it (``effect``, (S, 3))."""
    from lenasim.model.patient_data import patient_loglik_numpy

    data = load_data(spec, patients=pdata, evidence=False)
    terms = spec.terms_map()
    events = [k for k in terms if k in EVENTS]
    sev = next(k for k in terms if k not in EVENTS)
    logw = np.empty(draws.n_draws)
    for s in range(draws.n_draws):
        params = {
            "a": np.array([draws.intercept[k][s] for k in events]),
            "beta": {k: np.array([draws.coefs[k][t][s] for t in terms[k]]) for k in events},
            "sigma": np.array([draws.sigma[k][s] for k in events]),
            "u": effect[s][None, :],
            "sev_a": float(draws.intercept[sev][s]),
            "sev_b": np.array([draws.coefs[sev][t][s] for t in terms[sev]]),
        }
        logw[s] = patient_loglik_numpy(params, pdata, terms, [0], data.z, data.w, data.link)
    w = np.exp(logw - logw.max()) * plain.prior
    return _Fixed(plain.p, plain.events, plain.limit_risk, plain.limit_max,
                  plain.max_probability, w / w.sum())  # fmt: skip


def _decide(cfg: DesignConfig, model: DrawModel, risk_flat: np.ndarray, point: DecisionPoint):
    """The overdose-control rule on the refit's draws (equal weights: each draw's p is the
    same constant, so the data do not reweight them)."""
    s = risk_flat.shape[0]
    m = DrawModel(np.full((s, *model.p.shape[1:3], 1), 0.5), model.events, risk_flat,
                  model.limit_max, model.max_probability, np.full(s, 1.0 / s))  # fmt: skip
    rule = OverdoseControl(m, 0.0, cfg.below)
    return rule.decide(point.data, point.current, point.highest), rule.select(
        point.data, point.current, point.highest
    )


def _label(dec, selected: int | None) -> str:
    base = f"stop:{dec.stop}" if dec.stop else f"next:{dec.next}"
    return base if selected is None else f"{base}|select:{selected}"


def check(cfg: DesignConfig, draws: HazardDraws, spec_path, n_trials: int,
          settings: NutsSettings = NutsSettings(), first: tuple[int, ...] = (1, 2),
          threads: int | None = None, log=None, last: bool = True,
          ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Run the check (module docstring). Returns (points, cells): one row per decision
    point, and one per decision point, candidate and limit."""
    model, out, points, idx = points_to_check(cfg, draws, n_trials, first, threads, last)
    spec = load_spec(spec_path)
    sub = draws.take(idx)
    effect = engine_trial_effect(sub, idx, cfg.seed)
    n_post = min(cfg.posterior.draws, draws.n_draws)
    plain = plain_model(model, n_post)
    design_rule = make_rule(cfg, model)
    plain_rule = OverdoseControl(plain, 0.0, cfg.below)
    indep = replace(plain, sigma=None)
    schedules = [c.regimen.expand() for c in cfg.candidates]
    replay = Replay(schedules, cfg.population, cfg.rules)
    lnames = [f"{ev}" for ev, _ in cfg.limits.items()]
    thr = cfg.limits.max_probability
    prow, crow = [], []
    for k, p in enumerate(points):
        o = out.trial(p.trial)
        r = refit(cfg, spec_path, p, o, replay, settings, threads)
        flat = r["risk"].reshape(-1, *r["risk"].shape[2:])
        nuts = _nuts_summary(r["risk"], model.limit_max, thr)
        nd, nsel = _decide(cfg, model, flat, p)
        sel = p.last
        row = {"trial": p.trial, "decision": p.number, "last": p.last,
               "patients": int(p.data.n_treated.sum()), "cells": r["rows"],
               "nuts": _label(nd, nsel if sel else None),
               "nuts_seconds": round(r["seconds"], 1),
               "nuts_divergences": r["diagnostics"].get("divergences"),
               "rise_fixed": sum(r["rise_fixed"].values())}  # fmt: skip
        exact = exact_model(plain, sub, effect, r["pdata"], spec)
        for name, m, rule, dec in (
            ("design", model, design_rule, p.decision),
            ("plain", plain, plain_rule, None),
            ("independent", indep, OverdoseControl(indep, 0.0, cfg.below), None),
            ("exact", exact, OverdoseControl(exact, 0.0, cfg.below), None),
        ):
            s = _is_summary(m, p.data)
            if dec is None:
                dec = rule.decide(p.data, p.current, p.highest)
            label = _label(dec, rule.select(p.data, p.current, p.highest) if sel else None)
            row[name] = label
            row[f"{name}_ess"] = round(s["ess"], 1)
            row[f"{name}_agree"] = label == row["nuts"]
            row[f"{name}_reason"] = (
                "" if label == row["nuts"] else _reason(s, nuts, s["ess"] < cfg.update.min_ess, thr)
            )
            for j, lim in np.ndindex(s["mean"].shape):
                crow.append({
                    "trial": p.trial, "decision": p.number, "update": name, "ess": s["ess"],
                    "candidate": cfg.candidates[j].name, "limit": lnames[lim],
                    "mean": s["mean"][j, lim], "se_mean": s["se_mean"][j, lim],
                    "nuts_mean": nuts["mean"][j, lim], "nuts_se_mean": nuts["se_mean"][j, lim],
                    "pover": s["pover"][j, lim], "se_pover": s["se_pover"][j, lim],
                    "nuts_pover": nuts["pover"][j, lim], "nuts_se_pover": nuts["se_pover"][j, lim],
                })  # fmt: skip
        prow.append(row)
        if log is not None:
            log(f"point {k + 1}/{len(points)}: {row}")
    cells = pd.DataFrame(crow)
    for key in ("mean", "pover"):
        se = np.sqrt(cells[f"se_{key}"] ** 2 + cells[f"nuts_se_{key}"] ** 2)
        cells[f"z_{key}"] = (cells[key] - cells[f"nuts_{key}"]) / np.where(se > 0, se, np.nan)
    return pd.DataFrame(prow), cells


def _reason(s: dict, nuts: dict, low_ess: bool, thr: float) -> str:
    if low_ess:
        return "low_ess"
    differs = (s["pover"] > thr) != (nuts["pover"] > thr)
    near = (np.abs(s["pover"] - thr) <= 2 * s["se_pover"]) | (
        np.abs(nuts["pover"] - thr) <= 2 * nuts["se_pover"]
    )
    if differs.any() and near[differs].all():
        return "threshold"
    return "likelihood"


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) binomial interval of k successes in n."""
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def summarise(points: pd.DataFrame, cells: pd.DataFrame, min_ess: float = 50.0) -> dict:
    """Agreement rates with their 95% intervals, reasons of the disagreements, and the
    distribution of the z-scores of the posterior-mean differences (only the cells whose
    risk is not degenerate), in all and (``z_mean_ess``) at the points whose reweighting
    keeps an ESS of ``min_ess`` or more, where its SE is to be trusted."""
    out = {"points": len(points)}
    for name in ("design", "plain", "independent", "exact"):
        if f"{name}_agree" not in points:
            continue
        k, n = int(points[f"{name}_agree"].sum()), len(points)
        c = cells[cells["update"] == name]
        z = c["z_mean"].dropna().to_numpy()
        zt = c.loc[c["ess"] >= min_ess, "z_mean"].dropna().to_numpy()
        zp = c["z_pover"].dropna().to_numpy()
        out[name] = {
            "agree": k, "rate": round(k / n, 3) if n else None,
            "ci95": [round(v, 3) for v in clopper_pearson(k, n)] if n else None,
            "reasons": points.loc[~points[f"{name}_agree"], f"{name}_reason"].value_counts()
            .to_dict(),
            "ess_median": float(points[f"{name}_ess"].median()),
            "ess_min": float(points[f"{name}_ess"].min()),
            "z_mean": {"n": int(z.size), "mean": round(float(z.mean()), 2) if z.size else None,
                       "sd": round(float(z.std()), 2) if z.size else None,
                       "max_abs": round(float(np.abs(z).max()), 2) if z.size else None},
            "z_mean_ess": {"n": int(zt.size),
                           "sd": round(float(zt.std()), 2) if zt.size else None,
                           "max_abs": round(float(np.abs(zt).max()), 2) if zt.size else None},
            "z_pover": {"n": int(zp.size),
                        "max_abs": round(float(np.abs(zp).max()), 2) if zp.size else None},
        }  # fmt: skip
    return out
