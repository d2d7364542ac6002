"""The decision table of a run: each risk limit with the posterior probability that the
risk exceeds it and the overdose-control verdict, and OncoBayes2's interval
probabilities of cycle-1 risk per event. The evaluation is :mod:`lenasim.outputs.judgements.limits`
(the one the schedule search uses); this module words and prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lenasim.core.limits import RiskLimit, RiskLimits
from lenasim.core.vocabulary import event_title
from lenasim.outputs.judgements.limits import band_rows, limit_rows
from lenasim.outputs.tables.formats import pct, skewed
from lenasim.outputs.tables.frame import Columns, as_columns

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

__all__ = [
    "UNDECIDED",
    "band_columns",
    "bands_table",
    "critical_words",
    "decision_rows",
    "format_bands",
    "format_limits",
    "limit_words",
    "limits_table",
    "verdict",
]

LIMIT_COLUMNS = ("event", "limit", "first_cycle", "cycle", "cumulative", "each_cycle", "max",
                 "n_draws", "mean", "q05", "q50", "q95", "q_critical", "critical_level",
                 "p_exceed", "p_exceed_mcse", "max_probability", "acceptable", "decided",
                 "peak_cycle")  # fmt: skip
UNDECIDED = "undecided: run more draws"


def limit_words(event: str, limit: RiskLimit, n_cycles: int) -> str:
    """A limit as a protocol would state it, e.g. 'Tumor lysis syndrome in cycle 1 <= 2%'
    (:meth:`lenasim.core.limits.RiskLimit.describe`)."""
    return limit.describe(event, n_cycles)


def verdict(acceptable: bool, decided: bool) -> str:
    """'acceptable', 'not acceptable', or 'undecided: run more draws' when the threshold
    lies within 2 MCSE of P(exceed)."""
    if not decided:
        return UNDECIDED
    return "acceptable" if acceptable else "not acceptable"


def limits_table(ds: xr.Dataset, limits: RiskLimits) -> pd.DataFrame:
    """:func:`decision_rows` as a DataFrame."""
    return decision_rows(ds, limits).to_pandas()


def decision_rows(ds: xr.Dataset, limits: RiskLimits) -> Columns:
    """:func:`lenasim.outputs.judgements.limits.limit_rows` with the verdict (``verdict``:
    acceptable / not acceptable / undecided: run more draws); what ``limits.csv`` holds."""
    df = limit_rows(ds, limits)
    if not len(df):
        return Columns({c: [] for c in [*LIMIT_COLUMNS, "verdict"]})
    said = [verdict(a, d) for a, d in zip(df.values("acceptable"), df.values("decided"),
                                          strict=True)]  # fmt: skip
    if "unreached" in df:  # a limit on cycles no patient reaches: said in words, not NaN
        gone = df.pop("unreached").astype(bool).tolist()
        said = [f"acceptable: no patient reaches cycle {c}" if g else v
                for v, g, c in zip(said, gone, df.values("first_cycle"), strict=True)]  # fmt: skip
    df["verdict"] = said
    return df


def critical_words(level: float) -> str:
    """'75th percentile' for a critical level of 0.75."""
    n = round(100 * level)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix} percentile"


def bands_table(ds: xr.Dataset) -> pd.DataFrame:
    """:func:`band_columns` as a DataFrame."""
    return band_columns(ds).to_pandas()


def band_columns(ds: xr.Dataset) -> Columns:
    """P(cycle-1 risk in each interval) per event (``bands.csv``)."""
    return band_rows(ds, cycle=1)


def format_limits(df: Columns | pd.DataFrame, max_probability: float) -> str:
    """The decision table as text: per limit, P(exceed) with its MCSE, the risk's
    quantile the verdict uses, its median and mean with the 90% interval, the verdict."""
    df = as_columns(df)
    if not len(df):
        return "Risk limits: none stated (`limits:` in the config)."
    q_name = critical_words(1 - max_probability)
    head = (
        f"Risk limits (escalation with overdose control: acceptable when "
        f"P(risk > limit) <= {max_probability:g}, that is when the risk's {q_name} is "
        f"within the limit; undecided when {max_probability:g} is within 2 Monte Carlo "
        "errors of P(exceed)):"
    )
    rows = [
        (r.limit, f"{r.p_exceed:.2f} +/- {r.p_exceed_mcse:.2f}", pct(r.q_critical),
         skewed(r.q50, r.mean, r.q05, r.q95),
         r.verdict.upper() if r.verdict == "not acceptable" else r.verdict)
        for r in df.itertuples()
    ]  # fmt: skip
    header = ("limit", "P(exceed) +/- MCSE", q_name, "risk", "verdict")
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]
    lines = [head, "  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  " + "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)) for r in rows]
    n_def = [int(r.n_draws) for r in df.itertuples()]
    total = int(max(n_def)) if n_def else 0
    short = [r.limit for r in df.itertuples() if r.n_draws < total]
    if short:
        lines.append(f"  (over the draws where some patient starts the cycle: {', '.join(short)})")
    return "\n".join(line.rstrip() for line in lines)


def format_bands(df: Columns | pd.DataFrame) -> str:
    """Interval probabilities of cycle-1 risk as text, one line per event."""
    lines = ["Cycle-1 risk, posterior probability of each interval (OncoBayes2 style):"]
    for event, g in as_columns(df).groupby("event"):
        cells = ", ".join(f"{r.interval} {r.probability:.2f}" for r in g.itertuples())
        lines.append(f"  {event_title(str(event))}: {cells}")
    return "\n".join(lines)
