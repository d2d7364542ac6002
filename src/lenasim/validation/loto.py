"""Leave-one-trial-out: refit without each trial, predict its rows as a new trial,
ELPD and coverage summaries, the comparison with a model without dose terms."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from lenasim.core.hazard import HazardDraws
from lenasim.model.likelihood import prepare
from lenasim.model.spec import ModelSpec
from lenasim.validation.predictive import (
    EFFECTS_PER_DRAW,
    baseline_predictive,
    meta_analysis_predictive,
    predict_rows,
    randomized_pit,
)

# Per-refit sampler settings (short on purpose: there are one refit per trial).
REFIT_CHAINS = 2


REFIT_DRAWS = 300


REFIT_TUNE = 300


DOSE_TERMS = ("log_dose", "log_frac_on", "rise")


@dataclass
class FitOutput:
    draws: HazardDraws
    diagnostics: dict = field(default_factory=dict)
    seconds: float = 0.0


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
    """The spec without dose terms: log_dose, log_frac_on and rise dropped from every
    event, log_dose from the severity."""
    data = spec.model_dump()
    for ev in data["events"].values():
        ev["terms"] = [t for t in ev["terms"] if t not in DOSE_TERMS]
    data["severity"]["terms"] = [t for t in data["severity"]["terms"] if t != "log_dose"]
    data["name"] = f"{spec.name}-no-dose"
    return ModelSpec.model_validate(data)


FitFn = Callable[[np.ndarray], FitOutput]  # row weights (0/1 per fitted row) -> posterior
