"""`compare` by subgroup (issue 24, item 3): the paired effect of one schedule against the
reference within each CrCl band (age band, bulky or not), e.g. renal dose adjustment
against none.

A run whose population has characteristics writes ``subgroup_draws.csv``: each subgroup's
cycle-1 and cumulative risk, draw by draw, every subgroup a cohort of its own on the run's
draws and seed (:func:`lenasim.simulation.population.subgroup_risks`). Two such runs on the
same draws and seed (a paired comparison) give, per subgroup, level and event, the
difference draw by draw: its mean, 90% interval and the probability that the scenario is
riskier (with its Monte Carlo error), as the whole-population rows of ``comparison.csv``
do. The subgroups are those of the reference's run; a level that one run lacks is left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.vocabulary import event_title
from lenasim.outputs.tables.formats import signed_pp
from lenasim.outputs.tables.summaries import probability_mcse

__all__ = ["SUBGROUP_DRAWS", "format_subgroup_rows", "subgroup_differences", "subgroup_tables"]

SUBGROUP_DRAWS = "subgroup_draws.csv"
_KEYS = ["subgroup", "level", "event", "draw"]
_TITLES = {"crcl_band": "CrCl band (mL/min)", "age_band": "age band", "bulky": "node >= 5 cm"}


def _read(folder: Path) -> pd.DataFrame | None:
    path = Path(folder) / SUBGROUP_DRAWS
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"level": str})


def subgroup_differences(folders: list[Path], names: list[str], paired: list[bool]) -> pd.DataFrame:
    """Per scenario after the first (the reference) that is paired with it and has subgroup
    draws like it: one row per subgroup, level, event and quantity (``cycle1``,
    ``cumulative``), with ``ref_mean``, ``scen_mean``, ``diff_mean``, ``diff_q05``,
    ``diff_q95``, ``p_riskier``, ``p_riskier_mcse`` and ``n_draws``. Empty when none."""
    ref = _read(folders[0])
    rows: list[dict] = []
    if ref is None:
        return pd.DataFrame(rows)
    for folder, name, ok in zip(folders[1:], names[1:], paired, strict=True):
        other = _read(folder) if ok else None
        if other is None:
            continue
        both = ref.merge(other, on=_KEYS, suffixes=("_ref", "_scen"))
        if not (both["posterior_index_ref"] == both["posterior_index_scen"]).all():
            continue  # not the same draws: no pairing by subgroup
        for (group, level, event), g in both.groupby(["subgroup", "level", "event"], sort=False):
            for qty in ("cycle1", "cumulative"):
                a, b = g[f"{qty}_ref"].to_numpy(float), g[f"{qty}_scen"].to_numpy(float)
                keep = ~(np.isnan(a) | np.isnan(b))
                a, b = a[keep], b[keep]
                if not a.size:
                    continue
                d = b - a
                hits = (d > 0).astype(float)
                q05, q95 = np.quantile(d, [0.05, 0.95])
                rows.append({
                    "scenario": name, "reference": names[0], "subgroup": group, "level": level,
                    "event": event, "quantity": qty, "ref_mean": a.mean(), "scen_mean": b.mean(),
                    "diff_mean": d.mean(), "diff_q05": q05, "diff_q95": q95,
                    "p_riskier": hits.mean(), "p_riskier_mcse": probability_mcse(hits),
                    "identical": bool(np.all(d == 0)), "n_draws": int(a.size),
                })  # fmt: skip
    return pd.DataFrame(rows)


def _cell(r) -> str:
    """One paired difference in words: identical, or the mean with its 90% interval."""
    if r.identical:
        return "identical in every draw"
    return f"{signed_pp(r.diff_mean)} ({signed_pp(r.diff_q05)} to {signed_pp(r.diff_q95)})"


def subgroup_tables(df: pd.DataFrame, subgroup: str = "crcl_band") -> list[dict]:
    """The paired differences within each level of ``subgroup`` as tables for the compare
    report (one per scenario: event, band, the two runs' risks, the difference and
    P(riskier) ± MCSE, in cycle 1 and by the last cycle). Empty when there are none."""
    if not len(df) or subgroup not in set(df["subgroup"]):
        return []
    out = []
    sub = df[df["subgroup"] == subgroup]
    for name, s in sub.groupby("scenario", sort=False):
        ref = str(s["reference"].iloc[0])
        rows = []
        for (event, level), g in s.groupby(["event", "level"], sort=False):
            for qty, when in (("cycle1", "Cycle 1"), ("cumulative", "By the last cycle")):
                r = g[g["quantity"] == qty]
                if not len(r):
                    continue
                r = r.iloc[0]
                p = "identical" if r.identical else f"{r.p_riskier:.2f} ± {r.p_riskier_mcse:.2f}"
                rows.append([event_title(str(event)), str(level), when,
                             f"{100 * r.ref_mean:.1f}%", f"{100 * r.scen_mean:.1f}%",
                             _cell(r), p])  # fmt: skip
        out.append({
            "name": str(name), "reference": ref, "by": _TITLES.get(subgroup, subgroup),
            "columns": ["Event", _TITLES.get(subgroup, subgroup), "When", f"{ref} (mean)",
                        f"{name} (mean)", "Difference (pp, 90%)", "P(riskier) ± MCSE"],
            "rows": rows, "numeric": {3, 4, 5, 6},
        })  # fmt: skip
    return out


def format_subgroup_rows(df: pd.DataFrame, subgroup: str = "crcl_band") -> str:
    """The paired differences within each level of ``subgroup`` (default the CrCl band):
    per scenario, event and level, cycle 1 and cumulative, in percentage points."""
    if not len(df) or subgroup not in set(df["subgroup"]):
        return ""
    lines = []
    sub = df[df["subgroup"] == subgroup]
    for name, s in sub.groupby("scenario", sort=False):
        ref = s["reference"].iloc[0]
        lines.append(
            f"{name} vs {ref} by {_TITLES.get(subgroup, subgroup)} (paired, each band its own "
            f"cohort on the same draws; difference in percentage points, 90% interval; "
            f"P = P(riskier than {ref})):"
        )
        lines.append(f"  {'event':<24} {'band':<8} {'in cycle 1':<40} by the last cycle")
        for (event, level), g in s.groupby(["event", "level"], sort=False):
            cells = []
            for qty in ("cycle1", "cumulative"):
                r = g[g["quantity"] == qty]
                if not len(r):
                    cells.append("-")
                    continue
                r = r.iloc[0]
                cells.append(
                    _cell(r)
                    if r.identical
                    else f"{_cell(r)} P={r.p_riskier:.2f}+/-{r.p_riskier_mcse:.2f}"
                )
            lines.append(f"  {event_title(event):<24} {level:<8} {cells[0]:<40} {cells[1]}")
    return "\n".join(lines)
