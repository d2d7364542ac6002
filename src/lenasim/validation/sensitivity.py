"""Prior sensitivity: the shipped scenario configs simulated on two posteriors
(same seed, common random numbers), cycle-1 and cumulative risk side by side."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.hazard import HazardDraws


def headline_numbers(draws: HazardDraws, configs: Iterable[Path], *, patients: int = 300,
                     n_draws: int = 200) -> pd.DataFrame:  # fmt: skip
    """Cycle-1 and cumulative risk per event of each scenario config, simulated with
    the teammate's engine on ``n_draws`` evenly spaced posterior draws."""
    from lenasim.model.posterior import select_draws
    from lenasim.simulation.engine import simulate
    from lenasim.simulation.scenario import load_scenario

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
            for what, a in (
                ("cycle 1", pc[:, e, 0]),
                (f"cumulative ({pc.shape[2]} cycles)", cum[:, e, -1]),
            ):
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
