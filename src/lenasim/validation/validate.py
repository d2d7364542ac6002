"""Statistical validation of the model: leave-one-trial-out (LOTO) prediction,
simulation-based calibration (SBC), prior sensitivity and a comparison with a model
without dose terms. `python -m lenasim validate` writes ``results/validation/``.

Leave-one-trial-out
    For each trial with fitted rows, the model is refitted without that trial and each
    of its rows is predicted the way a *new* trial would be: the arms' regimens, n,
    setting and partners (:func:`lenasim.model.likelihood.prepare` on the held-out rows), a new
    trial effect u_k ~ N(0, tau_k) per posterior draw (``effects_per_draw`` of them
    per draw), and the reporting noise of the row's unit: Binomial(n, P) for
    ``patients`` and ``cycle_k`` rows; for ``cycles`` rows the model's own Normal with
    mean N P and variance sum_arms n_patients Var(S) + 1/4 (see
    :func:`lenasim.model.likelihood.build_model`). The predictive distribution of a row is the
    exact mixture of these over the draws (no sampling of counts): its quantiles give
    the median and the central 50% and 90% intervals, and
    ``log p(y) = log mean_s p(y | draw s)`` is the row's contribution to the expected
    log predictive density (ELPD).

    PIT: the *randomised* PIT, P(Y < y) + V P(Y = y) with V ~ U(0, 1) from a seeded
    Generator (for ``cycles`` rows, the continuous P(Y <= y)). Under a calibrated model
    it is exactly U(0, 1), whatever the discreteness of the counts; P(Y < y) and
    P(Y <= y) are kept in ``loto.csv`` so the mid-PIT can be recomputed.

    Refits are short by design (default 2 chains x 300 draws after 300 tuning steps,
    compiled once and reused: the held-out trial's rows get likelihood weight 0, which
    gives exactly the posterior without that trial, its own trial effect staying at its
    prior). Their convergence diagnostics are recorded per refit.

Baseline
    A model that ignores dose and schedule: one pooled rate per outcome, setting and
    unit family (``patients``, or per cycle for ``cycles`` / ``cycle_k``), with a
    Beta(1, 1) prior updated by the training rows of that group (events and non-events
    summed), so that a held-out row's predictive is Beta-binomial(n, 1 + events,
    1 + non-events), exactly (no MCMC). With no training row in its group, the
    predictive is the Beta(1, 1)-binomial, uniform on 0..n.

Model comparison
    The full model against the same model without dose terms (``log_dose``,
    ``log_frac_on`` and ``rise`` dropped from every event, ``log_dose`` from the
    severity): difference of LOTO ELPD summed over held-out rows, with standard error
    sqrt(n_rows * var(pointwise differences)). Within 2 SE the data cannot tell them
    apart.

Simulation-based calibration
    Parameters drawn from the prior, evidence simulated with the real table's shape
    (same rows, units, n and arms), the model refitted; the rank of each true value
    among ``L`` thinned posterior draws is uniform on 0..L when the inference is right.
    Parameters: the intercepts, the ``log_dose`` slopes and the trial SDs tau of the
    three events. Uniformity: a chi-square test per parameter on equal-width rank
    bins, and the rank-mean z-test.

Prior sensitivity
    The model refitted with every prior scale multiplied (``ModelSpec.scaled``); the
    shipped scenario configs simulated on both posteriors (same seed, common random
    numbers); cycle-1 and cumulative risk per event, side by side.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special, stats

from lenasim.core.hazard import EVENTS, SEVERITY, HazardDraws
from lenasim.model.likelihood import UNITS, ModelData, params_from_draws, prepare, row_probabilities
from lenasim.model.spec import ModelSpec, load_spec

__all__ = [
    "BetaBinomialPredictive",
    "CompiledFitter",
    "FitOutput",
    "MixtureBinomial",
    "MixtureNormal",
    "baseline_predictive",
    "cmd_validate",
    "elpd_difference",
    "loto",
    "loto_summary",
    "no_dose_spec",
    "predict_rows",
    "prior_draw",
    "prior_sensitivity",
    "randomized_pit",
    "rank_uniformity",
    "sbc",
    "simulate_counts",
]

# Per-refit sampler settings (short on purpose: there are one refit per trial).
REFIT_CHAINS = 2
REFIT_DRAWS = 300
REFIT_TUNE = 300
EFFECTS_PER_DRAW = 4  # new trial effects drawn per posterior draw in LOTO predictions
SBC_PARAMS: tuple[str, ...] = tuple(
    f"{kind}[{ev}]" for kind in ("intercept", "log_dose", "tau") for ev in EVENTS
)
DOSE_TERMS = ("log_dose", "log_frac_on", "rise")


# ------------------------------------------------------------------ predictive laws


class MixtureBinomial:
    """Equal-weight mixture of Binomial(n, p_m): the predictive of a count row."""

    discrete = True

    def __init__(self, n: int, p: np.ndarray):
        self.n = int(n)
        p = np.clip(np.asarray(p, float).reshape(-1), 1e-9, 1 - 1e-9)
        k = np.arange(self.n + 1)
        self.pmf_table = stats.binom.pmf(k[None, :], self.n, p[:, None]).mean(axis=0)
        self.cdf_table = np.minimum(np.cumsum(self.pmf_table), 1.0)

    def pmf(self, y: float) -> float:
        y = int(round(y))
        return float(self.pmf_table[y]) if 0 <= y <= self.n else 0.0

    def cdf(self, y: float) -> float:
        """P(Y <= y)."""
        y = math.floor(y + 1e-9)
        if y < 0:
            return 0.0
        return 1.0 if y >= self.n else float(self.cdf_table[y])

    def logp(self, y: float) -> float:
        return float(np.log(self.pmf(y))) if self.pmf(y) > 0 else -np.inf

    def quantile(self, q: float) -> float:
        """The smallest y with P(Y <= y) >= q."""
        return float(np.searchsorted(self.cdf_table, q - 1e-12, side="left"))


class BetaBinomialPredictive(MixtureBinomial):
    """Beta-binomial(n, a, b): the baseline's exact posterior predictive."""

    def __init__(self, n: int, a: float, b: float):
        self.n = int(n)
        self.a, self.b = float(a), float(b)
        k = np.arange(self.n + 1)
        self.pmf_table = stats.betabinom.pmf(k, self.n, self.a, self.b)
        self.cdf_table = np.minimum(np.cumsum(self.pmf_table), 1.0)


class MixtureNormal:
    """Equal-weight mixture of Normal(mu_m, sd_m): the predictive of a ``cycles`` row."""

    discrete = False

    def __init__(self, mu: np.ndarray, sd: np.ndarray):
        self.mu = np.asarray(mu, float).reshape(-1)
        self.sd = np.asarray(sd, float).reshape(-1)

    def pmf(self, y: float) -> float:  # density; P(Y = y) = 0 for the PIT
        return 0.0

    def pdf(self, y: float) -> float:
        return float(stats.norm.pdf(y, self.mu, self.sd).mean())

    def cdf(self, y: float) -> float:
        return float(stats.norm.cdf(y, self.mu, self.sd).mean())

    def logp(self, y: float) -> float:
        lp = stats.norm.logpdf(y, self.mu, self.sd)
        return float(special.logsumexp(lp) - np.log(lp.size))

    def quantile(self, q: float) -> float:
        lo = float((self.mu - 8 * self.sd).min())
        hi = float((self.mu + 8 * self.sd).max())
        grid = np.linspace(lo, hi, 4001)
        cdf = stats.norm.cdf(grid[:, None], self.mu[None, :], self.sd[None, :]).mean(axis=1)
        return float(np.interp(q, cdf, grid))


def randomized_pit(pred, y: float, v: float) -> float:
    """P(Y < y) + v P(Y = y) (v ~ U(0,1)); for a continuous predictive P(Y <= y)."""
    if not pred.discrete:
        return pred.cdf(y)
    below = pred.cdf(y - 1) if y >= 1 else 0.0
    return below + v * pred.pmf(y)


# ------------------------------------------------------------------ predictions


def _new_trial_effects(draws: HazardDraws, n_trials: int, k: int, rng) -> tuple[HazardDraws, np.ndarray]:
    """Each draw repeated k times, with a new trial effect u ~ N(0, tau) per copy and trial."""
    rep = np.repeat(np.arange(draws.n_draws), k)
    d = draws.take(rep)
    z = rng.standard_normal((d.n_draws, n_trials, len(EVENTS)))
    tau = np.stack([d.tau[e] for e in EVENTS], axis=-1)[:, None, :]
    return d, z * tau


def predict_rows(
    draws: HazardDraws,
    rows: pd.DataFrame,
    arms: dict,
    *,
    quadrature_nodes: int,
    rng: np.random.Generator,
    effects_per_draw: int = EFFECTS_PER_DRAW,
    new_trial: bool = True,
) -> list:
    """The posterior predictive law of each row's count, as a new trial would get it.

    ``new_trial``: u ~ N(0, tau) per draw copy and trial (rows of one trial share it);
    False sets u = 0 (a typical trial; used by tests to show the difference).
    Returns one :class:`MixtureBinomial` or :class:`MixtureNormal` per row, in order.
    """
    data = prepare(rows, arms, quadrature_nodes)
    if new_trial:
        d, u = _new_trial_effects(draws, len(data.trials), effects_per_draw, rng)
    else:
        d, u = draws, np.zeros((draws.n_draws, len(data.trials), len(EVENTS)))
    P, var_s = row_probabilities(params_from_draws(d, len(data.trials), u), data, d.terms)
    P = np.clip(P, 1e-9, 1 - 1e-9)
    out = []
    cyc = UNITS.index("cycles")
    for i in range(len(data.rows)):
        if data.row_unit[i] == cyc:
            var_row = var_s @ (data.mixing[i] * data.row_patients[i])
            out.append(MixtureNormal(data.n[i] * P[:, i], np.sqrt(var_row + 0.25)))
        else:
            out.append(MixtureBinomial(int(data.n[i]), P[:, i]))
    return out


def _unit_family(unit: str) -> str:
    return "patients" if unit == "patients" else "per_cycle"


def baseline_predictive(train: pd.DataFrame, row) -> BetaBinomialPredictive:
    """Beta(1,1)-binomial predictive of ``row`` from the training rows of its outcome,
    setting and unit family (patients / per cycle), ignoring dose and schedule."""
    fam = _unit_family(row["unit"])
    same = train[(train["outcome"] == row["outcome"]) & (train["setting"] == row["setting"])
                 & (train["unit"].map(_unit_family) == fam)]  # fmt: skip
    ev = float(same["events"].astype(float).sum())
    n = float(same["n"].astype(float).sum())
    return BetaBinomialPredictive(int(row["n"]), 1.0 + ev, 1.0 + n - ev)


# ------------------------------------------------------------------ fitting


@dataclass
class FitOutput:
    draws: HazardDraws
    diagnostics: dict = field(default_factory=dict)
    seconds: float = 0.0


FitFn = Callable[[np.ndarray], FitOutput]  # row weights (0/1 per fitted row) -> posterior


class CompiledFitter:
    """The model of ``spec`` on all ``rows``, compiled once; each fit sets per-row
    likelihood weights (0 drops a row) and, optionally, new counts (SBC).

    The likelihood is the one of :func:`lenasim.model.likelihood.build_model` (Binomial for
    ``patients`` / ``cycle_k`` rows, the Normal of ``cycles`` rows), each row's log
    likelihood multiplied by its weight. A weight-0 trial keeps its trial effect in
    the model at its prior, which does not change the posterior of anything else.
    """

    def __init__(self, spec: ModelSpec, rows: pd.DataFrame, arms: dict, *,
                 backend: str = "nutpie", chains: int = REFIT_CHAINS,
                 draws: int = REFIT_DRAWS, tune: int = REFIT_TUNE, quiet: bool = True):  # fmt: skip
        self.spec = spec
        self.data = prepare(rows, arms, spec.quadrature_nodes)
        self.backend = backend
        self.chains, self.n_draws, self.tune = chains, draws, tune
        self.quiet = quiet
        self.model = self._build()
        self._compiled = None
        self.compile_seconds = 0.0

    def _build(self):
        from lenasim.model.likelihood import build_model

        return build_model(self.data, self.spec)

    def compile(self) -> None:
        if self._compiled is not None or self.backend != "nutpie":
            return
        import nutpie

        t0 = time.perf_counter()
        self._compiled = nutpie.compile_pymc_model(self.model)
        self.compile_seconds = time.perf_counter() - t0

    def fit(self, weights: np.ndarray | None = None, events: np.ndarray | None = None,
            seed: int = 0) -> FitOutput:  # fmt: skip
        """Sample the posterior with the given row weights (default 1) and counts."""
        w = np.ones(len(self.data.rows)) if weights is None else np.asarray(weights, float)
        y = self.data.events if events is None else np.asarray(events, float)
        t0 = time.perf_counter()
        if self.backend == "nutpie":
            import nutpie

            self.compile()
            cm = self._compiled.with_data(row_weight=w, row_events=y)
            idata = nutpie.sample(cm, draws=self.n_draws, tune=self.tune, chains=self.chains,
                                  seed=int(seed), target_accept=self.spec.sampler.target_accept,
                                  progress_bar=not self.quiet, cores=min(self.chains, 2))  # fmt: skip
        else:
            import pymc as pm

            with self.model:
                pm.set_data({"row_weight": w, "row_events": y})
                idata = pm.sample(draws=self.n_draws, tune=self.tune, chains=self.chains,
                                  cores=min(self.chains, 2), random_seed=int(seed),
                                  target_accept=self.spec.sampler.target_accept,
                                  progressbar=not self.quiet, compute_convergence_checks=False)  # fmt: skip
        secs = time.perf_counter() - t0
        from lenasim.model.posterior import draws_from_dataset

        return FitOutput(draws_from_dataset(idata.posterior), _diagnostics(idata), secs)


def _diagnostics(idata) -> dict:
    """Worst R-hat / bulk ESS over the main parameters and the divergences."""
    import arviz as az

    names = [v for v in ("intercept", "beta_flare", "beta_tls", "beta_neutropenia", "tau",
                         "sigma", "sev_intercept", "sev_beta") if v in idata.posterior]  # fmt: skip
    rhat = az.rhat(idata, var_names=names)
    ess = az.ess(idata, var_names=names, method="bulk")
    mx = max(float(np.nanmax(v.values)) for v in rhat.data_vars.values())
    mn = min(float(np.nanmin(v.values)) for v in ess.data_vars.values())
    div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    return {"max_rhat": mx, "min_ess_bulk": mn, "divergences": div}


# ------------------------------------------------------------------ LOTO


def loto(
    rows: pd.DataFrame,
    arms: dict,
    fit_fn: FitFn,
    *,
    quadrature_nodes: int,
    seed: int = 20261123,
    effects_per_draw: int = EFFECTS_PER_DRAW,
    progress: bool = True,
    desc: str = "LOTO refits",
) -> tuple[pd.DataFrame, list[dict]]:
    """Leave-one-trial-out predictions of every fitted row.

    ``fit_fn(weights)`` returns the posterior with the rows of weight 0 left out
    (weights follow ``rows``' order). Returns one record per row (observed count,
    predictive median, 50% / 90% intervals, PIT, log predictive density of the model
    and of the baseline) and one record per refit (trial, diagnostics, seconds).
    """
    rows = rows.reset_index(drop=True)
    rng = np.random.default_rng([seed, 0x1070])
    trials = list(dict.fromkeys(rows["trial"]))
    records, refits = [], []
    bar = _bar(len(trials), desc, progress)
    for t_i, trial in enumerate(trials):
        held = (rows["trial"] == trial).to_numpy()
        out = fit_fn((~held).astype(float))
        refits.append({"trial": trial, "rows": int(held.sum()), "seconds": out.seconds,
                       **out.diagnostics})  # fmt: skip
        test = rows[held]
        train = rows[~held]
        t_rng = np.random.default_rng([seed, 0x1070, t_i])
        preds = predict_rows(out.draws, test, arms, quadrature_nodes=quadrature_nodes,
                             rng=t_rng, effects_per_draw=effects_per_draw)  # fmt: skip
        for (_, r), pred in zip(test.iterrows(), preds):
            y = float(r["events"])
            n = float(r["n"])
            base = baseline_predictive(train, r)
            v = float(rng.random())
            q = {p: pred.quantile(p) for p in (0.05, 0.25, 0.5, 0.75, 0.95)}
            records.append({
                "trial": trial, "row_id": r["row_id"], "outcome": r["outcome"],
                "unit": r["unit"], "setting": r["setting"], "n": n, "observed": y,
                "observed_rate": y / n, "pred_median": q[0.5],
                "lo50": q[0.25], "hi50": q[0.75], "lo90": q[0.05], "hi90": q[0.95],
                "cdf_below": pred.cdf(y - 1) if pred.discrete else pred.cdf(y),
                "cdf_at": pred.cdf(y), "pit": randomized_pit(pred, y, v),
                "inside50": bool(q[0.25] <= y <= q[0.75]),
                "inside90": bool(q[0.05] <= y <= q[0.95]),
                "lpd": pred.logp(y), "lpd_baseline": base.logp(y),
                "baseline_rate": base.a / (base.a + base.b),
            })  # fmt: skip
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(trial)
    if bar is not None:
        bar.close()
    return pd.DataFrame(records), refits


def _bar(total: int, desc: str, show: bool):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="refit", file=sys.stderr)


def elpd_difference(lpd_a: Iterable[float], lpd_b: Iterable[float]) -> dict:
    """ELPD(a) - ELPD(b) summed over rows, with SE = sqrt(n var(pointwise differences))."""
    a, b = np.asarray(list(lpd_a), float), np.asarray(list(lpd_b), float)
    d = a - b
    se = float(np.sqrt(d.size * d.var(ddof=1))) if d.size > 1 else float("nan")
    return {"elpd_a": float(a.sum()), "elpd_b": float(b.sum()), "diff": float(d.sum()),
            "se": se, "n_rows": int(d.size),
            "distinguishable": bool(abs(d.sum()) >= 2 * se) if np.isfinite(se) else False}  # fmt: skip


def loto_summary(table: pd.DataFrame) -> dict:
    """Coverage of the 50% / 90% intervals (with binomial SEs), PIT moments, ELPD."""
    n = len(table)

    def share(col: str) -> dict:
        p = float(table[col].mean())
        return {"share": p, "se": math.sqrt(p * (1 - p) / n) if n else float("nan")}

    pit = table["pit"].to_numpy(float)
    return {
        "n_rows": n,
        "n_trials": int(table["trial"].nunique()),
        "coverage50": share("inside50") | {"nominal": 0.5},
        "coverage90": share("inside90") | {"nominal": 0.9},
        "pit_mean": float(pit.mean()),
        "pit_ks_pvalue": float(stats.kstest(pit, "uniform").pvalue) if n else float("nan"),
        "elpd_model": float(table["lpd"].sum()),
        "elpd_baseline": float(table["lpd_baseline"].sum()),
        "model_vs_baseline": elpd_difference(table["lpd"], table["lpd_baseline"]),
    }


def no_dose_spec(spec: ModelSpec) -> ModelSpec:
    """The spec without dose terms: log_dose, log_frac_on and rise dropped from every
    event, log_dose from the severity."""
    data = spec.model_dump()
    for ev in data["events"].values():
        ev["terms"] = [t for t in ev["terms"] if t not in DOSE_TERMS]
    data["severity"]["terms"] = [t for t in data["severity"]["terms"] if t != "log_dose"]
    data["name"] = f"{spec.name}-no-dose"
    return ModelSpec.model_validate(data)


# ------------------------------------------------------------------ SBC


def prior_draw(spec: ModelSpec, n_trials: int, rng: np.random.Generator) -> tuple[HazardDraws, np.ndarray]:
    """One parameter set from the spec's priors (S = 1) and the trial effects (1, trial, event)."""
    terms = spec.terms_map()

    def normal(block, p):
        pr = spec.prior(block, p)
        return np.array([pr.mu + pr.sigma * rng.standard_normal()])

    def half(block, p):
        return np.array([abs(spec.prior(block, p).sigma * rng.standard_normal())])

    intercept = {b: normal(b, "intercept") for b in (*EVENTS, SEVERITY)}
    coefs = {b: {t: normal(b, t) for t in terms[b]} for b in (*EVENTS, SEVERITY)}
    tau = {e: half(e, "tau") for e in EVENTS}
    sigma = {e: half(e, "frailty") for e in EVENTS}
    draws = HazardDraws(terms=terms, intercept=intercept, coefs=coefs, tau=tau, sigma=sigma)
    z = rng.standard_normal((1, n_trials, len(EVENTS)))
    u = z * np.stack([tau[e] for e in EVENTS], -1)[:, None, :]
    return draws, u


def simulate_counts(truth: HazardDraws, u: np.ndarray, data: ModelData,
                    rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Counts of every row drawn from the model's own likelihood (Binomial, or the
    Normal of ``cycles`` rows, unrounded) at one parameter set."""
    P, var_s = row_probabilities(params_from_draws(truth, len(data.trials), u), data, truth.terms)
    P = np.clip(P[0], 1e-9, 1 - 1e-9)
    y = np.empty(len(data.rows))
    b, c = data.binomial, data.cycles
    y[b] = rng.binomial(data.n[b].astype(np.int64), P[b])
    if c.size:
        var_rows = (data.mixing[c] * data.row_patients[c][:, None]) @ var_s[0]
        y[c] = rng.normal(data.n[c] * P[c], np.sqrt(var_rows + 0.25))
    return y


def _param_values(d: HazardDraws) -> dict[str, np.ndarray]:
    out = {}
    for ev in EVENTS:
        out[f"intercept[{ev}]"] = d.intercept[ev]
        if "log_dose" in d.terms[ev]:
            out[f"log_dose[{ev}]"] = d.coefs[ev]["log_dose"]
        out[f"tau[{ev}]"] = d.tau[ev]
    return out


def sbc(fitter: CompiledFitter, n_fits: int, *, seed: int = 20261123, thin_to: int = 99,
        progress: bool = True) -> pd.DataFrame:  # fmt: skip
    """Simulation-based calibration: ``n_fits`` (prior draw, simulated table, fit).

    Ranks: the number of ``thin_to`` evenly thinned posterior draws below the true
    value (0..thin_to). Returns one row per fit and parameter, with the fit's
    diagnostics.
    """
    rows = []
    bar = _bar(n_fits, "SBC fits", progress)
    for i in range(n_fits):
        rng = np.random.default_rng([seed, 0x5BC, i])
        truth, u = prior_draw(fitter.spec, len(fitter.data.trials), rng)
        y = simulate_counts(truth, u, fitter.data, rng)
        out = fitter.fit(events=y, seed=int(rng.integers(2**31)))
        idx = np.linspace(0, out.draws.n_draws - 1, thin_to).round().astype(int)
        post = _param_values(out.draws.take(idx))
        for name, true in _param_values(truth).items():
            rows.append({"fit": i, "param": name, "true": float(true[0]),
                         "rank": int((post[name] < true[0]).sum()), "L": thin_to,
                         **out.diagnostics})  # fmt: skip
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return pd.DataFrame(rows)


def rank_uniformity(ranks: np.ndarray, L: int, bins: int) -> dict:
    """Chi-square test of uniform ranks on 0..L in ``bins`` equal-width bins, and the
    z-score of the mean normalised rank (mean (r + 0.5)/(L + 1) ~ 1/2, sd 1/sqrt(12 N))."""
    ranks = np.asarray(ranks, int)
    n = ranks.size
    edges = np.linspace(0, L + 1, bins + 1)
    counts, _ = np.histogram(ranks, bins=edges)
    # Exact expected counts (L + 1 rank values may not divide evenly into bins).
    width = np.diff(np.ceil(edges)).astype(float)  # integers in [e_j, e_j+1)
    expected = n * width / width.sum()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(chi2, bins - 1))
    u = (ranks + 0.5) / (L + 1)
    z = float((u.mean() - 0.5) / math.sqrt(1 / 12 / n)) if n else float("nan")
    return {"n": n, "bins": bins, "chi2": chi2, "chi2_pvalue": p, "rank_mean_z": z,
            "counts": counts.tolist()}  # fmt: skip


def sbc_summary(ranks: pd.DataFrame, bins: int | None = None) -> dict:
    out = {}
    for name, g in ranks.groupby("param", sort=False):
        n = len(g)
        b = bins or max(2, min(20, n // 5))
        out[name] = rank_uniformity(g["rank"].to_numpy(), int(g["L"].iloc[0]), b)
    return out


# ------------------------------------------------------------------ prior sensitivity


def headline_numbers(draws: HazardDraws, configs: Iterable[Path], *, patients: int = 300,
                     n_draws: int = 200) -> pd.DataFrame:  # fmt: skip
    """Cycle-1 and cumulative risk per event of each scenario config, simulated with
    the teammate's engine on ``n_draws`` evenly spaced posterior draws."""
    from lenasim.simulation.scenario import load_scenario
    from lenasim.commands.run import select_draws
    from lenasim.simulation.engine import simulate

    recs = []
    for path in configs:
        sc = load_scenario(path)
        idx = select_draws(draws.n_draws, min(n_draws, draws.n_draws), sc.seed)
        ds = simulate(sc.regimen.expand(), sc.population, sc.rules, draws.take(idx),
                      n_patients=patients, seed=sc.seed, population_effect=sc.population_effect,
                      posterior_index=idx)  # fmt: skip
        pc = ds["per_cycle"].transpose("draw", "event", "cycle").values
        cum = ds["cumulative"].transpose("draw", "event", "cycle").values
        for e, ev in enumerate(ds["event"].values):
            for what, a in (("cycle 1", pc[:, e, 0]), (f"cumulative ({pc.shape[2]} cycles)", cum[:, e, -1])):
                recs.append({"config": sc.name, "event": str(ev), "quantity": what,
                             "mean": float(np.nanmean(a)), "q05": float(np.nanquantile(a, 0.05)),
                             "q95": float(np.nanquantile(a, 0.95))})  # fmt: skip
    return pd.DataFrame(recs)


def prior_sensitivity(base: HazardDraws, widened: HazardDraws, configs: Iterable[Path],
                      **kw) -> pd.DataFrame:  # fmt: skip
    """Headline numbers on two posteriors, side by side, with the shift of the mean."""
    configs = list(configs)
    a = headline_numbers(base, configs, **kw)
    b = headline_numbers(widened, configs, **kw)
    m = a.merge(b, on=["config", "event", "quantity"], suffixes=("_default", "_widened"))
    m["shift"] = m["mean_widened"] - m["mean_default"]
    return m


# ------------------------------------------------------------------ plots


OUTCOMES = ("flare_any", "flare_grade3plus", "tls", "neutropenia_grade34")


def calibration_plot(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Observed rate against the LOTO predictive median, with 50% (thick) and 90%
    (thin) predictive intervals as horizontal bars; one panel per outcome."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(OUTCOMES), figsize=(4.2 * len(OUTCOMES), 4.4), squeeze=False)
    for ax, oc in zip(axes[0], OUTCOMES):
        g = table[table["outcome"] == oc]
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", zorder=0)
        if len(g):
            n = g["n"].to_numpy(float)
            y = g["observed"].to_numpy(float) / n
            med = g["pred_median"].to_numpy(float) / n
            for lo, hi, lw, alpha in (("lo90", "hi90", 1.2, 0.45), ("lo50", "hi50", 4.0, 0.8)):
                ax.hlines(y, g[lo] / n, g[hi] / n, lw=lw, alpha=alpha, color="C0")
            inside = g["inside90"].to_numpy(bool)
            ax.scatter(med[inside], y[inside], s=22, color="C0", zorder=3, label="inside 90%")
            ax.scatter(med[~inside], y[~inside], s=30, color="C3", marker="D", zorder=3,
                       label="outside 90%")  # fmt: skip
            for xi, yi, rid in zip(med[~inside], y[~inside], g["row_id"][~inside]):
                ax.annotate(rid, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{oc} ({len(g)} rows)")
        ax.set_xlabel("predicted (median; bars 50% / 90%)")
        ax.set_ylabel("observed share")
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title or "Leave-one-trial-out predictions: each row predicted from the other trials")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pit_plot(table: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    n = len(table)
    ax.hist(table["pit"], bins=10, range=(0, 1), color="C0", alpha=0.8, edgecolor="white")
    ax.axhline(n / 10, color="k", lw=1, ls="--", label="uniform")
    ax.set_xlabel("randomised PIT of the observed count")
    ax.set_ylabel("rows")
    ax.set_title(f"LOTO PIT ({n} rows)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rank_histograms(ranks: pd.DataFrame, path: Path, bins: int | None = None) -> Path:
    """One rank histogram per parameter, with the 99% band of a uniform bin count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = list(dict.fromkeys(ranks["param"]))
    ncol = 3
    nrow = math.ceil(len(params) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.8 * nrow), squeeze=False)
    for ax, name in zip(axes.ravel(), params):
        g = ranks[ranks["param"] == name]
        n, L = len(g), int(g["L"].iloc[0])
        b = bins or max(2, min(20, n // 5))
        ax.hist(g["rank"], bins=np.linspace(0, L + 1, b + 1), color="C0", edgecolor="white")
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / b)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(n / b, color="k", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, L + 1)
    for ax in axes.ravel()[len(params):]:
        ax.axis("off")
    fig.suptitle(f"SBC rank histograms ({ranks['fit'].nunique()} fits; grey: 99% band)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ the command


def _fmt(x: float, d: int = 2) -> str:
    return f"{x:.{d}f}"


def _report(summary: dict) -> str:
    lines = ["# lenasim validation", ""]
    s = summary.get("settings", {})
    if s:
        lines += [f"Spec `{s.get('spec')}`; refits of {s.get('chains')} chains x {s.get('draws')} "
                  f"draws after {s.get('tune')} tuning steps (short refits: intervals carry "
                  "Monte Carlo error of a few per cent); "
                  f"{s.get('effects_per_draw')} new trial effects per posterior draw.", ""]  # fmt: skip
    lo = summary.get("loto")
    if lo:
        c50, c90 = lo["coverage50"], lo["coverage90"]
        mb = lo["model_vs_baseline"]
        lines += [
            "## Leave-one-trial-out prediction", "",
            f"{lo['n_rows']} fitted rows of {lo['n_trials']} trials, each predicted by the model "
            "refitted without its trial, as a new trial (new trial effect u ~ N(0, tau)).", "",
            "| measure | value | nominal |", "|---|---|---|",
            f"| rows inside the 50% interval | {_fmt(c50['share'])} (SE {_fmt(c50['se'])}) | 0.50 (at least, for discrete counts) |",
            f"| rows inside the 90% interval | {_fmt(c90['share'])} (SE {_fmt(c90['se'])}) | 0.90 (at least) |",
            f"| mean randomised PIT | {_fmt(lo['pit_mean'])} | 0.50 |",
            f"| KS p-value of PIT vs U(0,1) | {_fmt(lo['pit_ks_pvalue'], 3)} | |",
            f"| ELPD, model | {_fmt(lo['elpd_model'], 1)} | |",
            f"| ELPD, pooled-rate baseline | {_fmt(lo['elpd_baseline'], 1)} | |",
            f"| model - baseline | {_fmt(mb['diff'], 1)} (SE {_fmt(mb['se'], 1)}) | |",
            "",
            "Baseline: one pooled rate per outcome, setting and unit family with a Beta(1,1) "
            "prior, updated by the training rows (exact Beta-binomial predictive); it ignores "
            "dose and schedule.", "",
            "Plots: `calibration.png` (observed against predicted), `pit.png`. Rows: `loto.csv`.",
            "",
        ]  # fmt: skip
        refits = lo.get("refits", [])
        bad = [r for r in refits if r.get("max_rhat", 1) > 1.05 or r.get("divergences", 0)]
        if refits:
            worst = max(r.get("max_rhat", float("nan")) for r in refits)
            lines += [f"Refit diagnostics: worst R-hat {worst:.3f}; "
                      f"{sum(r.get('divergences', 0) for r in refits)} divergences in all; "
                      f"{len(bad)} refit(s) with R-hat > 1.05 or divergences.", ""]  # fmt: skip
    mc = summary.get("model_comparison")
    if mc:
        verdict = ("the data cannot tell them apart (|difference| < 2 SE)" if not mc["distinguishable"]
                   else ("the full model predicts better" if mc["diff"] > 0
                         else "the model without dose terms predicts better"))  # fmt: skip
        lines += ["## Model comparison: dose terms", "",
                  f"LOTO ELPD of the full model {_fmt(mc['elpd_a'], 1)}, without dose terms "
                  f"{_fmt(mc['elpd_b'], 1)}: difference {_fmt(mc['diff'], 1)} "
                  f"(SE {_fmt(mc['se'], 1)}, {mc['n_rows']} rows): {verdict}.", ""]  # fmt: skip
    ps = summary.get("prior_sensitivity")
    if ps:
        lines += ["## Prior sensitivity", "",
                  f"Every prior scale multiplied by {ps['factor']:g}; shipped configs simulated "
                  f"with {ps['patients']} patients x {ps['draws']} draws on each posterior "
                  "(mean [5%, 95%]).", "",
                  "| config | event | quantity | default | widened | shift |", "|---|---|---|---|---|---|"]  # fmt: skip
        for r in ps["table"]:
            lines.append(
                f"| {r['config']} | {r['event']} | {r['quantity']} | "
                f"{r['mean_default']:.3f} [{r['q05_default']:.3f}, {r['q95_default']:.3f}] | "
                f"{r['mean_widened']:.3f} [{r['q05_widened']:.3f}, {r['q95_widened']:.3f}] | "
                f"{r['shift']:+.3f} |")
        lines.append("")
    sb = summary.get("sbc")
    if sb:
        lines += ["## Simulation-based calibration", "",
                  f"{sb['n_fits']} fits; ranks among {sb['L']} thinned posterior draws; "
                  f"Bonferroni family level {sb['alpha']} over {len(sb['params'])} parameters.", "",
                  "| parameter | chi-square p | rank-mean z | verdict |", "|---|---|---|---|"]  # fmt: skip
        for name, r in sb["params"].items():
            ok = r["chi2_pvalue"] > sb["alpha"] / len(sb["params"])
            lines.append(f"| {name} | {r['chi2_pvalue']:.3f} | {r['rank_mean_z']:+.2f} | "
                         f"{'uniform' if ok else 'NOT uniform'} |")
        lines += ["", "Plot: `sbc_ranks.png`; ranks: `sbc_ranks.csv`.", ""]
    return "\n".join(lines)


def _atomic_write(out: Path, build) -> None:
    """Write into a temporary sibling and rename into place; files of an earlier
    validation that this run does not produce are carried over (and summary.json
    merged), so `validate --sbc N` does not erase an earlier LOTO."""
    import shutil
    import tempfile

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        summary = build(tmp)
        if out.exists():
            for f in out.iterdir():
                if f.is_file() and not (tmp / f.name).exists():
                    shutil.copy2(f, tmp / f.name)
            old_json = out / "summary.json"
            if old_json.exists():
                old = json.loads(old_json.read_text())
                summary = old | summary
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
        (tmp / "report.md").write_text(_report(summary))
        old_dir = None
        if out.exists():
            old_dir = out.with_name(f".{out.name}.old-{time.time_ns()}")
            out.rename(old_dir)
        tmp.rename(out)
        if old_dir is not None:
            shutil.rmtree(old_dir, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"lenasim validate: {msg}", file=sys.stderr)


def cmd_validate(args) -> int:
    """Handler of `python -m lenasim validate` (options in cli.py).

    Runs LOTO for the full model and the model without dose terms (unless ``--only``
    says otherwise), prior sensitivity with ``--prior-scale``, SBC with ``--sbc N``.
    """
    from lenasim.evidence.table import fitted_rows, load_arms, load_evidence

    quiet = bool(getattr(args, "quiet", False))
    spec_path = Path(args.spec)
    spec = load_spec(spec_path)
    draws = int(args.draws or REFIT_DRAWS)
    tune = int(getattr(args, "tune", None) or REFIT_TUNE)
    only = getattr(args, "only", None)
    do_loto = only in (None, "loto")
    do_prior = args.prior_scale is not None and only in (None, "prior")
    do_sbc = bool(args.sbc) and only in (None, "sbc")
    rows = fitted_rows(load_evidence())
    arms = load_arms()
    settings = {"spec": str(spec_path), "chains": REFIT_CHAINS, "draws": draws, "tune": tune,
                "effects_per_draw": EFFECTS_PER_DRAW, "sampler": "nutpie"}  # fmt: skip
    _say(f"refits use {REFIT_CHAINS} chains x {draws} draws after {tune} tuning steps "
         "(short on purpose; each model is compiled once, ~2 min)", quiet)  # fmt: skip

    fitters: dict[str, CompiledFitter] = {}

    def fitter_for(sp: ModelSpec) -> CompiledFitter:
        if sp.hash() in fitters:
            return fitters[sp.hash()]
        f = fitters[sp.hash()] = CompiledFitter(sp, rows, arms, draws=draws, tune=tune, quiet=True)
        t0 = time.perf_counter()
        f.compile()
        _say(f"compiled {sp.name} in {time.perf_counter() - t0:.0f} s", quiet)
        return f

    def build(tmp: Path) -> dict:
        summary: dict = {"settings": settings}
        if do_loto:
            full = fitter_for(spec)
            table, refits = loto(rows, arms, lambda w: full.fit(weights=w, seed=spec.sampler.seed),
                                 quadrature_nodes=spec.quadrature_nodes, seed=spec.sampler.seed,
                                 progress=not quiet, desc="LOTO refits (full model)")  # fmt: skip
            red_spec = no_dose_spec(spec)
            reduced = fitter_for(red_spec)
            table_r, refits_r = loto(rows, arms,
                                     lambda w: reduced.fit(weights=w, seed=spec.sampler.seed),
                                     quadrature_nodes=spec.quadrature_nodes, seed=spec.sampler.seed,
                                     progress=not quiet, desc="LOTO refits (no dose terms)")  # fmt: skip
            table["lpd_no_dose"] = table_r["lpd"].to_numpy()
            table["pit_no_dose"] = table_r["pit"].to_numpy()
            table.to_csv(tmp / "loto.csv", index=False)
            calibration_plot(table, tmp / "calibration.png")
            calibration_plot(table_r, tmp / "calibration_no_dose.png",
                             "LOTO predictions of the model without dose terms")  # fmt: skip
            pit_plot(table, tmp / "pit.png")
            summary["loto"] = loto_summary(table) | {"refits": refits}
            summary["loto_no_dose"] = loto_summary(table_r) | {"refits": refits_r}
            summary["model_comparison"] = elpd_difference(table["lpd"], table["lpd_no_dose"])
        if do_prior:
            factor = float(args.prior_scale)
            configs = sorted(Path("configs").glob("*.yaml"))
            base = fitter_for(spec).fit(seed=spec.sampler.seed)
            wide = fitter_for(spec.scaled(factor)).fit(seed=spec.sampler.seed)
            patients, n_draws = 300, 200
            tab = prior_sensitivity(base.draws, wide.draws, configs, patients=patients,
                                    n_draws=n_draws)  # fmt: skip
            tab.to_csv(tmp / "prior_sensitivity.csv", index=False)
            summary["prior_sensitivity"] = {
                "factor": factor, "patients": patients, "draws": n_draws,
                "fits": {"default": base.diagnostics, "widened": wide.diagnostics},
                "table": tab.to_dict(orient="records")}  # fmt: skip
        if do_sbc:
            f = fitter_for(spec)
            ranks = sbc(f, int(args.sbc), seed=spec.sampler.seed, progress=not quiet)
            ranks.to_csv(tmp / "sbc_ranks.csv", index=False)
            rank_histograms(ranks, tmp / "sbc_ranks.png")
            summary["sbc"] = {"n_fits": int(args.sbc), "L": int(ranks["L"].iloc[0]),
                              "alpha": 0.05, "params": sbc_summary(ranks)}  # fmt: skip
        return summary

    out = Path(args.out)
    _atomic_write(out, build)
    summary = json.loads((out / "summary.json").read_text())
    print((out / "report.md").read_text())
    _say(f"wrote {out}/ ({', '.join(sorted(p.name for p in out.iterdir()))})", quiet)
    return 0 if summary else 1
