"""Feasibility, the Pareto front and the ranking of candidates (pure table functions).

A candidate is *feasible* when every risk limit is met (P(risk > limit) at most the
overdose-control threshold: ``max_excess <= 0``). The Pareto front is taken over the
first objective (speed to the target dose by default) and, for every limit, the risk's
critical quantile (its quantile at 1 - max_probability, the 75th percentile by default:
the number the verdict compares with the limit, so the front and feasibility follow one
rule): a candidate is on it when no other candidate is at least as good on all of them
and strictly better on one. The ranking puts feasible candidates first (those
whose verdict is decided before the undecided ones), ordered by the objectives in the
config's order (means; ties by the next objective, then by
``max_excess``, then in the order of generation); infeasible ones follow, closest to the
limits first (smallest ``max_excess``, then smallest ``max_risk_ratio``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lenasim.search.config import OBJECTIVES, SearchConfig
from lenasim.search.evaluate import limit_key

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["objective_column", "pareto_front", "rank_table", "risk_columns"]


def pareto_front(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """(n,) bool: the rows of ``values`` (n, m) that no other row dominates.

    ``senses[j]`` is ``"min"`` or ``"max"`` for column j. Row a dominates row b when a is
    at least as good as b in every column and strictly better in one; equal rows do not
    dominate each other (both stay on the front). NaN counts as the worst value.
    """
    v = np.asarray(values, float)
    if v.ndim != 2 or v.shape[1] != len(senses):
        raise ValueError(f"values must be (n, {len(senses)}), got {v.shape}")
    if any(s not in ("min", "max") for s in senses):
        raise ValueError(f"senses must be 'min' or 'max', got {list(senses)}")
    sign = np.array([1.0 if s == "min" else -1.0 for s in senses])
    cost = np.where(np.isnan(v), np.inf, v * sign)  # smaller is better in every column
    n = cost.shape[0]
    front = np.ones(n, bool)
    # Visit rows in lexicographic order: a row's dominators all come before it, and one of
    # them is on the front (dominance is transitive), so each row is compared with the
    # front found so far only.
    order = np.lexsort(cost.T[::-1])
    kept: list[int] = []
    for i in order:
        if kept:
            k = cost[kept]
            dominated = np.all(k <= cost[i], axis=1) & np.any(k < cost[i], axis=1)
            if dominated.any():
                front[i] = False
                continue
        kept.append(int(i))
    return front


def objective_column(name: str) -> str:
    """The candidates.csv column an objective is ranked on (its mean over draws)."""
    return name if name == "days_to_target" else f"{name}_mean"


def risk_columns(cfg: SearchConfig) -> list[str]:
    """The critical-quantile risk column of every limit (``risk_<key>_qcrit``), in the
    limits' order."""
    n = cfg.space.cycles
    return [f"risk_{limit_key(e, lim, n)}_qcrit" for e, lim in cfg.limits.items()]


def rank_table(table: pd.DataFrame, cfg: SearchConfig) -> pd.DataFrame:
    """Add ``feasible``, ``pareto`` and ``rank`` (1 = best; feasible first) and sort by rank.
    ``table`` is in the order the candidates were generated (the last tie-break)."""
    df = table.copy()
    df["feasible"] = df["max_excess"] <= 0
    first = cfg.objectives[0]
    cols = [objective_column(first), *risk_columns(cfg)]
    senses = [OBJECTIVES[first][0]] + ["min"] * (len(cols) - 1)
    df["pareto"] = pareto_front(df[cols].to_numpy(float), senses)
    keys: list[np.ndarray] = []  # np.lexsort: the last key is the primary one
    keys.append(np.arange(len(df)))  # ties: the order of generation
    keys.append(df["max_excess"].to_numpy(float))
    for name in reversed(cfg.objectives):
        v = df[objective_column(name)].to_numpy(float)
        keys.append(np.where(np.isnan(v), np.inf, v if OBJECTIVES[name][0] == "min" else -v))
    # Infeasible candidates: closest to the limits first (P(exceed), then the mean risk
    # over the limit), then by the objectives.
    feasible = df["feasible"].to_numpy()
    keys.append(np.where(feasible, 0.0, df["max_risk_ratio"].to_numpy(float)))
    keys.append(np.where(feasible, 0.0, df["max_excess"].to_numpy(float)))
    # Feasible schedules whose verdict is undecided (within 2 MCSE of the threshold even
    # after more draws) come after the decided ones: a pass inside the noise is no pass.
    undecided = df["undecided"].to_numpy(bool) if "undecided" in df else np.zeros(len(df), bool)
    keys.append(feasible & undecided)
    keys.append(~feasible)
    order = np.lexsort(keys)
    df = df.iloc[order].reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df
