"""Risk limits evaluated on simulated draws: P(risk > limit), the overdose-control verdict,
OncoBayes2-style interval probabilities, and paired P(safer) between two schedules.

The definition of a limit (and the defaults) is :mod:`lenasim.core.limits`. The risk of
a limit is computed per posterior draw from a run's dataset (``draws.nc``): the
per-cycle risk in ``cycle`` (variable ``per_cycle``) or the cumulative risk by the end
of ``cycle`` (``cumulative``), or the largest per-cycle risk of cycles 1 to ``cycle``
(``each_cycle``). A draw in which nobody starts the cycle (everyone has stopped) has no
per-cycle risk; it is left out, and the number of draws used (``n_draws``) is stated.
Every probability carries its Monte Carlo standard error
(:func:`lenasim.outputs.tables.summaries.probability_mcse`), and
a verdict within 2 of them of its threshold is undecided.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.limits import BANDS, RiskLimit, RiskLimits
from lenasim.outputs.tables.frame import Columns
from lenasim.outputs.tables.summaries import probability_mcse

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

__all__ = [
    "band_rows",
    "evaluate_limits",
    "interval_probabilities",
    "is_decided",
    "limit_cycle",
    "limit_rows",
    "paired_safer",
    "peak_cycle",
    "risk_draws",
]


def limit_cycle(limit: RiskLimit, cycles: np.ndarray) -> int:
    """The last cycle a limit looks at, in the run's cycles (1-based)."""
    last = int(np.max(cycles))
    cyc = limit.last_cycle(last)
    if cyc not in set(np.asarray(cycles).tolist()):
        raise ValueError(f"the limit looks at cycle {cyc} but the run has cycles 1-{last}")
    return int(cyc)


def risk_draws(ds: xr.Dataset, event: str, limit: RiskLimit) -> np.ndarray:
    """(S,) the limited risk in every posterior draw: the per-cycle risk of the limit's
    cycle, the largest per-cycle risk of its window (``each_cycle``) or the cumulative
    risk by its end. NaN in a draw where it is undefined (nobody started the cycle)."""
    cyc = limit_cycle(limit, ds["cycle"].values)
    if limit.cumulative:
        return np.asarray(ds["cumulative"].sel(event=event, cycle=cyc).transpose("draw").values,
                          float)  # fmt: skip
    if not limit.each_cycle:
        return np.asarray(ds["per_cycle"].sel(event=event, cycle=cyc).transpose("draw").values,
                          float)  # fmt: skip
    first, last = limit.window(cyc)
    pc = ds["per_cycle"].sel(event=event, cycle=slice(first, last)).transpose("draw", "cycle")
    x = np.asarray(pc.values, float)
    out = np.full(x.shape[0], np.nan)
    ok = ~np.all(np.isnan(x), axis=1)
    out[ok] = np.nanmax(x[ok], axis=1)
    return out


def peak_cycle(ds: xr.Dataset, event: str, last: int | None = None) -> int:
    """The cycle (1..``last``) where the posterior mean per-cycle risk of ``event`` peaks."""
    pc = ds["per_cycle"].sel(event=event).transpose("draw", "cycle")
    cycles = np.asarray(pc["cycle"].values)
    x = np.asarray(pc.values, float)
    keep = cycles <= (last if last is not None else cycles.max())
    mean = [np.nanmean(c) if np.isfinite(c).any() else -np.inf for c in x[:, keep].T]
    return int(cycles[keep][int(np.argmax(mean))])


def is_decided(p: float, mcse: float, threshold: float) -> bool:
    """Whether a verdict P <= threshold stands clear of Monte Carlo error: the threshold
    lies more than 2 MCSE from the estimate (else "undecided: run more draws")."""
    return bool(abs(p - threshold) > 2.0 * mcse)


def evaluate_limits(ds: xr.Dataset, limits: RiskLimits) -> pd.DataFrame:
    """:func:`limit_rows` as a DataFrame."""
    return limit_rows(ds, limits).to_pandas()


def limit_rows(ds: xr.Dataset, limits: RiskLimits) -> Columns:
    """One row per limit over the draws where the risk is defined (``n_draws``): the
    risk's mean, median and 90% interval, ``q_critical`` (its quantile at 1 -
    ``max_probability`` of the draws' empirical distribution: at most the limit exactly
    when the schedule is acceptable; OncoBayes2's critical quantile), P(risk > max) with its MCSE
    (:func:`probability_mcse`), whether the schedule is acceptable (P(risk > max) <=
    ``limits.max_probability``) and whether that verdict is ``decided`` (the threshold
    more than 2 MCSE away), ``peak_cycle``, the cycle of the window where the mean
    per-cycle risk peaks, and ``unreached``: True for a limit whose cycles no patient
    reaches in any draw (none exposed: no draw exceeds it; its risk columns are 0 over 0
    draws, not NaN). A :class:`~lenasim.outputs.tables.frame.Columns` (NumPy only)."""
    n_cyc = int(ds["cycle"].values.max())
    level = 1.0 - limits.max_probability
    rows = []
    for event, lim in limits.items():
        r = risk_draws(ds, event, lim)
        r = r[~np.isnan(r)]
        if not r.size:  # no patient reaches the limit's cycles in any draw: none exposed
            rows.append(_unreached_row(event, lim, n_cyc, limits, ds))
            continue
        hits = (r > lim.max).astype(float)
        p = float(hits.mean()) if r.size else np.nan
        mcse = probability_mcse(hits)
        first, last = lim.window(limit_cycle(lim, ds["cycle"].values))
        q = np.quantile(r, [0.05, 0.5, 0.95]) if r.size else np.full(3, np.nan)
        # The critical quantile as the empirical distribution's (no interpolation): then
        # q_critical <= max exactly when P(risk > max) <= max_probability.
        crit = float(np.quantile(r, level, method="inverted_cdf")) if r.size else np.nan
        rows.append({
            "event": event,
            "limit": lim.describe(event, n_cyc),
            "first_cycle": first,
            "cycle": last,
            "cumulative": lim.cumulative,
            "each_cycle": lim.each_cycle,
            "max": lim.max,
            "n_draws": int(r.size),
            "mean": float(np.mean(r)) if r.size else np.nan,
            "q05": float(q[0]),
            "q50": float(q[1]),
            "q95": float(q[2]),
            "q_critical": crit,
            "critical_level": level,
            "p_exceed": p,
            "p_exceed_mcse": mcse,
            "max_probability": limits.max_probability,
            "acceptable": bool(p <= limits.max_probability),
            "decided": is_decided(p, mcse, limits.max_probability),
            "peak_cycle": peak_cycle(ds, event, last),
            "unreached": False,
        })  # fmt: skip
    return Columns.from_rows(rows)


def _unreached_row(event: str, lim: RiskLimit, n_cyc: int, limits: RiskLimits, ds) -> dict:
    """The row of a limit whose cycles no patient reaches in any draw (every virtual patient
    stopped before them): nobody is exposed there, so no draw exceeds the limit; the risk
    columns are 0 over ``n_draws`` = 0 draws (no NaN) and ``unreached`` says why."""
    first, last = lim.window(limit_cycle(lim, ds["cycle"].values))
    return {"event": event, "limit": lim.describe(event, n_cyc), "first_cycle": first,
            "cycle": last, "cumulative": lim.cumulative, "each_cycle": lim.each_cycle,
            "max": lim.max, "n_draws": 0, "mean": 0.0, "q05": 0.0, "q50": 0.0, "q95": 0.0,
            "q_critical": 0.0, "critical_level": 1.0 - limits.max_probability,
            "p_exceed": 0.0, "p_exceed_mcse": 0.0, "max_probability": limits.max_probability,
            "acceptable": True, "decided": True, "peak_cycle": first,
            "unreached": True}  # fmt: skip


def interval_probabilities(
    ds: xr.Dataset, bands: dict[str, tuple[float, ...]] | None = None, cycle: int = 1
) -> pd.DataFrame:
    """:func:`band_rows` as a DataFrame."""
    return band_rows(ds, bands, cycle).to_pandas()


def band_rows(
    ds: xr.Dataset, bands: dict[str, tuple[float, ...]] | None = None, cycle: int = 1
) -> Columns:
    """P(per-cycle risk in each interval) for every event, in ``cycle`` (OncoBayes2's
    interval probabilities). Columns: event, lower, upper, interval, probability."""
    bands = BANDS if bands is None else bands
    rows = []
    for event in [str(e) for e in ds["event"].values]:
        edges = bands.get(event)
        if edges is None:
            continue
        r = np.asarray(ds["per_cycle"].sel(event=event, cycle=cycle).values, float)
        r = r[~np.isnan(r)]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            top = r <= hi if hi >= 1.0 else r < hi
            p = float(np.mean((r >= lo) & top)) if r.size else np.nan
            label = f"{100 * lo:g}-{100 * hi:g}%"
            rows.append({"event": event, "lower": lo, "upper": hi, "interval": label,
                         "probability": p})  # fmt: skip
    return Columns.from_rows(rows)


def paired_safer(
    reference: xr.Dataset, other: xr.Dataset, limits: RiskLimits, *, paired: bool = True
) -> pd.DataFrame:
    """Per limit, P(``other``'s risk < ``reference``'s) with its MCSE: paired draw by draw
    when the runs share posterior draws and seed (common random numbers), else over
    independent pairs of draws. Ties count one half; draws where either risk is undefined
    (nobody started the cycle) are left out (``n_draws`` says how many were used);
    ``identical`` is True when the two risks are equal in every draw (the schedules do
    not differ for this limit)."""
    import pandas as pd

    rows = []
    for event, lim in limits.items():
        a = risk_draws(reference, event, lim)
        b = risk_draws(other, event, lim)
        if paired:
            if a.shape != b.shape:
                raise ValueError("paired comparison needs the same posterior draws in both runs")
            ok = ~(np.isnan(a) | np.isnan(b))
            a, b = a[ok], b[ok]
            hits = (b < a) + 0.5 * (b == a)
            identical = bool(np.all(a == b))
            mcse = probability_mcse(hits)
        else:
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            hits = np.mean(b[None, :] < a[:, None], axis=1) + 0.5 * np.mean(
                b[None, :] == a[:, None], axis=1
            )
            identical = False
            mcse = probability_mcse(hits)
        rows.append({
            "event": event,
            "limit": lim.describe(event, int(reference["cycle"].values.max())),
            "p_safer": float(np.mean(hits)) if hits.size else np.nan,
            "p_safer_mcse": mcse,
            "n_draws": int(a.size),
            "identical": identical,
            "paired": paired,
        })  # fmt: skip
    return pd.DataFrame(rows)
