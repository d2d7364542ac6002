"""The decision table of a run: each risk limit with the posterior probability that the
risk exceeds it and the overdose-control verdict, and OncoBayes2's interval
probabilities of cycle-1 risk per event. The evaluation is :mod:`lenasim.outputs.limits`
(the one the schedule search uses); this module words and prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.limits import RiskLimit, RiskLimits
from lenasim.outputs.limits import evaluate_limits, interval_probabilities

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

__all__ = ["bands_table", "format_bands", "format_limits", "limit_words", "limits_table"]

LIMIT_COLUMNS = ("event", "limit", "cycle", "cumulative", "max", "mean", "q05", "q95",
                 "p_exceed", "max_probability", "acceptable")  # fmt: skip
_SHORT = {
    "flare": "Flare (any grade)",
    "flare_grade3plus": "Flare grade >= 3",
    "tls": "TLS",
    "neutropenia": "Neutropenia grade 3-4",
}


def limit_words(event: str, limit: RiskLimit, n_cycles: int) -> str:
    """A limit as a protocol would state it, e.g. 'TLS in cycle 1 <= 2%'."""
    if limit.cumulative:
        end = limit.cycle or n_cycles
        where = f"by the end of cycle {end}"
    else:
        where = f"in cycle {limit.cycle or 1}"
    return f"{_SHORT.get(event, event)} {where} <= {100 * limit.max:g}%"


def limits_table(ds: xr.Dataset, limits: RiskLimits) -> pd.DataFrame:
    """:func:`evaluate_limits` with the limit in words (column ``limit``) and the verdict
    (``verdict``: acceptable / not acceptable); what ``limits.csv`` holds."""
    df = evaluate_limits(ds, limits)
    if not len(df):
        import pandas as pd

        return pd.DataFrame(columns=[*LIMIT_COLUMNS, "verdict"])
    n_cyc = int(ds["cycle"].values.max())
    df["limit"] = [limit_words(e, lim, n_cyc) for e, lim in limits.items()]
    df["verdict"] = np.where(df["acceptable"], "acceptable", "not acceptable")
    return df


def bands_table(ds: xr.Dataset) -> pd.DataFrame:
    """P(cycle-1 risk in each interval) per event (``bands.csv``)."""
    return interval_probabilities(ds, cycle=1)


def _pct(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{100 * x:.1f}%"


def format_limits(df: pd.DataFrame, max_probability: float) -> str:
    """The decision table as text."""
    if not len(df):
        return "Risk limits: none stated (`limits:` in the config)."
    head = (
        f"Risk limits (escalation with overdose control: acceptable when "
        f"P(risk > limit) <= {max_probability:g}):"
    )
    rows = [
        (r.limit, f"{_pct(r.mean)} ({_pct(r.q05)} to {_pct(r.q95)})", f"{r.p_exceed:.2f}",
         r.verdict.upper() if not r.acceptable else r.verdict)
        for r in df.itertuples()
    ]  # fmt: skip
    header = ("limit", "risk, mean (90% interval)", "P(exceed)", "verdict")
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(4)]
    lines = [head, "  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  " + "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def format_bands(df: pd.DataFrame) -> str:
    """Interval probabilities of cycle-1 risk as text, one line per event."""
    lines = ["Cycle-1 risk, posterior probability of each interval (OncoBayes2 style):"]
    for event, g in df.groupby("event", sort=False):
        cells = ", ".join(f"{r.interval} {r.probability:.2f}" for r in g.itertuples())
        lines.append(f"  {_SHORT.get(str(event), str(event))}: {cells}")
    return "\n".join(lines)
