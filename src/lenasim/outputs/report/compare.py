"""The HTML report of a comparison (``report.html`` of compare's folder): the caveat, the
pairing notes, the differences per event, the limits' P(safer), the figures, the dose
side by side, the scenarios' setups and their provenance; see
:mod:`lenasim.outputs.report.run` for how a page is built."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenasim.core.vocabulary import event_title
from lenasim.outputs.figures import compare as figures
from lenasim.outputs.figures.layout import scenario_colors
from lenasim.outputs.judgements import words
from lenasim.outputs.judgements.caveats import decision_caveat
from lenasim.outputs.judgements.reweighting import short_words
from lenasim.outputs.report.html import render
from lenasim.outputs.report.page import images, scenario_section, stamp
from lenasim.outputs.report.tables import dose_tables, evidence_rows
from lenasim.outputs.tables.formats import interval, ratio, signed_pp
from lenasim.outputs.tables.subgroup_compare import subgroup_tables

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["compare_report"]


def _main_tables(df: pd.DataFrame) -> list[dict]:
    """The comparison's headline rows, one table per scenario: per event, cycle 1, cycle 2
    and the cumulative risk by the last cycle, in the events' order of the runs."""
    out = []
    for name, sub in df.groupby("scenario", sort=False):
        last = int(sub.loc[sub["quantity"] == "cumulative", "cycle"].max())
        rows = []
        first: dict[tuple, int] = {}  # (quantity, event, cycle) -> its first row in sub
        for i, key in enumerate(zip(sub["quantity"], sub["event"], sub["cycle"], strict=True)):
            first.setdefault(key, i)
        for event in dict.fromkeys(sub.loc[sub["quantity"] != "dose", "event"]):
            for qty, cyc, label in (("per_cycle", 1, "Cycle 1"), ("per_cycle", 2, "Cycle 2"),
                                    ("cumulative", last, f"By end of cycle {last}")):  # fmt: skip
                if (qty, event, cyc) not in first:
                    continue
                r = sub.iloc[first[qty, event, cyc]]
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
                    *([short_words(r)] if "tipping" in r else []),  # judgements/tipping.py
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
    by_subgroup: pd.DataFrame | None = None,
    plots: bool = True,
) -> Path:
    """Write ``out_dir/report.html`` for a comparison and return its path.

    Parameters
    ----------
    out_dir : folder holding the comparison PNGs (drawn here if missing).
    comparison : the table from :func:`lenasim.outputs.report.comparison.compare_runs`.
    runs : the compared :class:`lenasim.outputs.tables.runs.Run` objects, reference first.
    names : display names of the runs, in the same order.
    notes : pairing, alignment and setup notes (unpaired or differing ones as warnings).
    dose : side-by-side dose table (compare's dose.csv), optional.
    limits : P(safer) per limit (compare's limits.csv), optional.
    caveat : the comparison's caveat (:func:`lenasim.outputs.judgements.caveats.decision_caveat`).
    by_subgroup : the paired differences by subgroup (compare's subgroups.csv), optional:
        shown by CrCl band.
    plots : embed the PNGs (``False``: the page has no figures; for tests).
    """
    out_dir = Path(out_dir)
    datasets = {n: r.ds for n, r in zip(names, runs, strict=True)}
    colors = scenario_colors(list(names))
    renderers = {
        "per_cycle_overlay.png": lambda: figures.plot_per_cycle_overlay(datasets, colors),
        "cumulative_overlay.png": lambda: figures.plot_cumulative_overlay(datasets, colors),
        "differences.png": lambda: figures.plot_differences(comparison, colors),
        "dose_overlay.png": lambda: figures.plot_dose_overlay(datasets, colors),
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
        s = scenario_section(run.manifest, run.ds)
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
        stamp=stamp(),
        ref=names[0],
        others=", ".join(names[1:]),
        caveat=caveat or _default_caveat(),
        notes=_notes(notes),
        main=_main_tables(comparison),
        limits=lim_rows,
        max_probability=cut,
        subgroups=subgroup_tables(by_subgroup) if by_subgroup is not None else [],
        images=images(out_dir, figures.COMPARISON_PNGS, lambda n: renderers[n]()) if plots else [],
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
