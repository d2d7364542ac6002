"""The search's figure: the Pareto front of the first objective against each limited risk.

One panel per risk limit: every candidate at (objective, the risk's critical quantile:
its quantile at 1 - max_probability, the 75th percentile by default), filled when it
meets every limit and hollow otherwise. The verdict is P(risk > limit) <= max_probability,
which is the critical quantile at or below the limit: so in its own panel a schedule is
below the dashed limit line exactly when it meets that limit (a filled point above the
line cannot occur; a hollow point below it fails another panel's limit). The panel's
Pareto front as a step line; the reference schedules as labelled stars; the best
candidate ringed. Matplotlib is imported inside the function (no pyplot, no global state).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenasim.outputs.judgements.decision import critical_words as _ordinal
from lenasim.search.config import OBJECTIVES, SearchConfig
from lenasim.search.evaluate import limit_key
from lenasim.search.pareto import objective_column, pareto_front

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["objective_label", "plot_pareto", "save_pareto"]

_FEASIBLE, _INFEASIBLE, _FRONT, _LIMIT = "#0072B2", "#9A9A9A", "#D55E00", "#B22222"


def objective_label(name: str, cfg: SearchConfig) -> str:
    k = cfg.objective_cycles
    return {
        "days_to_target": "Days from the first dose to the target dose",
        "dose_intensity": f"Dose delivered over cycles 1-{k} (mg/day)",
        "share_at_target": f"Patients on the target dose in cycle {k}",
        "share_stopped": f"Patients stopped by cycle {cfg.space.cycles}",
    }[name]


def plot_pareto(
    table: pd.DataFrame, cfg: SearchConfig, references: pd.DataFrame | None = None, axes: Any = None
) -> Figure:
    """The Pareto panels (see the module docstring). ``table`` is the ranked candidates
    (:func:`lenasim.search.pareto.rank_table`), ``references`` the reference rows."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    limits = cfg.limits.items()
    n = max(1, len(limits))
    if axes is None:
        fig = Figure(figsize=(5.4 * n, 4.9))
        axes = fig.subplots(1, n, squeeze=False)[0]
        fig.subplots_adjust(left=0.8 / (5.4 * n), right=0.98, bottom=0.2, top=0.86, wspace=0.3)
    else:
        axes = list(np.ravel(np.asarray(axes, dtype=object)))
        fig = axes[0].figure
    first = cfg.objectives[0]
    xcol = objective_column(first)
    x = table[xcol].to_numpy(float)
    feasible = table["feasible"].to_numpy(bool)
    for ax, (event, limit) in zip(axes, limits, strict=False):
        ycol = f"risk_{limit_key(event, limit, cfg.space.cycles)}_qcrit"
        y = table[ycol].to_numpy(float)
        fails = f"fails a limit: P(exceed) > {cfg.limits.max_probability:g}"
        ax.scatter(x[~feasible], y[~feasible], s=14, facecolors="none", edgecolors=_INFEASIBLE,
                   linewidths=0.8, label=fails)  # fmt: skip
        ax.scatter(x[feasible], y[feasible], s=16, color=_FEASIBLE, label="within every limit")
        front = pareto_front(np.column_stack([x, y]), [OBJECTIVES[first][0], "min"])
        fx, fy = x[front], y[front]
        order = np.argsort(fx)
        ax.step(fx[order], fy[order], where="post" if OBJECTIVES[first][0] == "min" else "pre",
                color=_FRONT, lw=1.2, label="Pareto front")  # fmt: skip
        ax.axhline(limit.max, color=_LIMIT, ls="--", lw=1.0,
                   label="the panel's limit (below: meets it)")  # fmt: skip
        if len(table) and feasible[0]:
            ax.scatter([x[0]], [y[0]], s=110, facecolors="none", edgecolors="black", lw=1.3,
                       label="best within the limits")  # fmt: skip
        if references is not None and len(references):
            rx = references[xcol].to_numpy(float)
            ry = references[ycol].to_numpy(float)
            ax.scatter(rx, ry, marker="*", s=140, color="black", zorder=5, label="reference")
            for name, a, b in zip(references["id"], rx, ry, strict=True):
                ax.annotate(str(name), (a, b), xytext=(5, 4), textcoords="offset points",
                            fontsize=8)  # fmt: skip
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=None))
        if first in ("share_at_target", "share_stopped"):
            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=None))
        ax.set_ylim(bottom=0)
        ax.set_xlabel(objective_label(first, cfg), fontsize=9)
        ax.set_ylabel(f"{_ordinal(1 - cfg.limits.max_probability)} of the risk", fontsize=9)
        ax.set_title("\n".join(textwrap.wrap(limit.describe(event, cfg.space.cycles), 44)),
                     fontsize=9.5)  # fmt: skip
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    n_ok = int(feasible.sum())
    fig.suptitle(
        f"search {cfg.name}: {len(table)} schedules, {n_ok} within every limit\n"
        f"(P(risk > limit) <= {cfg.limits.max_probability:g}, i.e. the "
        f"{_ordinal(1 - cfg.limits.max_probability)} of the risk below the limit)",
        fontsize=10,
    )
    return fig


def save_pareto(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=130)
    return path
