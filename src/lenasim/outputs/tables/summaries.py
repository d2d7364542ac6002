"""Simulated draws (draws.nc) -> tidy tables and the compact terminal table.

Across posterior draws each quantity is summarised by its mean, the 5%, 50% and 95%
quantiles and ``mcse``, the Monte Carlo standard error of the mean: sd / sqrt(S) over
the S simulated draws. The draws are a thinned subsample of the chains, treated as
independent (the thinning makes autocorrelation small; the sampler's ESS is higher
than S in a converged fit). The mcse measures how precisely the run pins down the
posterior mean, not the posterior uncertainty (that is q05-q95).

Draws in which nobody starts a cycle (possible only when everyone has stopped) have
NaN per-cycle values and are left out of that cycle's summary; ``n_draws`` counts the
draws each row is over. A cycle that no draw defines (every virtual patient has stopped
before it in every draw) has no row in per_cycle.csv and dose.csv: no cell of a table is
NaN; the report and the terminal say in words that no patient reaches it
(:func:`unreached_words`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.vocabulary import DOSE_COLUMNS, event_title
from lenasim.outputs.tables.formats import pct
from lenasim.outputs.tables.frame import Columns

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

__all__ = [
    "compact_columns",
    "compact_table",
    "cumulative_table",
    "dose_table",
    "format_compact",
    "headline",
    "headline_rows",
    "per_cycle_table",
    "probability_mcse",
    "started_draws",
    "summarize_draws",
    "unreached_words",
]

QUANTILES = (0.05, 0.5, 0.95)


def _stats(a: np.ndarray) -> dict[str, np.ndarray]:
    """mean, q05, q50, q95, mcse over axis 0 (draws), ignoring NaN."""
    nan = np.isnan(a)
    n = np.sum(~nan, axis=0)
    with _quiet_nan():
        mean = np.nanmean(a, axis=0)
        # Without NaN, quantile gives nanquantile's numbers bit for bit, several times faster.
        q = np.nanquantile(a, QUANTILES, axis=0) if nan.any() else np.quantile(a, QUANTILES, axis=0)
        sd = np.nanstd(a, axis=0, ddof=1) if a.shape[0] > 1 else np.full(a.shape[1:], np.nan)
        mcse = sd / np.sqrt(n)
    return {"mean": mean, "q05": q[0], "q50": q[1], "q95": q[2], "mcse": mcse, "n_draws": n}


@contextlib.contextmanager
def _quiet_nan() -> Iterator[None]:
    """Silence 'Mean of empty slice' for all-NaN columns (they stay NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


def summarize_draws(da: xr.DataArray) -> Columns:
    """A (draw, event, cycle) variable -> rows (event, cycle) with mean, q05, q50, q95, mcse
    and n_draws (the draws where the value is defined: some patient starts the cycle)."""
    da = da.transpose("draw", "event", "cycle")
    st = _stats(da.values)
    events, cycles = da["event"].values, da["cycle"].values
    ev, cy = np.meshgrid(events, cycles, indexing="ij")
    df = Columns({"event": ev.ravel().astype(str), "cycle": cy.ravel().astype(int)})
    for k, v in st.items():
        df[k] = v.ravel()
    return df


def per_cycle_table(ds: xr.Dataset) -> Columns:
    """per_cycle.csv: probability of the event in a cycle for a patient who starts it
    (cycles that no draw defines left out)."""
    df = summarize_draws(ds["per_cycle"])
    return df.take(df["n_draws"] > 0)


def cumulative_table(ds: xr.Dataset) -> Columns:
    """cumulative.csv: probability of at least one event by the end of the cycle."""
    return summarize_draws(ds["cumulative"])


def dose_table(ds: xr.Dataset) -> Columns:
    """dose.csv: one row per cycle that some patient starts in some draw;
    ``planned_intensity`` and, for each dose variable, its mean across draws (column named
    as the variable) and ``_q05`` / ``_q95``, over the draws where it is defined; ``n_draws``
    counts the draws in which some patient starts the cycle."""
    df = Columns({"cycle": ds["cycle"].values.astype(int)})
    df["planned_intensity"] = ds["planned_intensity"].values
    for v in DOSE_COLUMNS:
        st = _stats(ds[v].transpose("draw", "cycle").values)
        df[v] = st["mean"]
        df[f"{v}_q05"] = st["q05"]
        df[f"{v}_q95"] = st["q95"]
    df["n_draws"] = started_draws(ds)
    return df.take(df["n_draws"] > 0)


def started_draws(ds: xr.Dataset) -> np.ndarray:
    """(cycle,) the number of draws in which some patient starts each cycle (its
    per-cycle risks are defined)."""
    pc = ds["per_cycle"].transpose("draw", "event", "cycle").values
    return np.sum(~np.all(np.isnan(pc), axis=1), axis=0)


def unreached_words(ds: xr.Dataset) -> str | None:
    """A sentence for the cycles that no patient reaches in any draw, or None."""
    n = started_draws(ds)
    cycles = np.asarray(ds["cycle"].values)
    if n.all():
        return None
    first = int(cycles[np.argmax(n == 0)])
    later = cycles[cycles > first]
    span = f"cycles {first}-{int(cycles.max())}" if later.size else f"cycle {first}"
    every = "" if (n[cycles >= first] == 0).all() else " (later cycles: see the table)"
    return (f"No patient reaches cycle {first} in any of the {ds.sizes['draw']} posterior "
            f"draws: every virtual patient has stopped before it, so the risks per cycle and "
            f"the doses of {span} are not defined and are left out{every}.")  # fmt: skip


def headline(ds: xr.Dataset) -> pd.DataFrame:
    """:func:`headline_rows` as a DataFrame."""
    return headline_rows(ds).to_pandas()


def headline_rows(ds: xr.Dataset) -> Columns:
    """A run's headline numbers: per event, the probability in cycle 1 and in cycle 2,
    the mean per-cycle probability from cycle 3 on, and the cumulative probability.

    One row per event (in the run's order) and quantity, with columns ``event``,
    ``quantity``, ``mean``, ``q05``, ``q50``, ``q95`` and ``n_draws`` (the draws where
    the quantity is defined). The quantities, in this order:
    ``cycle 1``, ``cycle 2``, ``cycles 3+`` and ``cumulative (C cycles)`` (the
    probability of at least one event by the end of the last cycle, C). Each is
    computed per posterior draw, then summarised across draws as in :func:`_stats`.
    ``cycles 3+`` is, per draw, the unweighted mean of the per-cycle probabilities of
    cycles 3 to C (each cycle counts once, whatever the number of patients starting
    it); cycles nobody started in that draw (NaN) are left out, and so is a draw in
    which nobody started any of them. NaN where the schedule has fewer cycles.
    """
    pc = ds["per_cycle"].transpose("draw", "event", "cycle").values
    cum = ds["cumulative"].transpose("draw", "event", "cycle").values
    n_cyc = pc.shape[2]
    per_draw = {
        "cycle 1": pc[:, :, 0],
        "cycle 2": pc[:, :, 1] if n_cyc >= 2 else None,
        "cycles 3+": _nanmean(pc[:, :, 2:], axis=2) if n_cyc >= 3 else None,
        f"cumulative ({n_cyc} cycles)": cum[:, :, -1],
    }
    rows = []
    for e_i, ev in enumerate(ds["event"].values):
        for quantity, a in per_draw.items():
            row = {"event": str(ev), "quantity": quantity}
            if a is None:
                row.update(mean=np.nan, q05=np.nan, q50=np.nan, q95=np.nan, n_draws=0)
            else:
                st = _stats(a[:, e_i])
                row.update(mean=float(st["mean"]), q05=float(st["q05"]), q50=float(st["q50"]),
                           q95=float(st["q95"]), n_draws=int(np.sum(~np.isnan(a[:, e_i]))))  # fmt: skip
            rows.append(row)
    return Columns.from_rows(rows, ["event", "quantity", "mean", "q05", "q50", "q95", "n_draws"])


def compact_table(ds: xr.Dataset) -> pd.DataFrame:
    """:func:`compact_columns` as a DataFrame indexed by event."""
    table = compact_columns(ds)
    df = table.to_pandas().set_index("event")
    df.attrs.update(table.attrs)
    return df


def compact_columns(ds: xr.Dataset) -> Columns:
    """The :func:`headline` numbers as the terminal shows them: one row per event (column
    ``event``), one column per quantity, each cell (mean, q05, q95, q50); ``attrs``:
    ``n_cycles``."""
    h = headline_rows(ds)
    events = list(dict.fromkeys(h.values("event")))
    cells = {(r.event, r.quantity): (r.mean, r.q05, r.q95, r.q50) for r in h.itertuples()}
    table = Columns({"event": events}, attrs={"n_cycles": int(ds.sizes["cycle"])})
    for q in dict.fromkeys(h.values("quantity")):
        table[q] = [cells[e, q] for e in events]
    return table


def undefined_words(quantity: str, n_cycles: int | None) -> str:
    """What a headline quantity that no draw defines is: a cycle the schedule does not
    have, or one that no patient reaches (everyone stopped before it in every draw)."""
    first = {"cycle 2": 2, "cycles 3+": 3}.get(quantity)
    if first is None or n_cycles is None or first > n_cycles:
        return "no such cycle"
    return f"no patient reaches cycle {first}"


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with _quiet_nan():
        return np.nanmean(a, axis=axis)


def format_compact(table: Columns | pd.DataFrame, title: str = "") -> str:
    """The compact table (:func:`compact_columns`, or :func:`compact_table`) as text: each
    cell "median / mean (q05 to q95)", the events by their titles."""
    if isinstance(table, Columns):
        events = table.values("event")
        by_quantity = {q: table.values(q) for q in table.columns if q != "event"}
    else:
        events = list(table.index)
        by_quantity = {q: list(table[q]) for q in table.columns}

    def cell(t: tuple[float, ...], quantity: str) -> str:
        m, lo, hi = t[:3]
        if np.isnan(m):
            return undefined_words(quantity, table.attrs.get("n_cycles"))
        med = f"{pct(t[3])} / " if len(t) > 3 else ""
        return f"{med}{pct(m)} ({pct(lo)} to {pct(hi)})"

    header = ["event", *by_quantity]
    body = [[event_title(str(ev)), *(cell(ts[i], q) for q, ts in by_quantity.items())]
            for i, ev in enumerate(events)]  # fmt: skip
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    lines.extend("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)) for r in body)
    lines.append(
        "median / mean over posterior draws (5% to 95%); cycles 3+ = mean per-cycle "
        "probability over cycles >= 3"
    )
    return "\n".join(lines)


BATCHES = 20


def probability_mcse(hits: np.ndarray) -> float:
    """Monte Carlo standard error of a posterior probability estimated as the mean of
    ``hits`` (one 0/1 value per posterior draw; 0.5 for a tie).

    The simulated draws are an evenly spaced, chain-major subsample of the posterior
    chains. Were they independent, the error would be binomial, sqrt(p(1 - p) / S); it
    is computed with p = (k + 1) / (S + 2) so that an estimate of 0 or 1 from few draws
    still carries an error. Thinning leaves some autocorrelation within a chain, so the
    error is also estimated by batch means (the draws in 20 consecutive batches: the
    standard error of the batch means, which grows with the autocorrelation), and the
    larger of the two is returned. Each draw's risk is itself simulated from the cohort
    (with Rao-Blackwellised per-cycle probabilities); that noise enters the hits and so
    both estimates.
    """
    h = np.asarray(hits, float)
    n = h.size
    if n == 0:
        return float("nan")
    pt = (h.sum() + 1.0) / (n + 2.0)
    se = float(np.sqrt(pt * (1 - pt) / n))
    if n >= 2 * BATCHES:
        m = n // BATCHES
        means = h[: m * BATCHES].reshape(BATCHES, m).mean(axis=1)
        se = max(se, float(means.std(ddof=1) / np.sqrt(BATCHES)))
    return se
