"""What the explorer computes, without Shiny: the settings of one app, the form values a
session starts from, the reference schedule of a paired comparison, and the preview's
tables as HTML. :mod:`lenasim.explore.app` wires these to the browser; the tests call
them directly (tests/explore/test_explore.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from lenasim.explore import form
from lenasim.explore.pipeline_adapter import Preview
from lenasim.outputs.judgements.caveats import format_caveats
from lenasim.outputs.judgements.decision import format_bands, format_limits
from lenasim.outputs.judgements.mirror import format_mirrored
from lenasim.simulation.scenario import Scenario

__all__ = ["Settings", "headline_html", "paired_rows", "preview_sections", "reference_of"]

# The preview's reduced run: draws x patients (the engine does 200 x 200 in a few ms).
PREVIEW_DRAWS = 200
PREVIEW_PATIENTS = 200


@dataclass(frozen=True)
class Settings:
    """One app's fixed settings: the scenario it starts from, where results go, the model
    spec, the schedules offered as references and the preview's size."""

    initial: Scenario
    results: Path  # absolute; every full run writes <results>/<name>/
    references: dict[str, Scenario] = field(default_factory=dict)  # label -> scenario
    preview_draws: int = PREVIEW_DRAWS
    preview_patients: int = PREVIEW_PATIENTS

    @property
    def spec(self) -> Path:
        return Path(self.initial.posterior.spec).resolve()

    def start_values(self) -> dict[str, Any]:
        """The form's values at the start: the initial scenario, with the fixed paths."""
        return self.fix(form.values_from_config(self.initial))

    def fix(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values with the keys the app fixes (posterior.spec, output) set: a browser
        cannot make a run write elsewhere or read another model."""
        return values | {"posterior__spec": str(self.spec), "output": str(self.results)}


def reference_of(current: Scenario, ref: Scenario) -> Scenario:
    """The reference for a paired comparison: ``ref``'s regimen and rules given to the
    current scenario's patients, seed and posterior draws, so that both schedules meet
    the same random numbers and differences come from the schedules."""
    return current.model_copy(update={"name": f"{current.name}-reference",
                                      "regimen": ref.regimen, "rules": ref.rules})  # fmt: skip


def _pct(x: float, digits: int = 1) -> str:
    return "-" if not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _stats(a: np.ndarray) -> dict[str, float]:
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"mean": np.nan, "q05": np.nan, "q95": np.nan, "mcse": np.nan}
    sd = a.std(ddof=1) if a.size > 1 else np.nan
    q05, q95 = np.quantile(a, (0.05, 0.95))
    return {"mean": float(a.mean()), "q05": float(q05), "q95": float(q95),
            "mcse": float(sd / np.sqrt(a.size))}  # fmt: skip


def headline_rows(p: Preview) -> list[dict]:
    """Per event: cycle-1 risk and cumulative risk by the last cycle, each with its mean,
    90% interval across draws and Monte Carlo SE of the mean."""
    rows = []
    for ev in p.ds["event"].values:
        c1 = _stats(p.ds["per_cycle"].sel(event=ev, cycle=1).values)
        cum = _stats(p.ds["cumulative"].sel(event=ev).isel(cycle=-1).values)
        rows.append({"event": str(ev), "cycle1": c1, "cumulative": cum})
    return rows


def headline_html(p: Preview) -> str:
    """The headline table; each cell's mean in ``data-value`` (id ``c1-<event>``)."""
    n_cyc = int(p.ds["cycle"].values[-1])
    head = ("<table class='num' id='headline'><tr><th>event</th><th>cycle 1: mean (90%)</th>"
            f"<th>MCSE</th><th>by cycle {n_cyc}: mean (90%)</th><th>MCSE</th></tr>")  # fmt: skip
    body = []
    for r in headline_rows(p):
        cells = []
        for key, tag in (("cycle1", "c1"), ("cumulative", "cum")):
            s = r[key]
            cells.append(f"<td id='{tag}-{r['event']}' data-value='{s['mean']:.6g}'>"
                         f"{_pct(s['mean'])} ({_pct(s['q05'])} to {_pct(s['q95'])})</td>"
                         f"<td>{_pct(s['mcse'], 2)}</td>")  # fmt: skip
        body.append(f"<tr><td>{escape(r['event'])}</td>{''.join(cells)}</tr>")
    return head + "".join(body) + "</table>"


def paired_rows(p: Preview) -> list[dict]:
    """Current minus reference per event, draw by draw (same random numbers): cycle-1
    risk and cumulative risk by the last cycle both schedules have; the mean difference,
    its 90% interval, MCSE, and the share of draws in which the current schedule is
    riskier."""
    if p.reference is None:
        return []
    last = min(len(p.ds["cycle"]), len(p.reference["cycle"]))
    rows = []
    for ev in p.ds["event"].values:
        for label, var, cyc in (("cycle 1", "per_cycle", 0),
                                (f"by cycle {last}", "cumulative", last - 1)):  # fmt: skip
            d = (p.ds[var].sel(event=ev).isel(cycle=cyc).values
                 - p.reference[var].sel(event=ev).isel(cycle=cyc).values)  # fmt: skip
            s = _stats(d)
            ok = np.isfinite(d)
            s["p_higher"] = float(np.mean(d[ok] > 0)) if ok.any() else np.nan
            rows.append({"event": str(ev), "quantity": label, **s})
    return rows


def paired_html(p: Preview) -> str:
    rows = paired_rows(p)
    if not rows:
        return "<p class='muted'>No reference schedule chosen.</p>"
    head = (
        "<table class='num' id='paired'><tr><th>event</th><th>risk</th>"
        "<th>difference: mean (90%)</th><th>MCSE</th><th>P(current higher)</th></tr>"
    )
    body = "".join(
        f"<tr><td>{escape(r['event'])}</td><td>{r['quantity']}</td>"
        f"<td>{100 * r['mean']:+.1f} pp ({100 * r['q05']:+.1f} to {100 * r['q95']:+.1f})</td>"
        f"<td>{100 * r['mcse']:.2f} pp</td><td>{r['p_higher']:.2f}</td></tr>"
        for r in rows
    )
    return head + body + "</table>"


def limits_mcse(p: Preview) -> str:
    """The Monte Carlo SE of each P(exceed) at the preview's draws (a share of S draws:
    sqrt(P (1 - P) / S)), and which verdicts it could flip."""
    n = p.ds.sizes["draw"]
    cut = float(p.scenario.limits.max_probability)
    parts, close = [], []
    for r in p.limits.to_dict("records"):
        se = float(np.sqrt(r["p_exceed"] * (1 - r["p_exceed"]) / n))
        parts.append(f"{r['limit']}: {se:.3f}")
        if abs(r["p_exceed"] - cut) <= 2 * se:
            close.append(r["limit"])
    text = f"MCSE of P(exceed) at {n} draws: " + "; ".join(parts) + "."
    if close:
        text += (f" Within 2 MCSE of {cut:g}, the full run may give the other verdict: "
                 + "; ".join(close) + ".")  # fmt: skip
    return text


def preview_sections(p: Preview) -> dict[str, str]:
    """The preview's parts as HTML: headline, paired comparison, limits' verdicts, cycle-1
    bands, mirrored trial, caveats (the texts ``lenasim run`` prints)."""

    sc = p.scenario

    def pre(text: str, id_: str) -> str:
        return f"<pre id='{id_}'>{escape(text)}</pre>"

    mirrored = ("<p class='muted'>No evidence arm mirrored (the scenario's <code>mirrors</code>)."
                "</p>")  # fmt: skip
    if p.mirrored is not None:
        mirrored = pre(format_mirrored(p.mirrored, list(sc.mirrors), p.mirror_skipped), "mirrored")
    limits = ""
    if len(p.limits):
        limits = pre(format_limits(p.limits, sc.limits.max_probability) + "\n" + limits_mcse(p),
                     "limits")  # fmt: skip
    return {
        "headline": headline_html(p),
        "paired": paired_html(p),
        "limits": limits or "<p class='muted'>No risk limits stated (<code>limits: {}</code>).</p>",
        "bands": pre(format_bands(p.bands), "bands"),
        "mirrored": mirrored,
        "caveats": pre(format_caveats(p.caveats), "caveats"),
    }
