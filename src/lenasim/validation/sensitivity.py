"""Prior sensitivity: the shipped scenario configs simulated on two posteriors
(same seed, common random numbers), cycle-1 and cumulative risk side by side."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from lenasim.core.hazard import HazardDraws
from lenasim.outputs.tables.summaries import headline
from lenasim.simulation.engine import simulate
from lenasim.simulation.scenario import load_scenario
from lenasim.simulation.streams import select_draws


def headline_numbers(draws: HazardDraws, configs: Iterable[Path], *, patients: int = 300,
                     n_draws: int = 200) -> pd.DataFrame:  # fmt: skip
    """Cycle-1 and cumulative risk per event of each scenario config (the ``cycle 1`` and
    ``cumulative`` rows of :func:`lenasim.outputs.tables.summaries.headline`), simulated on
    ``n_draws`` evenly spaced posterior draws."""
    tables = []
    for path in configs:
        sc = load_scenario(path)
        idx = select_draws(draws.n_draws, min(n_draws, draws.n_draws), sc.seed)
        ds = simulate(sc.regimen.expand(), sc.population, sc.rules, draws.take(idx),
                      n_patients=patients, seed=sc.seed, population_effect=sc.population_effect,
                      posterior_index=idx, light=True)  # fmt: skip
        h = headline(ds)
        h = h[(h["quantity"] == "cycle 1") | h["quantity"].str.startswith("cumulative")]
        tables.append(h.assign(config=sc.name))
    cols = ["config", "event", "quantity", "mean", "q05", "q95"]
    return pd.concat(tables, ignore_index=True)[cols] if tables else pd.DataFrame(columns=cols)


def prior_sensitivity(base: HazardDraws, widened: HazardDraws, configs: Iterable[Path],
                      **kw) -> pd.DataFrame:  # fmt: skip
    """Headline numbers on two posteriors, side by side, with the shift of the mean."""
    configs = list(configs)
    a = headline_numbers(base, configs, **kw)
    b = headline_numbers(widened, configs, **kw)
    m = a.merge(b, on=["config", "event", "quantity"], suffixes=("_default", "_widened"))
    m["shift"] = m["mean_widened"] - m["mean_default"]
    return m
