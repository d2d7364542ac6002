"""Leave-one-trial-out: refit without each trial, predict its rows as a new trial,
ELPD and coverage summaries, the comparison with a model without dose terms."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from lenasim.core.hazard import HazardDraws
from lenasim.core.progress import progress_bar
from lenasim.model.posterior import draws_from_dataset
from lenasim.model.spec import ModelSpec
from lenasim.validation.predictive import (
    EFFECTS_PER_DRAW,
    baseline_predictive,
    meta_analysis_predictive,
    predict_rows,
    randomized_pit,
)

DOSE_TERMS = ("log_dose", "log_frac_on", "rise", "cum_exposure")


@dataclass
class FitOutput:
    """What a refit hands to the predictions: posterior draws, diagnostics, seconds."""

    draws: HazardDraws
    diagnostics: dict = field(default_factory=dict)
    seconds: float = 0.0


def refit_fn(fitter, seed: int, **settings) -> FitFn:
    """A :data:`FitFn` that refits with :meth:`lenasim.model.fit.Fitter.sample` (the same
    compiled model, the given row weights; the spec's sampler settings unless overridden).

    A weight-0 trial keeps its trial effect in the model at its prior, which does not
    change the posterior of anything else.
    """

    def fit(weights: np.ndarray) -> FitOutput:
        import dataclasses

        out = fitter.sample(weights=weights, seed=seed, **settings)
        # New trials are predicted with the fit's own trial-effect law (Student-t or normal).
        draws = dataclasses.replace(draws_from_dataset(out.idata.posterior),
                                    trial_df=fitter.spec.trial_df(),
                                    link=fitter.spec.link)  # fmt: skip
        return FitOutput(draws, out.diagnostics, out.seconds["total"])

    return fit


def loto(
    rows: pd.DataFrame,
    arms: dict,
    fit_fn: FitFn,
    *,
    quadrature_nodes: int,
    quadrature_rule: str = "trapezoid",
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
    bar = progress_bar(len(trials), desc, "refit", show=progress)
    for t_i, trial in enumerate(trials):
        held = (rows["trial"] == trial).to_numpy()
        out = fit_fn((~held).astype(float))
        refits.append({"trial": trial, "rows": int(held.sum()), "seconds": out.seconds,
                       **out.diagnostics})  # fmt: skip
        test = rows[held]
        train = rows[~held]
        t_rng = np.random.default_rng([seed, 0x1070, t_i])
        preds = predict_rows(out.draws, test, arms, quadrature_nodes=quadrature_nodes,
                             quadrature_rule=quadrature_rule, rng=t_rng, effects_per_draw=effects_per_draw)  # fmt: skip
        for (_, r), pred in zip(test.iterrows(), preds):
            y = float(r["events"])
            n = float(r["n"])
            base = baseline_predictive(train, r)
            meta = meta_analysis_predictive(train, r)
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
                "lpd_meta": meta.logp(y), "meta_rate": meta.rate,
            })  # fmt: skip
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(trial)
    if bar is not None:
        bar.close()
    return pd.DataFrame(records), refits


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
        **(
            {
                "elpd_meta": float(table["lpd_meta"].sum()),
                "model_vs_meta": elpd_difference(table["lpd"], table["lpd_meta"]),
            }
            if "lpd_meta" in table
            else {}
        ),
    }


def no_dose_spec(spec: ModelSpec) -> ModelSpec:
    """The spec without dose terms: log_dose, log_frac_on, rise and cum_exposure (where a
    spec uses it) dropped from every event, log_dose from the severity."""
    data = spec.model_dump()
    for ev in data["events"].values():
        ev["terms"] = [t for t in ev["terms"] if t not in DOSE_TERMS]
    data["severity"]["terms"] = [t for t in data["severity"]["terms"] if t != "log_dose"]
    data["name"] = f"{spec.name}-no-dose"
    return ModelSpec.model_validate(data)


def meta_comparison(table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Where the model wins or loses against the random-effects meta-analysis, row by row.

    Returns the per-row table (``diff`` = lpd - lpd_meta, nats; positive: the model
    predicted the left-out row better) and its sums by outcome, by unit and by trial,
    each with the SE of the sum (sqrt(n var(diff)), as :func:`elpd_difference`) and the
    number of rows where the model is worse.
    """
    cols = ["trial", "row_id", "outcome", "unit", "n", "observed", "pred_median", "lo90",
            "hi90", "meta_rate", "lpd", "lpd_meta"]  # fmt: skip
    rows = table[cols].copy()
    rows["meta_expected"] = rows["meta_rate"] * rows["n"]
    rows["diff"] = rows["lpd"] - rows["lpd_meta"]

    def groups(by: str) -> dict:
        out = {}
        for key, g in rows.groupby(by, sort=True):
            d = g["diff"].to_numpy(float)
            # one row: no spread to estimate an SE from (None: JSON null, never NaN)
            se = float(np.sqrt(d.size * d.var(ddof=1))) if d.size > 1 else None
            out[str(key)] = {"n_rows": int(d.size), "diff": float(d.sum()), "se": se,
                             "rows_worse": int((d < 0).sum())}  # fmt: skip
        return out

    summary = {
        "total": elpd_difference(rows["lpd"], rows["lpd_meta"]),
        "by_outcome": groups("outcome"),
        "by_unit": groups("unit"),
        "by_trial": groups("trial"),
    }
    return rows, summary


FitFn = Callable[[np.ndarray], FitOutput]  # row weights (0/1 per fitted row) -> posterior
