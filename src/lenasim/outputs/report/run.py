"""Self-contained HTML reports a protocol committee can read.

One file, no server: PNG plots embedded as data URIs, CSS inline, no JavaScript. The
page is a Jinja2 template (``templates/run.html``, ``templates/compare.html``) filled with
plain values built here; the template escapes every one of them. :func:`run_report`
describes one run (its scenario in words, the caveats, the headline numbers, the risk
limits, the mirrored trial, plots, dose, evidence, diagnostics); :func:`compare_report` a
comparison (:mod:`lenasim.outputs.report.compare`). Both fit a 1280-pixel window: wide
content scrolls inside its own box.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenasim.core.errors import LenasimError
from lenasim.core.vocabulary import event_title
from lenasim.outputs.figures import run as figures
from lenasim.outputs.judgements import words
from lenasim.outputs.judgements.caveats import (
    Caveats,
    decision_caveat,
    prior_sentence,
    rules_sentence,
    sensitivity_sentence,
    validation_sentence,
)
from lenasim.outputs.judgements.decision import critical_words
from lenasim.outputs.judgements.mirror import describe_row
from lenasim.outputs.report.html import render
from lenasim.outputs.report.page import (
    fill_images,
    later_images,
    read_csv,
    scenario_section,
    stamp,
    truthy,
)
from lenasim.outputs.report.tables import dose_rows, evidence_rows, provenance_rows
from lenasim.outputs.tables.formats import interval, pct, signed_pp, skewed
from lenasim.outputs.tables.frame import Columns, as_columns
from lenasim.outputs.tables.netcdf_read import read_dataset
from lenasim.outputs.tables.summaries import headline_rows, undefined_words

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["headline_cells", "headline_table", "pending_run_report", "run_report"]


def headline_table(ds: Any, h: Columns | pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`headline_cells` as a DataFrame."""
    return headline_cells(ds, h).to_pandas()


def _by_key(h: Columns | pd.DataFrame) -> dict[tuple[str, str], dict]:
    """The rows of :func:`~lenasim.outputs.tables.summaries.headline` by (event, quantity)."""
    return {(r["event"], r["quantity"]): r for r in as_columns(h).rows()}


def headline_cells(ds: Any, h: Columns | pd.DataFrame | None = None) -> Columns:
    """The run's :func:`lenasim.outputs.tables.summaries.headline` numbers as text cells, one row
    per event, in the dataset's (and the terminal's) order: cycle 1, cycle 2, cycles 3+
    (mean per-cycle probability), cumulative (``h``: those numbers, if computed already)."""
    last = int(np.asarray(ds["cycle"].values).max())
    h = headline_rows(ds) if h is None else as_columns(h)
    # headline's quantities, in its order: cycle 1, cycle 2, cycles 3+, cumulative.
    labels = dict(zip(dict.fromkeys(h.values("quantity")), ("Cycle 1", "Cycle 2",
                      "Cycles 3+ (per cycle)", f"By end of cycle {last}"), strict=True))  # fmt: skip
    row = _by_key(h)
    n_draws, n_cycles = ds.sizes["draw"], ds.sizes["cycle"]
    rows = []
    for event in [str(e) for e in ds["event"].values]:
        cells: dict[str, Any] = {"event": event, "Event": event_title(event)}
        for quantity, label in labels.items():
            r = row[event, quantity]
            m, lo, md, hi, n = (r[k] for k in ("mean", "q05", "q50", "q95", "n_draws"))
            few = f" [{int(n)} of {n_draws} draws]" if 0 < n < n_draws else ""
            cells[label] = (f"{pct(md)} / {interval(m, lo, hi)}{few}" if np.isfinite(m)
                            else undefined_words(quantity, n_cycles))  # fmt: skip
        rows.append(cells)
    return Columns.from_rows(rows)


def _headline(ds: Any, h: Columns) -> dict:
    tab = headline_cells(ds, h)
    columns = [c for c in tab.columns if c != "event"]
    return {"columns": columns,
            "rows": [list(r) for r in zip(*(tab.values(c) for c in columns), strict=True)],
            "numeric": set(range(1, len(columns)))}  # fmt: skip


def _caveats(folder: Path, ds: Any, h: Columns) -> dict | None:
    path = folder / "caveats.json"
    if not path.is_file():
        return None
    c = Caveats.from_json(json.loads(path.read_text()))
    moving = {(r["event"], r["quantity"]) for r in c.moves}
    # The default column is the run's own number (one number per quantity on a page); the
    # shift is the prior-sensitivity simulation's (paired, smaller).
    own = {key: r["mean"] for key, r in _by_key(h).items()}
    rows = []
    for r in c.sensitivity or []:
        key = (r["event"], r["quantity"])
        base = own.get(key, own.get((r["event"], _cumulative_key(own, r["quantity"]))))
        rows.append([event_title(r["event"]), r["quantity"], pct(base),
                     signed_pp(r["shift"]) + (" (moves)" if key in moving else "")])  # fmt: skip
    return {
        "decision": decision_caveat(c.validation),
        "rules": rules_sentence(c),
        "validation": validation_sentence(c),
        "prior": prior_sentence(c),
        "prior_rows": [
            [r["label"], _fmt(r.get("overlap"), "{:.2f}"), _fmt(r.get("ratio"), "{:.2f}"),
             _fmt(r.get("shift"), "{:.1f}")]
            for r in c.prior_dominated
        ],
        "sensitivity": sensitivity_sentence(c),
        "factor": f"x{c.sensitivity_factor:g}" if c.sensitivity_factor else "",
        "sensitivity_rows": rows,
    }  # fmt: skip


def _cumulative_key(own: dict, quantity: str) -> str:
    """The run's cumulative quantity name (the sensitivity run may have another horizon)."""
    if not quantity.startswith("cumulative"):
        return quantity
    return next((q for _, q in own if str(q).startswith("cumulative")), quantity)


def _fmt(v: Any, spec: str) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "-"
    return spec.format(x) if np.isfinite(x) else "-"


def _limits(folder: Path) -> dict | None:
    df = read_csv(folder / "limits.csv")
    if df is None:
        return None
    cut = float(df.values("max_probability")[0]) if len(df) else 0.25
    rows = []
    for r in df.itertuples():
        verdict = str(getattr(r, "verdict", "acceptable" if truthy(r.acceptable) else
                              "not acceptable"))  # fmt: skip
        mcse = getattr(r, "p_exceed_mcse", np.nan)
        rows.append({
            "limit": r.limit,
            "p_exceed": f"{r.p_exceed:.2f}" + (f" ± {mcse:.2f}" if np.isfinite(mcse) else ""),
            "critical": pct(getattr(r, "q_critical", np.nan)),
            "risk": skewed(getattr(r, "q50", np.nan), r.mean, r.q05, r.q95),
            "n_draws": int(getattr(r, "n_draws", 0) or 0),
            "peak": int(getattr(r, "peak_cycle", 0) or 0),
            "acceptable": truthy(r.acceptable),
            "decided": truthy(getattr(r, "decided", True)),
            "verdict": verdict,
            "cls": "good" if verdict.startswith("acceptable") else ("bad" if verdict == "not acceptable"
                                                           else "undecided"),
            "tipping": str(getattr(r, "tipping", "") or ""),  # judgements/tipping.py
        })  # fmt: skip
    return {"rows": rows, "max_probability": f"{cut:g}", "critical": critical_words(1 - cut),
            "tipping": "tipping" in df}  # fmt: skip


def _summary(s: dict, ds: Any, h: Columns, limits: dict | None,
             caveats: dict | None) -> dict:  # fmt: skip
    """The top of the report, read in 30 seconds: the schedule in words, the verdict per
    limit, the key risks with intervals, the caveat in one line (``h``: the run's
    :func:`~lenasim.outputs.tables.summaries.headline`)."""
    last = int(np.asarray(ds["cycle"].values).max())
    risks = []
    rows = h.rows()
    for event in [str(e) for e in ds["event"].values]:
        sub = [r for r in rows if r["event"] == event]
        c1 = next(r for r in sub if r["quantity"] == "cycle 1")
        cum = sub[-1]
        risks.append({"event": event_title(event),
                      "cycle1": skewed(c1["q50"], c1["mean"], c1["q05"], c1["q95"]),
                      "cumulative": skewed(cum["q50"], cum["mean"], cum["q05"], cum["q95"])})  # fmt: skip
    caveat = caveats["decision"] if caveats else decision_caveat(None)
    return {"schedule": s["schedule"], "who": "; ".join(s["population"][1:]),
            "limits": limits["rows"] if limits else [], "risks": risks, "last": last,
            "caveat": caveat.split(" (Statistics:")[0]}  # fmt: skip


def _bands(folder: Path) -> dict | None:
    df = read_csv(folder / "bands.csv")
    if df is None or not len(df):
        return None
    rows = [
        {"event": event_title(str(event)),
         "cells": [f"{r.interval}: {r.probability:.2f}" for r in g.itertuples()]}
        for event, g in df.groupby("event")
    ]  # fmt: skip
    return {"rows": rows, "width": max(len(r["cells"]) for r in rows)}


def _subgroups(folder: Path, manifest: dict, ds: Any) -> dict | None:
    """subgroups.csv (a population with characteristics) as two tables, the cycle-1 risk
    and the cumulative risk: one row per subgroup with its share of the population (and
    about how many of the run's virtual patients that is), one column per event (mean
    and 90% interval)."""
    df = read_csv(folder / "subgroups.csv")
    if df is None or not len(df):
        return None
    n = manifest.get("n_patients") or ds.attrs.get("n_patients")
    events = list(dict.fromkeys(str(e) for e in df.values("event")))
    last = int(np.asarray(ds["cycle"].values).max())
    tables = []
    for key, title in (("cycle1", "In cycle 1"),
                       ("cumulative", f"At least once by the end of cycle {last}")):  # fmt: skip
        rows = []
        for (group, level), g in df.groupby("subgroup", "level"):
            share = float(g.values("share")[0])
            count = f" (about {round(share * int(n)):,} of {int(n):,})" if n else ""
            by_event = {str(r.event): r for r in g.itertuples()}
            cells = [interval(getattr(r, f"{key}_mean"), getattr(r, f"{key}_q05"),
                              getattr(r, f"{key}_q95")) if r is not None else "not simulated"
                     for r in (by_event.get(e) for e in events)]  # fmt: skip
            rows.append([words.subgroup_words(group, level), f"{pct(share)}{count}", *cells])
        tables.append({"title": title, "rows": rows,
                       "columns": ["Subgroup", "Share of the population",
                                   *(event_title(e) for e in events)],
                       "numeric": set(range(1, 2 + len(events)))})  # fmt: skip
    prior = "prior_dominated" in df and any(truthy(v) for v in df.values("prior_dominated"))
    return {"tables": tables, "prior_only": prior}


def _mirrored(folder: Path, manifest: dict) -> dict | None:
    df = read_csv(folder / "mirrored.csv")
    if df is None:
        return None
    arms = (manifest.get("config") or {}).get("mirrors") or []
    arms = [arms] if isinstance(arms, str) else list(arms)
    rows = [
        {"figure": describe_row(r, arms), "reported": f"{r.events}/{r.n} = {pct(r.observed, 0)}",
         "predicted": f"{pct(r.pred_median, 0)} ({pct(r.pred_q05, 0)} to {pct(r.pred_q95, 0)})",
         "inside": bool(r.inside90), "fitted": bool(r.in_fit), "citation": r.citation}
        for r in df.itertuples()
    ]  # fmt: skip
    skipped = 0
    cav = folder / "caveats.json"
    if cav.is_file():
        skipped = int(json.loads(cav.read_text()).get("mirror_skipped", 0))
    return {"arms": ", ".join(arms) or "the mirrored arms", "rows": rows,
            "inside": sum(r["inside"] for r in rows), "total": len(rows), "skipped": skipped}  # fmt: skip


# ---------------------------------------------------------------- public


def run_report(result_dir: Path | str, ds: Any = None) -> Path:
    """Write ``result_dir/report.html`` for one run and return its path.

    Reads draws.nc (unless ``ds``, the run's dataset as written there, is given),
    manifest.json, and the decision files (limits.csv, bands.csv, mirrored.csv,
    caveats.json): a missing one is said in its section, not fatal. Embeds
    per_cycle.png, cumulative.png and dose.png, drawing any that are missing.
    """
    return pending_run_report(result_dir, ds)()


def pending_run_report(result_dir: Path | str, ds: Any = None) -> Callable[[], Path]:
    """:func:`run_report` in two steps: the page is rendered now, from everything but the
    PNGs; the function returned puts the PNGs in (drawing any that are missing), writes
    ``report.html`` and returns its path (the same bytes as :func:`run_report`). The
    command line renders the page while a child process draws the PNGs."""
    result_dir = Path(result_dir)
    draws = result_dir / "draws.nc"
    if not draws.is_file():
        raise LenasimError(f"{result_dir} has no draws.nc; cannot write its report")
    if ds is None:
        ds = read_dataset(draws)  # what xr.load_dataset returns
    mpath = result_dir / "manifest.json"
    manifest = json.loads(mpath.read_text()) if mpath.is_file() else {}
    name = manifest.get("name") or ds.attrs.get("scenario") or result_dir.name
    renderers = {"per_cycle.png": figures.plot_per_cycle, "cumulative.png": figures.plot_cumulative,
                 "dose.png": figures.plot_dose}  # fmt: skip
    attrs = manifest.get("posterior_attrs") or {}
    post = manifest.get("posterior") or {}
    converged = post.get("converged", attrs.get("converged"))
    scenario = scenario_section(manifest, ds)
    head = headline_rows(ds)  # one computation for the summary, the caveats and the table
    caveats = _caveats(result_dir, ds, head)
    limits = _limits(result_dir)
    html = render(
        "run.html",
        title=f"lenasim: {name}",
        stamp=stamp(),
        name=name,
        unconverged=converged is not None and not truthy(converged),
        s=scenario,
        summary=_summary(scenario, ds, head, limits, caveats),
        caveats=caveats,
        headline=_headline(ds, head),
        limits=limits,
        bands=_bands(result_dir),
        subgroups=_subgroups(result_dir, manifest, ds),
        mirrored=_mirrored(result_dir, manifest),
        images=later_images(figures.SCENARIO_PNGS),
        dose=dose_rows(ds),
        ev=evidence_rows(),
        diagnostics=words.diagnostics_rows(attrs),
        sampler=words.sampler_words(attrs),
        provenance=provenance_rows(manifest, ds),
    )

    def finish() -> Path:
        page = fill_images(html, result_dir, figures.SCENARIO_PNGS, lambda n: renderers[n](ds))
        out = result_dir / "report.html"
        out.write_text(page, encoding="utf-8")
        return out

    return finish
