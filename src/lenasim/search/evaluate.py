"""One candidate schedule -> one row of candidates.csv.

Every candidate is simulated as the scenario it is
(:func:`~lenasim.search.space.candidate_scenario`) by the engine, on the same posterior
draws and seed, so the random numbers are common to all candidates and differences
between them are paired. The row holds:

- each event's cycle-1 and cumulative risk (by the last cycle): mean and 90% interval
  over posterior draws, as ``lenasim run`` summarises them;
- each event's peak cycle (where its mean per-cycle risk is highest);
- per risk limit, the risk's mean, median, 90% interval and critical quantile
  (``qcrit``, at 1 - max_probability), P(risk > limit) and its MCSE
  (:func:`lenasim.outputs.judgements.limits.limit_rows`); ``undecided`` when a limit that
  could decide feasibility is within 2 MCSE of the threshold; ``max_excess``, the largest
  P(exceed) minus the overdose-control threshold (<= 0 when every limit is met), and
  ``max_risk_ratio``, the largest mean risk over its limit (which orders schedules that
  all exceed a limit with certainty);
- the objectives of :data:`lenasim.search.config.OBJECTIVES`, per draw then summarised
  over draws (mean, q05, q95), except ``days_to_target``, a property of the schedule.

Only numbers and strings leave this module (no datasets), so a batch evaluated on a Dask
worker travels back as a few kB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.hazard import HazardDraws
from lenasim.core.limits import RiskLimit
from lenasim.outputs.judgements.limits import limit_rows, peak_cycle
from lenasim.outputs.tables.summaries import QUANTILES
from lenasim.search.config import SearchConfig
from lenasim.search.space import Candidate, candidate_scenario, days_to_target
from lenasim.simulation.population import simulate_scenario

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from lenasim.simulation.dataset import RunDataset

__all__ = [
    "Cohort",
    "candidate_row",
    "evaluate_batch",
    "limit_key",
    "objective_draws",
    "peak_cycles",
    "simulate_candidate",
]


@dataclass(frozen=True)
class Cohort:
    """What every candidate shares: the posterior draws (already subsampled) and their
    indices in the posterior, which key the random streams. Scattered once to Dask."""

    draws: HazardDraws
    posterior_index: np.ndarray


def limit_key(event: str, limit: RiskLimit, n_cycles: int) -> str:
    """Column stem of a limit (:meth:`lenasim.core.limits.RiskLimit.key`): ``tls_c1``
    (cycle 1), ``tls_each12`` (each of cycles 1-12) or ``flare_grade3plus_cum12``."""
    return limit.key(event, n_cycles)


def simulate_candidate(
    cfg: SearchConfig, cand: Candidate, cohort: Cohort, threads: int | None = None
) -> RunDataset | xr.Dataset:
    """The candidate's run dataset (as ``lenasim run`` computes it): the engine's NumPy
    :class:`~lenasim.simulation.dataset.RunDataset` (the same numbers as the
    ``xarray.Dataset`` made from it, without building one per candidate), or, for a
    population with characteristics (its groups mixed by xarray arithmetic), the latter."""
    scenario = candidate_scenario(cfg, cand)
    light = {"light": True} if scenario.population.characteristics is None else {}
    return simulate_scenario(
        scenario,
        cohort.draws,
        posterior_index=cohort.posterior_index,
        threads=threads,
        **light,
    )


def objective_draws(
    ds: xr.Dataset, objective_cycles: int, cycle_days: np.ndarray
) -> dict[str, np.ndarray]:
    """(S,) per posterior draw: ``dose_intensity`` (mg per day over cycles 1..K, per
    patient who started: stopped patients count 0 mg; cycles weighted by their
    ``cycle_days``), ``share_at_target`` (share of all patients on the target dose in
    cycle K) and ``share_stopped`` (by the end of the last cycle). K = ``objective_cycles``."""
    k = objective_cycles
    on = ds["share_on"].transpose("draw", "cycle").values
    # Cycles nobody starts have NaN means over "patients starting the cycle": they give 0.
    per_patient = np.nan_to_num(ds["dose_intensity"].transpose("draw", "cycle").values) * on
    days = np.asarray(cycle_days, float)[:k]
    at_target = np.nan_to_num(ds["share_at_target"].transpose("draw", "cycle").values)
    return {
        "dose_intensity": per_patient[:, :k] @ days / days.sum(),
        "share_at_target": at_target[:, k - 1] * on[:, k - 1],
        "share_stopped": ds["share_stopped"].transpose("draw", "cycle").values[:, -1],
    }


def _summary(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, q05 and q95 over draws (axis 0), ignoring NaN, as ``lenasim run``'s tables
    summarise (:mod:`lenasim.outputs.tables.summaries`)."""
    if np.isnan(a).any():
        q = np.nanquantile(a, QUANTILES, axis=0)
        return np.nanmean(a, axis=0), q[0], q[-1]
    q = np.quantile(a, QUANTILES, axis=0)
    return np.mean(a, axis=0), q[0], q[-1]


def peak_cycles(ds: xr.Dataset) -> dict[str, int]:
    """Per event, ``<event>_peak_cycle``: the cycle whose posterior mean per-cycle risk is
    the highest (where a schedule puts its risk)."""

    return {f"{e}_peak_cycle": peak_cycle(ds, str(e)) for e in ds["event"].values}


def candidate_row(cfg: SearchConfig, cand: Candidate, ds: xr.Dataset) -> dict[str, object]:
    """The candidate's row of candidates.csv (see the module docstring)."""
    n_cyc = int(ds.sizes["cycle"])
    row: dict[str, object] = {"id": cand.id, "schedule": cand.describe(), **cand.params()}
    events = [str(e) for e in ds["event"].values]
    first = ds["per_cycle"].transpose("draw", "event", "cycle").values[:, :, 0]
    last = ds["cumulative"].transpose("draw", "event", "cycle").values[:, :, -1]
    stats = {"c1": _summary(first), "cum": _summary(last)}
    for i, event in enumerate(events):
        for label, (mean, lo, hi) in stats.items():
            row[f"{event}_{label}_mean"] = float(mean[i])
            row[f"{event}_{label}_q05"] = float(lo[i])
            row[f"{event}_{label}_q95"] = float(hi[i])
    row.update(peak_cycles(ds))
    lim = limit_rows(ds, cfg.limits).rows()  # evaluate_limits' rows, without pandas
    excess, ratio, decided = [], [], []
    for (event, limit), r in zip(cfg.limits.items(), lim, strict=True):
        key = limit_key(event, limit, n_cyc)
        for stat in ("mean", "q05", "q50", "q95"):
            row[f"risk_{key}_{stat}"] = float(r[stat])
        row[f"risk_{key}_qcrit"] = float(r["q_critical"])
        row[f"p_exceed_{key}"] = float(r["p_exceed"])
        row[f"p_exceed_{key}_mcse"] = float(r["p_exceed_mcse"])
        excess.append(float(r["p_exceed"]) - cfg.limits.max_probability)
        ratio.append(float(r["mean"]) / limit.max)
        decided.append(bool(r["decided"]))
    row["max_excess"] = max(excess)
    row["max_risk_ratio"] = max(ratio)
    # Undecided: a limit's P(exceed) within 2 MCSE of the threshold, and that limit could
    # change the schedule's feasibility (a limit failed with certainty elsewhere cannot).
    fails_clearly = any(e > 0 and d for e, d in zip(excess, decided, strict=True))
    row["undecided"] = bool(not all(decided) and not fails_clearly)
    row["n_draws"] = int(ds.sizes["draw"])
    schedule = cand.regimen.expand()
    row["days_to_target"] = days_to_target(schedule)
    for name, values in objective_draws(ds, cfg.objective_cycles, schedule.cycle_days).items():
        for stat, v in zip(("mean", "q05", "q95"), _summary(values), strict=True):
            row[f"{name}_{stat}"] = float(v)
    return row


def evaluate_batch(
    cfg: SearchConfig,
    cands: list[Candidate],
    cohort: Cohort,
    threads: int | None = None,
) -> list[dict[str, object]]:
    """Rows of a batch of candidates (a Dask task, or a step of the in-process loop)."""
    rows = []
    for cand in cands:
        ds = simulate_candidate(cfg, cand, cohort, threads=threads)
        rows.append(candidate_row(cfg, cand, ds))
    return rows
