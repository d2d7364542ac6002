"""The paired differences of a comparison, per posterior draw: ``comparison.csv`` (one row
per scenario x quantity x event x cycle), ``dose_differences.csv`` and compare's side-by-side
``dose.csv``, and their lines in the terminal.

Columns of comparison.csv:

- ``quantity``: ``per_cycle`` (probability of the event in the cycle) or ``cumulative``
  (at least one event by the end of the cycle).
- ``ref_*`` / ``scen_*``: mean, q05, q95 of each run, side by side.
- ``diff_*``: mean, q05, q50, q95 and ``diff_mcse`` (sd/sqrt(S)) of scenario minus
  reference; ``ratio_*`` the same for scenario / reference over the ``n_ratio`` draws
  where the reference is above 0; ``p_riskier`` the share of draws with a difference
  above 0, with its MCSE.
- ``paired``: whether the differences are per draw (True) or between independent
  draws (False: the other run's draws permuted with a fixed generator); ``identical``:
  whether the two runs give the same value in every draw (the schedules do not differ
  there: shown as "identical", not as P = 0).
- ``n_draws``: the draws where both values are defined (a per-cycle risk is undefined in
  a draw where nobody starts the cycle); a cell no draw defines has no row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lenasim.core.vocabulary import DOSE_COLUMNS, event_title
from lenasim.outputs.tables.formats import signed_pp
from lenasim.outputs.tables.runs import EVENT_VARS, Run
from lenasim.outputs.tables.summaries import probability_mcse, started_draws

__all__ = [
    "UNPAIRED_SEED",
    "compare_pair",
    "dose_pair",
    "dose_side_by_side",
    "format_main_rows",
    "undefined_notes",
]

UNPAIRED_SEED = 20240521  # fixed permutation for unpaired comparisons: same inputs, same table


_NAMES = ("ref_mean", "ref_q05", "ref_q95", "scen_mean", "scen_q05", "scen_q95",
          "diff_mean", "diff_q05", "diff_q50", "diff_q95", "diff_mcse", "ratio_q05",
          "ratio_q50", "ratio_q95", "n_ratio", "p_riskier", "p_riskier_mcse")  # fmt: skip


def _summaries(ref: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    """Column arrays for ref and other (draw first, same draw count), each cell over the
    draws where both values are defined (``n_draws``; a per-cycle risk is undefined in a
    draw where nobody starts the cycle). A cell no draw defines stays NaN (its row is
    dropped by the caller).

    The cells defined in the same draws are computed together (:func:`_fill_rows`), with
    the same numbers bit for bit as cell by cell (each cell's draws one contiguous row,
    reduced as a 1-D array would be)."""
    ok = ~(np.isnan(ref) | np.isnan(other))
    n = ok.sum(axis=0)
    flat_r = ref.reshape(ref.shape[0], -1)
    flat_o = other.reshape(other.shape[0], -1)
    flat_ok = ok.reshape(ok.shape[0], -1)
    out = {k: np.full(flat_r.shape[1], np.nan) for k in _NAMES}
    out["identical"] = np.zeros(flat_r.shape[1], bool)
    groups: dict[bytes, list[int]] = {}  # cells defined in the same draws, together
    for j in np.flatnonzero(flat_ok.any(axis=0)):
        groups.setdefault(np.packbits(flat_ok[:, j]).tobytes(), []).append(int(j))
    for cells in groups.values():
        m = flat_ok[:, cells[0]]
        a = np.ascontiguousarray(flat_r[m][:, cells].T)  # (cell, draw): one row per cell
        b = np.ascontiguousarray(flat_o[m][:, cells].T)
        _fill_rows(out, np.asarray(cells), a, b)
    shape = ref.shape[1:]
    res = {k: v.reshape(shape) for k, v in out.items()}
    res["n_draws"] = n.reshape(shape)
    return res


def _fill_rows(out: dict[str, np.ndarray], cells: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Fill ``out`` at ``cells`` from ``a`` (reference) and ``b`` (other): (cell, draw)
    C-contiguous, every value defined."""
    for prefix, x in (("ref", a), ("scen", b)):
        out[f"{prefix}_mean"][cells] = x.mean(axis=1)
        out[f"{prefix}_q05"][cells], out[f"{prefix}_q95"][cells] = np.quantile(
            x, [0.05, 0.95], axis=1
        )
    d = b - a
    s = d.shape[1]
    out["diff_mean"][cells] = d.mean(axis=1)
    q = np.quantile(d, [0.05, 0.5, 0.95], axis=1)
    out["diff_q05"][cells], out["diff_q50"][cells], out["diff_q95"][cells] = q
    out["diff_mcse"][cells] = d.std(axis=1, ddof=1) / np.sqrt(s) if s > 1 else 0.0
    pos = a > 0
    out["n_ratio"][cells] = pos.sum(axis=1)
    every = pos.all(axis=1)
    if every.any():
        q = np.quantile(b[every] / a[every], [0.05, 0.5, 0.95], axis=1)
        out["ratio_q05"][cells[every]], out["ratio_q50"][cells[every]] = q[0], q[1]
        out["ratio_q95"][cells[every]] = q[2]
    for i in np.flatnonzero(pos.any(axis=1) & ~every):
        q = np.quantile(b[i, pos[i]] / a[i, pos[i]], [0.05, 0.5, 0.95])
        out["ratio_q05"][cells[i]], out["ratio_q50"][cells[i]], out["ratio_q95"][cells[i]] = q
    hits = (d > 0).astype(float)
    out["p_riskier"][cells] = hits.mean(axis=1)
    out["p_riskier_mcse"][cells] = [probability_mcse(h) for h in hits]
    out["identical"][cells] = np.all(d == 0, axis=1)


def compare_pair(ref: Run, other: Run, ref_name: str, name: str, paired: bool) -> pd.DataFrame:
    """The event rows of comparison.csv for one scenario against the reference; rows no
    draw defines (nobody starts the cycle in any draw of one run) are left out."""
    rds, ods = ref.ds, other.ds
    cycles = np.intersect1d(rds["cycle"].values, ods["cycle"].values)
    idx = _draw_index(ref, other, paired)
    frames = []
    events = [e for e in rds["event"].values if e in set(ods["event"].values)]
    for var in EVENT_VARS:
        r = rds[var].sel(event=events, cycle=cycles).transpose("draw", "event", "cycle").values
        o = ods[var].sel(event=events, cycle=cycles).transpose("draw", "event", "cycle").values[idx]
        cols = _summaries(np.asarray(r, float), np.asarray(o, float))
        ev, cy = np.meshgrid(np.asarray(events, dtype=str), cycles, indexing="ij")
        head = {"quantity": var, "event": ev.ravel(), "cycle": cy.ravel()}
        frames.append(pd.DataFrame(head | {k: np.asarray(v).ravel() for k, v in cols.items()}))
    df = pd.concat(frames, ignore_index=True)
    df = df[df["n_draws"] > 0].reset_index(drop=True)
    df["n_ratio"] = df["n_ratio"].astype(int)
    df.insert(0, "reference", ref_name)
    df.insert(0, "scenario", name)
    df["paired"] = paired
    df["n_draws_run"] = rds.sizes["draw"]
    return df


def _draw_index(ref: Run, other: Run, paired: bool) -> np.ndarray:
    """The other run's draws matched to the reference's: the same draws when paired,
    else a fixed permutation (independent pairs)."""
    s_ref = ref.ds.sizes["draw"]
    if paired:
        return np.arange(s_ref)
    rng = np.random.default_rng(UNPAIRED_SEED)
    s_o = other.ds.sizes["draw"]
    return rng.permutation(s_o)[:s_ref] if s_o >= s_ref else rng.choice(s_o, size=s_ref)


def dose_pair(ref: Run, other: Run, ref_name: str, name: str, paired: bool) -> pd.DataFrame:
    """dose_differences.csv rows: per dose measure and cycle, each run's mean and 90%
    interval, the difference (scenario minus reference) and P(higher), the share of draws
    in which the scenario's value is higher (ties one half), over the draws where both
    are defined."""
    rds, ods = ref.ds, other.ds
    cycles = np.intersect1d(rds["cycle"].values, ods["cycle"].values)
    idx = _draw_index(ref, other, paired)
    frames = []
    for var in DOSE_COLUMNS:
        if var not in rds or var not in ods:
            continue
        r = rds[var].sel(cycle=cycles).transpose("draw", "cycle").values
        o = ods[var].sel(cycle=cycles).transpose("draw", "cycle").values[idx]
        cols = _summaries(np.asarray(r, float), np.asarray(o, float))
        frame = {"measure": var, "cycle": cycles}
        for k in ("ref_mean", "ref_q05", "ref_q95", "scen_mean", "scen_q05", "scen_q95",
                  "diff_mean", "diff_q05", "diff_q95", "p_riskier", "p_riskier_mcse",
                  "identical", "n_draws"):  # fmt: skip
            frame[k.replace("p_riskier", "p_higher")] = np.asarray(cols[k])
        frames.append(pd.DataFrame(frame))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df = df[df["n_draws"] > 0].reset_index(drop=True)
    df.insert(0, "reference", ref_name)
    df.insert(0, "scenario", name)
    df["paired"] = paired
    return df


def undefined_notes(runs: list[Run], names: list[str]) -> list[str]:
    """A note per run with draws in which nobody starts some cycle (everyone stopped): its
    per-cycle risks there are computed over the draws where they are defined."""
    out = []
    for run, name in zip(runs, names, strict=True):
        pc = run.ds["per_cycle"].transpose("draw", "event", "cycle").values
        gone = np.all(np.isnan(pc), axis=1)  # (draw, cycle): nobody started the cycle
        n_draws = pc.shape[0]
        counts = gone.sum(axis=0)
        if counts.any():
            cycles = run.ds["cycle"].values
            first = int(cycles[np.argmax(counts > 0)])
            out.append(
                f"{name}: in {int(counts.max())} of {n_draws} posterior draws every virtual "
                f"patient has stopped by cycle {int(cycles[np.argmax(counts)])} (from cycle "
                f"{first} in some draws); per-cycle risks of those cycles are over the draws "
                "where some patient starts them (the count is the n_draws column)."
            )
    return out


def format_main_rows(df: pd.DataFrame) -> str:
    """The rows a reader needs first: per event, cycle 1 and cumulative differences."""
    lines = []
    for name, sub in df.groupby("scenario", sort=False):
        ref = sub["reference"].iloc[0]
        kind = "paired" if bool(sub["paired"].iloc[0]) else "UNPAIRED"
        last = int(sub.loc[sub["quantity"] == "cumulative", "cycle"].max())
        lines.append(
            f"{name} vs {ref} ({kind}; difference in percentage points, 90% interval; "
            f"P = P(riskier than {ref}) +/- its Monte Carlo error):"
        )
        lines.append(f"  {'event':<26} {'in cycle 1':<40} {'by end of cycle ' + str(last)}")
        first: dict[tuple, int] = {}  # (quantity, event, cycle) -> its first row in sub
        for i, key in enumerate(zip(sub["quantity"], sub["event"], sub["cycle"], strict=True)):
            first.setdefault(key, i)
        for event in dict.fromkeys(sub.loc[sub["quantity"] != "dose", "event"]):
            cells = []
            for qty, cyc in (("per_cycle", 1), ("cumulative", last)):
                if (qty, event, cyc) not in first:
                    cells.append("-")
                    continue
                r = sub.iloc[first[qty, event, cyc]]
                if bool(getattr(r, "identical", False)):
                    cells.append("identical in every draw")
                    continue
                few = f" [{int(r.n_draws)} draws]" if r.n_draws < r.n_draws_run else ""
                cells.append(
                    f"{signed_pp(r.diff_mean)} ({signed_pp(r.diff_q05)} to {signed_pp(r.diff_q95)}) "
                    f"P={r.p_riskier:.2f}+/-{r.p_riskier_mcse:.2f}{few}"
                )
            lines.append(f"  {event_title(event):<26} {cells[0]:<40} {cells[1]:<40}".rstrip())
    return "\n".join(lines)


def dose_side_by_side(runs: list[Run], names: list[str]) -> pd.DataFrame:
    """compare's dose.csv: per scenario and cycle that some patient starts in some draw,
    each dose measure's mean and 90% interval over the draws where it is defined
    (``n_draws``: the draws in which some patient starts the cycle)."""
    rows = []
    for run, name in zip(runs, names, strict=True):
        ds = run.ds
        started = started_draws(ds)
        values = {  # (draw, cycle) per dose measure, read once per run
            var: np.asarray(ds[var].transpose("draw", "cycle").values, float)
            for var in DOSE_COLUMNS
            if var in ds
        }
        for i, c in enumerate(ds["cycle"].values):
            if not started[i]:  # nobody starts the cycle in any draw: no row (no NaN)
                continue
            row: dict[str, Any] = {"scenario": name, "cycle": int(c)}
            if "planned_intensity" in ds:
                row["planned_intensity"] = float(ds["planned_intensity"].values[i])
            for var, v in values.items():
                x = v[:, i]
                x = x[~np.isnan(x)]  # over the draws where some patient starts the cycle
                row[f"{var}_mean"] = float(x.mean())
                row[f"{var}_q05"], row[f"{var}_q95"] = (
                    float(q) for q in np.quantile(x, [0.05, 0.95])
                )
            row["n_draws"] = int(started[i])
            rows.append(row)
    return pd.DataFrame(rows)
