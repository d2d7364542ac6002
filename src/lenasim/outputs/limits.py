"""Risk limits evaluated on simulated draws: P(risk > limit), the overdose-control verdict,
OncoBayes2-style interval probabilities, and paired P(safer) between two schedules.

The definition of a limit (and the defaults) is :mod:`lenasim.core.limits`. The risk of
a limit is computed per posterior draw from a run's dataset (``draws.nc``): the
per-cycle risk in ``cycle`` (variable ``per_cycle``) or the cumulative risk by the end
of ``cycle`` (``cumulative``). A draw in which nobody starts the cycle (everyone has
stopped) has no per-cycle risk; it counts as not exceeding the limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.limits import BANDS, RiskLimit, RiskLimits

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

__all__ = ["evaluate_limits", "interval_probabilities", "limit_cycle", "paired_safer", "risk_draws"]


def limit_cycle(limit: RiskLimit, cycles: np.ndarray) -> int:
    """The cycle a limit looks at, in the run's cycles (1-based)."""
    last = int(np.max(cycles))
    cyc = limit.cycle if limit.cycle is not None else (last if limit.cumulative else 1)
    if cyc not in set(np.asarray(cycles).tolist()):
        raise ValueError(f"the limit looks at cycle {cyc} but the run has cycles 1-{last}")
    return int(cyc)


def risk_draws(ds: xr.Dataset, event: str, limit: RiskLimit) -> np.ndarray:
    """(S,) the limited risk in every posterior draw."""
    var = "cumulative" if limit.cumulative else "per_cycle"
    cyc = limit_cycle(limit, ds["cycle"].values)
    da = ds[var].sel(event=event, cycle=cyc).transpose("draw")
    return np.asarray(da.values, float)


def evaluate_limits(ds: xr.Dataset, limits: RiskLimits) -> pd.DataFrame:
    """One row per limit: the risk's mean and 90% interval over draws, P(risk > max), and
    whether the schedule is acceptable (P(risk > max) <= ``limits.max_probability``)."""
    import pandas as pd

    n_cyc = int(ds["cycle"].values.max())
    rows = []
    for event, lim in limits.items():
        r = risk_draws(ds, event, lim)
        ok = ~np.isnan(r)
        p = float(np.mean(np.where(ok, r, 0.0) > lim.max))
        rows.append({
            "event": event,
            "limit": lim.describe(event, n_cyc),
            "cycle": limit_cycle(lim, ds["cycle"].values),
            "cumulative": lim.cumulative,
            "max": lim.max,
            "mean": float(np.nanmean(r)) if ok.any() else np.nan,
            "q05": float(np.nanquantile(r, 0.05)) if ok.any() else np.nan,
            "q95": float(np.nanquantile(r, 0.95)) if ok.any() else np.nan,
            "p_exceed": p,
            "max_probability": limits.max_probability,
            "acceptable": p <= limits.max_probability,
        })  # fmt: skip
    return pd.DataFrame(rows)


def interval_probabilities(
    ds: xr.Dataset, bands: dict[str, tuple[float, ...]] | None = None, cycle: int = 1
) -> pd.DataFrame:
    """P(per-cycle risk in each interval) for every event, in ``cycle`` (OncoBayes2's
    interval probabilities). Columns: event, lower, upper, interval, probability."""
    import pandas as pd

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
    return pd.DataFrame(rows)


def paired_safer(
    reference: xr.Dataset, other: xr.Dataset, limits: RiskLimits, *, paired: bool = True
) -> pd.DataFrame:
    """Per limit, P(``other``'s risk < ``reference``'s): paired draw by draw when the runs
    share posterior draws and seed (common random numbers), else over independent pairs
    of draws. Ties count one half; ``identical`` is True when the two risks are equal in
    every draw (the schedules do not differ for this limit)."""
    import pandas as pd

    rows = []
    for event, lim in limits.items():
        a = risk_draws(reference, event, lim)
        b = risk_draws(other, event, lim)
        a, b = np.nan_to_num(a), np.nan_to_num(b)
        if paired:
            if a.shape != b.shape:
                raise ValueError("paired comparison needs the same posterior draws in both runs")
            less, tie = np.mean(b < a), np.mean(b == a)
            identical = bool(np.all(a == b))
        else:
            less = np.mean(b[None, :] < a[:, None])
            tie = np.mean(b[None, :] == a[:, None])
            identical = False
        rows.append({
            "event": event,
            "limit": lim.describe(event, int(reference["cycle"].values.max())),
            "p_safer": float(less + 0.5 * tie),
            "identical": identical,
            "paired": paired,
        })  # fmt: skip
    return pd.DataFrame(rows)
