"""Self-contained HTML reports a protocol committee can read.

One file, no server: PNG plots embedded as data URIs, CSS inline, no JavaScript. The
page is a Jinja2 template (``templates/run.html``, ``templates/compare.html``) filled with
plain values built here; the template escapes every one of them. :func:`run_report`
describes one run (its scenario in words, the caveats, the headline numbers, the risk
limits, the mirrored trial, plots, dose, evidence, diagnostics); :func:`compare_report` a
comparison. Both fit a 1280-pixel window: wide content scrolls inside its own box.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenasim.core.vocabulary import event_title
from lenasim.outputs.html import interval, pct, ratio, render, signed_pp, skewed
from lenasim.outputs.report_tables import dose_rows, dose_tables, evidence_rows, provenance_rows

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["compare_report", "headline_table", "run_report"]

_ALT = {
    "per_cycle.png": "Probability of each event per cycle with 50% and 90% intervals",
    "cumulative.png": "Cumulative incidence of each event with 50% and 90% intervals",
    "dose.png": "Dose delivered per cycle: mean dose, intensity against plan, dose changes",
    "per_cycle_overlay.png": "Per-cycle probability of each event, scenario by scenario",
    "cumulative_overlay.png": "Cumulative incidence of each event, scenario by scenario",
    "differences.png": "Differences from the reference scenario with 90% intervals",
    "dose_overlay.png": "Dose delivered per cycle, scenarios side by side",
}


# ---------------------------------------------------------------- small helpers


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header (IHDR)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return 0, 0
    return struct.unpack(">II", png[16:24])


def _images(folder: Path, names: Sequence[str], render_png: Any) -> list[dict]:
    """The PNGs of ``names`` in ``folder`` (drawn by ``render_png(name)`` when missing)."""
    out = []
    for name in names:
        path = folder / name
        png = path.read_bytes() if path.is_file() else _fig_png(render_png(name))
        w, h = _png_size(png)
        out.append({"png": png, "alt": _ALT.get(name, name), "width": w, "height": h})
    return out


def _fig_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    return buf.getvalue()


def _read_csv(path: Path) -> pd.DataFrame | None:
    import pandas as pd

    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes")
    return bool(v)


# ---------------------------------------------------------------- content


def headline_table(ds: Any) -> pd.DataFrame:
    """The run's :func:`lenasim.outputs.summaries.headline` numbers as text cells, one row
    per event, in the dataset's (and the terminal's) order: cycle 1, cycle 2, cycles 3+
    (mean per-cycle probability), cumulative."""
    import pandas as pd

    from lenasim.outputs.summaries import headline

    last = int(np.asarray(ds["cycle"].values).max())
    h = headline(ds)
    # headline's quantities, in its order: cycle 1, cycle 2, cycles 3+, cumulative.
    labels = dict(zip(dict.fromkeys(h["quantity"]), ("Cycle 1", "Cycle 2",
                      "Cycles 3+ (per cycle)", f"By end of cycle {last}"), strict=True))  # fmt: skip
    h = h.set_index(["event", "quantity"])
    rows = []
    for event in [str(e) for e in ds["event"].values]:
        cells: dict[str, Any] = {"event": event, "Event": event_title(event)}
        for quantity, label in labels.items():
            m, lo, md, hi = h.loc[(event, quantity), ["mean", "q05", "q50", "q95"]]
            cells[label] = (f"{pct(md)} / {interval(m, lo, hi)}" if np.isfinite(m)
                            else "no such cycle")  # fmt: skip
        rows.append(cells)
    return pd.DataFrame(rows)


def _headline(ds: Any) -> dict:
    tab = headline_table(ds).drop(columns="event")
    return {"columns": list(tab.columns), "rows": tab.values.tolist(),
            "numeric": set(range(1, tab.shape[1]))}  # fmt: skip


def _scenario(manifest: dict, ds: Any) -> dict:
    from lenasim.outputs import words

    cfg = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    n_patients = manifest.get("n_patients") or ds.attrs.get("n_patients")
    n_draws = manifest.get("n_draws") or ds.sizes.get("draw")
    seed = manifest.get("seed", ds.attrs.get("seed"))
    effect = (manifest.get("population_effect") or cfg.get("population_effect")
              or ds.attrs.get("population_effect"))  # fmt: skip
    size = f"{n_patients} virtual patients x {n_draws} posterior draws, seed {seed}"
    return {
        "description": cfg.get("description") or "",
        "mirrors": words.mirrors_rows(cfg.get("mirrors")),
        "schedule": manifest.get("regimen_text") or (json.dumps(cfg["regimen"])
                                                      if "regimen" in cfg else ""),
        "population": words.population_words(cfg, n_patients),
        "rules": words.rules_words(cfg),
        "effect": words.effect_words(effect),
        "size": size,
        "missing_manifest": not manifest,
    }  # fmt: skip


def _caveats(folder: Path, ds: Any) -> dict | None:
    from lenasim.outputs.caveats import (
        Caveats,
        decision_caveat,
        prior_sentence,
        sensitivity_sentence,
        validation_sentence,
    )
    from lenasim.outputs.summaries import headline

    path = folder / "caveats.json"
    if not path.is_file():
        return None
    c = Caveats.from_json(json.loads(path.read_text()))
    moving = {(r["event"], r["quantity"]) for r in c.moves}
    # The default column is the run's own number (one number per quantity on a page); the
    # shift is the prior-sensitivity simulation's (paired, smaller).
    own = headline(ds).set_index(["event", "quantity"])["mean"].to_dict()
    rows = []
    for r in c.sensitivity or []:
        key = (r["event"], r["quantity"])
        base = own.get(key, own.get((r["event"], _cumulative_key(own, r["quantity"]))))
        rows.append([event_title(r["event"]), r["quantity"], pct(base),
                     signed_pp(r["shift"]) + (" (moves)" if key in moving else "")])  # fmt: skip
    return {
        "decision": decision_caveat(c.validation),
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
    from lenasim.outputs.decision import critical_words

    df = _read_csv(folder / "limits.csv")
    if df is None:
        return None
    cut = float(df["max_probability"].iloc[0]) if len(df) else 0.25
    rows = []
    for r in df.itertuples():
        verdict = str(getattr(r, "verdict", "acceptable" if _truthy(r.acceptable) else
                              "not acceptable"))  # fmt: skip
        mcse = getattr(r, "p_exceed_mcse", np.nan)
        rows.append({
            "limit": r.limit,
            "p_exceed": f"{r.p_exceed:.2f}" + (f" ± {mcse:.2f}" if np.isfinite(mcse) else ""),
            "critical": pct(getattr(r, "q_critical", np.nan)),
            "risk": skewed(getattr(r, "q50", np.nan), r.mean, r.q05, r.q95),
            "n_draws": int(getattr(r, "n_draws", 0) or 0),
            "peak": int(getattr(r, "peak_cycle", 0) or 0),
            "acceptable": _truthy(r.acceptable),
            "decided": _truthy(getattr(r, "decided", True)),
            "verdict": verdict,
            "cls": "good" if verdict == "acceptable" else ("bad" if verdict == "not acceptable"
                                                           else "undecided"),
            "tipping": str(getattr(r, "tipping", "") or ""),  # outputs/tipping.py
        })  # fmt: skip
    return {"rows": rows, "max_probability": f"{cut:g}", "critical": critical_words(1 - cut),
            "tipping": "tipping" in df}  # fmt: skip


def _summary(s: dict, ds: Any, limits: dict | None, caveats: dict | None) -> dict:
    """The top of the report, read in 30 seconds: the schedule in words, the verdict per
    limit, the key risks with intervals, the caveat in one line."""
    from lenasim.outputs.caveats import decision_caveat
    from lenasim.outputs.summaries import headline

    h = headline(ds)
    last = int(np.asarray(ds["cycle"].values).max())
    risks = []
    for event in [str(e) for e in ds["event"].values]:
        sub = h[h["event"] == event].set_index("quantity")
        c1 = sub.loc["cycle 1"]
        cum = sub.iloc[-1]
        risks.append({"event": event_title(event),
                      "cycle1": skewed(c1["q50"], c1["mean"], c1["q05"], c1["q95"]),
                      "cumulative": skewed(cum["q50"], cum["mean"], cum["q05"], cum["q95"])})  # fmt: skip
    caveat = caveats["decision"] if caveats else decision_caveat(None)
    return {"schedule": s["schedule"], "who": "; ".join(s["population"][1:]),
            "limits": limits["rows"] if limits else [], "risks": risks, "last": last,
            "caveat": caveat.split(" (Statistics:")[0]}  # fmt: skip


def _bands(folder: Path) -> dict | None:
    df = _read_csv(folder / "bands.csv")
    if df is None or not len(df):
        return None
    rows = [
        {"event": event_title(str(event)),
         "cells": [f"{r.interval}: {r.probability:.2f}" for r in g.itertuples()]}
        for event, g in df.groupby("event", sort=False)
    ]  # fmt: skip
    return {"rows": rows, "width": max(len(r["cells"]) for r in rows)}


def _mirrored(folder: Path, manifest: dict) -> dict | None:
    from lenasim.outputs.mirror import describe_row

    df = _read_csv(folder / "mirrored.csv")
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
    from lenasim.core.errors import LenasimError
    from lenasim.outputs import figures as plots
    from lenasim.outputs import words

    result_dir = Path(result_dir)
    draws = result_dir / "draws.nc"
    if not draws.is_file():
        raise LenasimError(f"{result_dir} has no draws.nc; cannot write its report")
    if ds is None:
        import xarray as xr

        ds = xr.load_dataset(draws)
    mpath = result_dir / "manifest.json"
    manifest = json.loads(mpath.read_text()) if mpath.is_file() else {}
    name = manifest.get("name") or ds.attrs.get("scenario") or result_dir.name
    renderers = {"per_cycle.png": plots.plot_per_cycle, "cumulative.png": plots.plot_cumulative,
                 "dose.png": plots.plot_dose}  # fmt: skip
    attrs = manifest.get("posterior_attrs") or {}
    post = manifest.get("posterior") or {}
    converged = post.get("converged", attrs.get("converged"))
    scenario = _scenario(manifest, ds)
    caveats = _caveats(result_dir, ds)
    limits = _limits(result_dir)
    html = render(
        "run.html",
        title=f"lenasim: {name}",
        stamp=_stamp(),
        name=name,
        unconverged=converged is not None and not _truthy(converged),
        s=scenario,
        summary=_summary(scenario, ds, limits, caveats),
        caveats=caveats,
        headline=_headline(ds),
        limits=limits,
        bands=_bands(result_dir),
        mirrored=_mirrored(result_dir, manifest),
        images=_images(result_dir, plots.SCENARIO_PNGS, lambda n: renderers[n](ds)),
        dose=dose_rows(ds),
        ev=evidence_rows(),
        diagnostics=words.diagnostics_rows(attrs),
        sampler=words.sampler_words(attrs),
        provenance=provenance_rows(manifest, ds),
    )
    out = result_dir / "report.html"
    out.write_text(html, encoding="utf-8")
    return out


def _main_tables(df: pd.DataFrame) -> list[dict]:
    """The comparison's headline rows, one table per scenario: per event, cycle 1, cycle 2
    and the cumulative risk by the last cycle, in the events' order of the runs."""
    from lenasim.outputs.reweighting import short_words

    out = []
    for name, sub in df.groupby("scenario", sort=False):
        last = int(sub.loc[sub["quantity"] == "cumulative", "cycle"].max())
        rows = []
        for event in dict.fromkeys(sub.loc[sub["quantity"] != "dose", "event"]):
            for qty, cyc, label in (("per_cycle", 1, "Cycle 1"), ("per_cycle", 2, "Cycle 2"),
                                    ("cumulative", last, f"By end of cycle {last}")):  # fmt: skip
                r = sub[(sub["quantity"] == qty) & (sub["event"] == event) & (sub["cycle"] == cyc)]
                if not len(r):
                    continue
                r = r.iloc[0]
                same = bool(r.get("identical", False))
                few = (f" [{int(r.n_draws)} of {int(r.n_draws_run)} draws]"
                       if "n_draws" in r and r.n_draws < r.n_draws_run else "")  # fmt: skip
                mcse = r.get("p_riskier_mcse", np.nan)
                rows.append([
                    event_title(str(event)), label + few,
                    interval(r.ref_mean, r.ref_q05, r.ref_q95),
                    interval(r.scen_mean, r.scen_q05, r.scen_q95),
                    "identical" if same else (f"{signed_pp(r.diff_mean)} ({signed_pp(r.diff_q05)}"
                                              f" to {signed_pp(r.diff_q95)})"),
                    "-" if same else ratio(r.ratio_q50, r.ratio_q05, r.ratio_q95),
                    "identical" if same else (f"{r.p_riskier:.2f}"
                                              + (f" ± {mcse:.2f}" if np.isfinite(mcse) else "")),
                    *([short_words(r)] if "tipping" in r else []),  # outputs/tipping.py
                ])  # fmt: skip
        ref = str(sub["reference"].iloc[0])
        out.append({
            "name": str(name),
            "pairing": "paired" if bool(sub["paired"].iloc[0]) else "UNPAIRED",
            "columns": ["Event", "When", ref, str(name), "Difference (pp)",
                        "Ratio (median, 90%)", "P(riskier) ± MCSE",
                        *(["Tipping point (dose prior)"] if "tipping" in sub else [])],
            "rows": rows, "numeric": {2, 3, 4, 5, 6},
        })  # fmt: skip
    return out


def _default_caveat() -> str:
    from lenasim.outputs.caveats import decision_caveat

    return decision_caveat(None)


def _notes(notes: Sequence[str]) -> list[dict]:
    """Pairing notes in one line; warnings (unpaired runs, other populations) each."""
    paired = [n for n in notes if ": paired on the same" in n]
    out = []
    if paired:
        names = [n.split(" vs ")[0] for n in paired]
        tail = paired[0].split(": paired on the same", 1)[1].rstrip(".")
        out.append({"kind": "note", "text": f"Paired draw by draw on the same{tail}: "
                                            f"{', '.join(names)}."})  # fmt: skip
    warn = ("unpaired", "cannot", "differ in more")
    for n in notes:
        if n not in paired:
            out.append({"text": n, "kind": "warn" if any(w in n.lower() for w in warn) else "note"})
    return out


def _setup_table(scenarios: list[dict], runs: Sequence[Any]) -> dict:
    """The scenarios side by side: one row per aspect, the rows that differ marked."""
    from lenasim.outputs import words

    aspects: dict[str, list[str]] = {}

    def put(key: str, i: int, value: str) -> None:
        aspects.setdefault(key, [""] * len(scenarios))[i] = value

    for i, (s, run) in enumerate(zip(scenarios, runs, strict=True)):
        cfg = run.manifest.get("config") if isinstance(run.manifest.get("config"), dict) else {}
        put("Schedule", i, s["schedule"])
        put("Mirrors", i, ", ".join(m["id"] for m in s["mirrors"]) or "-")
        for k, v in words.population_items(cfg) + words.rules_items(cfg):
            put(k, i, v)
        effect = run.manifest.get("population_effect") or run.ds.attrs.get("population_effect")
        put("Between-trial effect", i, str(effect or "-"))
        put("Simulation", i, s["size"])
    rows = [[("* " if len(set(v)) > 1 else "") + k, *v] for k, v in aspects.items()]
    return {"columns": ["", *[s["name"] for s in scenarios]], "rows": rows, "numeric": set()}


def compare_report(
    out_dir: Path | str,
    comparison: pd.DataFrame,
    *,
    runs: Sequence[Any],
    names: Sequence[str],
    notes: Sequence[str] = (),
    dose: pd.DataFrame | None = None,
    limits: pd.DataFrame | None = None,
    caveat: str = "",
) -> Path:
    """Write ``out_dir/report.html`` for a comparison and return its path.

    Parameters
    ----------
    out_dir : folder holding the comparison PNGs (drawn here if missing).
    comparison : the table from :func:`lenasim.outputs.comparison.compare_runs`.
    runs : the compared :class:`lenasim.outputs.comparison.Run` objects, reference first.
    names : display names of the runs, in the same order.
    notes : pairing, alignment and setup notes (unpaired or differing ones as warnings).
    dose : side-by-side dose table (compare's dose.csv), optional.
    limits : P(safer) per limit (compare's limits.csv), optional.
    caveat : the comparison's caveat (:func:`lenasim.outputs.caveats.decision_caveat`).
    """
    from lenasim.outputs import figures as plots

    out_dir = Path(out_dir)
    datasets = {n: r.ds for n, r in zip(names, runs, strict=True)}
    colors = plots.scenario_colors(list(names))
    renderers = {
        "per_cycle_overlay.png": lambda: plots.plot_per_cycle_overlay(datasets, colors),
        "cumulative_overlay.png": lambda: plots.plot_cumulative_overlay(datasets, colors),
        "differences.png": lambda: plots.plot_differences(comparison, colors),
        "dose_overlay.png": lambda: plots.plot_dose_overlay(datasets, colors),
    }
    lim_rows, cut = [], "0.25"
    if limits is not None and len(limits):
        cut = f"{float(limits['max_probability'].iloc[0]):g}"
        lim_rows = [
            {"scenario": r.scenario, "limit": r.limit,
             "safer": "identical" if bool(r.identical) else
             f"{r.p_safer:.2f} ± {r.p_safer_mcse:.2f}",
             "ref_p": f"{r.ref_p_exceed:.2f} ± {r.ref_p_exceed_mcse:.2f}",
             "scen_p": f"{r.scen_p_exceed:.2f} ± {r.scen_p_exceed_mcse:.2f}",
             "verdict": r.scen_verdict,
             "cls": {"acceptable": "good", "not acceptable": "bad"}.get(r.scen_verdict,
                                                                         "undecided"),
             "pairing": "paired" if bool(r.paired) else "unpaired",
             "tipping": str(getattr(r, "tipping", "") or "")}
            for r in limits.itertuples()
        ]  # fmt: skip
    scenarios = []
    for name, run in zip(names, runs, strict=True):
        s = _scenario(run.manifest, run.ds)
        scenarios.append(s | {"name": name, "path": str(run.path)})
    prov = []
    for name, run in zip(names, runs, strict=True):
        h, m = run.manifest.get("hashes") or {}, run.manifest
        prov.append([name, str(h.get("posterior", "-"))[:16], str(h.get("config", "-"))[:16],
                     m.get("seed", run.ds.attrs.get("seed", "-")),
                     m.get("n_patients", run.ds.attrs.get("n_patients", "-")),
                     m.get("population_effect", run.ds.attrs.get("population_effect", "-"))])  # fmt: skip
    by_measure, dose_zero = dose_tables(dose) if dose is not None and len(dose) else ([], [])
    html = render(
        "compare.html",
        title=f"lenasim comparison: {' vs '.join(names)}",
        stamp=_stamp(),
        ref=names[0],
        others=", ".join(names[1:]),
        caveat=caveat or _default_caveat(),
        notes=_notes(notes),
        main=_main_tables(comparison),
        limits=lim_rows,
        max_probability=cut,
        images=_images(out_dir, plots.COMPARISON_PNGS, lambda n: renderers[n]()),
        dose=by_measure,
        dose_zero=dose_zero,
        setup=_setup_table(scenarios, runs),
        scenarios=scenarios,
        provenance={
            "columns": [
                "Scenario",
                "Posterior (sha256, first 16)",
                "Config (sha256, first 16)",
                "Seed",
                "Patients",
                "Population effect",
            ],
            "rows": prov,
        },  # fmt: skip
        ev=evidence_rows(),
    )
    out = out_dir / "report.html"
    out.write_text(html, encoding="utf-8")
    return out
