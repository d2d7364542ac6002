"""Simulation-based calibration: parameters from the model's prior, evidence simulated
with the real table's shape, refits through the one fitting stack, ranks and their
uniformity tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from lenasim.core.hazard import EVENTS, SEVERITY, HazardDraws
from lenasim.core.progress import progress_bar
from lenasim.model.likelihood import ModelData, params_from_draws, row_probabilities
from lenasim.model.posterior import draws_from_dataset


def sbc_params(terms: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Every scalar parameter SBC ranks, for a model with ``terms`` (event and severity ->
    terms): intercepts, coefficients, between-trial SDs and frailty SDs of the events,
    then the severity's intercept and coefficients. Names are ``kind[block]``."""
    return tuple(_names(terms))


def _names(terms):
    for ev in EVENTS:
        yield f"intercept[{ev}]"
        yield from (f"{t}[{ev}]" for t in terms[ev])
        yield f"tau[{ev}]"
        yield f"sigma[{ev}]"
    yield f"intercept[{SEVERITY}]"
    yield from (f"{t}[{SEVERITY}]" for t in terms[SEVERITY])


def prior_draws(fitter, n: int, seed: int) -> tuple[HazardDraws, np.ndarray]:
    """``n`` parameter sets from the model's own prior (:meth:`Fitter.prior`, i.e.
    ``pm.sample_prior_predictive``): HazardDraws (S = n) and trial effects (n, trial, event)."""

    prior = fitter.prior(n, seed).prior
    u = prior["u"].stack(s=("chain", "draw")).transpose("s", "trial", "event").values
    return draws_from_dataset(prior), np.asarray(u, float)


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
    """Draws of every parameter of :func:`sbc_params`, by name."""
    out = {}
    for ev in EVENTS:
        out[f"intercept[{ev}]"] = d.intercept[ev]
        out.update({f"{t}[{ev}]": d.coefs[ev][t] for t in d.terms[ev]})
        out[f"tau[{ev}]"] = d.tau[ev]
        out[f"sigma[{ev}]"] = d.sigma[ev]
    out[f"intercept[{SEVERITY}]"] = d.intercept[SEVERITY]
    out.update({f"{t}[{SEVERITY}]": d.coefs[SEVERITY][t] for t in d.terms[SEVERITY]})
    return out


def sbc(fitter, n_fits: int, *, seed: int = 20261123, thin_to: int = 99,
        progress: bool = True, **settings) -> pd.DataFrame:  # fmt: skip
    """Simulation-based calibration: ``n_fits`` (prior draw, simulated table, fit).

    The parameters come from the model's prior (:func:`prior_draws`), the counts from
    the model's likelihood at them (:func:`simulate_counts`), the fit from
    ``fitter.sample`` with the spec's sampler settings unless ``settings`` override them.
    Ranks: the number of ``thin_to`` evenly thinned posterior draws below the true value
    (0..thin_to). Returns one row per fit and parameter, with the fit's diagnostics.
    """

    truths, effects = prior_draws(fitter, n_fits, seed)
    rows = []
    bar = progress_bar(n_fits, "SBC fits", "fit", show=progress)
    for i in range(n_fits):
        rng = np.random.default_rng([seed, 0x5BC, i])
        truth, u = truths.take(slice(i, i + 1)), effects[i : i + 1]
        y = simulate_counts(truth, u, fitter.data, rng)
        out = fitter.sample(events=y, seed=int(rng.integers(2**31)), **settings)
        post = draws_from_dataset(out.idata.posterior)
        idx = np.linspace(0, post.n_draws - 1, thin_to).round().astype(int)
        thinned = _param_values(post.take(idx))
        diag = {k: out.diagnostics[k] for k in ("max_rhat", "min_ess_bulk", "min_ess_tail",
                                                 "divergences")}  # fmt: skip
        for name, true in _param_values(truth).items():
            rows.append({"fit": i, "param": name, "true": float(true[0]),
                         "rank": int((thinned[name] < true[0]).sum()), "L": thin_to,
                         "seconds": out.seconds["total"], **diag})  # fmt: skip
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
