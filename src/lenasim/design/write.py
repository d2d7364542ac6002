"""results/design-<name>/: written atomically (the project's folder writer), with a
manifest.

- ``operating_characteristics.csv``: truth, quantity, candidate, what, value, mcse
  (:mod:`lenasim.design.oc` says what each quantity is);
- ``trials.csv``: one row per simulated trial (its truth's posterior index, selection,
  stop, patients per candidate, duration): what a cross-check needs;
- ``decision_table.csv``: the next candidate after each outcome of the first two cohorts;
- ``selection.png``: P(select each candidate) per truth, with 95% Monte Carlo intervals;
- ``report.md``: the headline numbers, the decision table and the limits of the method;
- ``manifest.json``: resolved config, hashes, versions, seed, wall time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.writers import write_atomically  # the one import of the writer
from lenasim.design.config import DesignConfig
from lenasim.design.simulate import DesignResult

__all__ = ["KIND", "design_report", "plot_selection", "write_design"]

KIND = "design"


def _plt():
    """matplotlib.pyplot, imported here only (the design stage's one door to matplotlib:
    a design without plots never loads it)."""
    import matplotlib.pyplot as plt

    return plt


def plot_selection(oc: pd.DataFrame, ax=None):
    """Bars of P(select each candidate) per truth, with 1.96 MCSE error bars."""
    plt = _plt()
    sel = oc[oc.quantity == "p_select"]
    truths = list(dict.fromkeys(sel.truth))
    cands = list(dict.fromkeys(sel.candidate))
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 0.9 * len(cands), 3.6))
    width = 0.8 / max(1, len(truths))
    x = np.arange(len(cands))
    for i, t in enumerate(truths):
        rows = sel[sel.truth == t].set_index("candidate").loc[cands]
        ax.bar(x + i * width - 0.4 + width / 2, rows.value, width, yerr=1.96 * rows.mcse,
               capsize=2, label=t)  # fmt: skip
    ax.set_xticks(x, cands, rotation=30, ha="right")
    ax.set_ylabel("P(selected)")
    ax.set_ylim(0, 1)
    ax.set_title("Selection probabilities (bars: 95% Monte Carlo interval)")
    ax.legend(title="truth", fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def _pct(v: float, se: float) -> str:
    return "n/a" if np.isnan(v) else f"{100 * v:.1f}% (± {100 * se:.1f})"


def _num(v: float, se: float) -> str:
    return "n/a" if np.isnan(v) else f"{v:.2f} (± {se:.2f})"


def design_report(cfg: DesignConfig, res: DesignResult, posterior_note: str) -> str:
    """The Markdown report: per truth the headline operating characteristics (value and
    Monte Carlo SE), then the decision table and what the numbers cannot say."""
    lines = [f"# Design `{cfg.name}`", "", cfg.description.strip(), "",
             f"{cfg.trials} simulated trials per truth; posterior: {posterior_note}; rule: "
             f"{cfg.decide.rule}; cohorts of {cfg.trial.cohort_size}, at most "
             f"{cfg.trial.max_patients} patients, start at {cfg.trial.start}.", "",
             "Candidates, in the design's order (" + ("planned mg per day over the cycles"
             if cfg.order == "intensity" else "as listed in the config, not checked against "
             "planned intensity") + "):", ""]  # fmt: skip
    lines += [f"- `{c.name}`: {c.regimen.describe()}" for c in cfg.candidates]
    lines += ["", "Limits (overdose control: acceptable when P(risk > limit) <= "
              f"{cfg.limits.max_probability:g}):", ""]  # fmt: skip
    lines += [f"- {lim.describe(ev)}" for ev, lim in cfg.limits.items()]
    lines += ["", "Quantities (each with its Monte Carlo SE over the simulated trials):", ""]
    lines += [f"- `{q}`: {text}" for q, text in _QUANTITIES.items()]
    for truth, oc in res.oc.groupby("truth", sort=False):
        lines += ["", f"## Truth: {truth}", "", "| quantity | candidate | what | value (± MCSE) |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        for r in oc.itertuples():
            prop = r.quantity.startswith("p_")
            val = _pct(r.value, r.mcse) if prop else _num(r.value, r.mcse)
            lines.append(f"| {r.quantity} | {r.candidate} | {r.what} | {val} |")
    lines += ["", "## Decision table (first two cohorts)", ""]
    dec = res.decisions
    lines += ["| " + " | ".join(dec.columns) + " |", "|" + " --- |" * len(dec.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in dec.itertuples(index=False)]
    caveats = list(_CAVEATS)
    if not cfg.update.frailty:
        caveats[1] = caveats[1].replace(_FRAIL, "each cycle independent given the draw")
    lines += ["", "## What these numbers cannot say", "", *caveats]
    return "\n".join(lines) + "\n"


_QUANTITIES = {
    "p_select": "P(the trial selects the candidate); none: no selection",
    "p_selected_over_limit": "P(the selected candidate's true risk exceeds the limit)",
    "patients": "mean patients per trial, overall and per candidate (backfill included)",
    "patients_backfill": "mean backfilled patients per trial",
    "patients_with_event": "mean patients per trial with the event at least once over "
    "their planned cycles",
    "patients_over_limit": "mean patients per trial treated on a candidate whose true "
    "risk exceeds the limit",
    "p_stop": "P(the trial ends for the reason)",
    "duration_days": "mean days from the first enrolment to the last decision",
    "dose_intensity": "mean mg/day delivered to the trial's patients",
    "low_ess_decisions": "mean decisions per trial whose update had too few effective draws",
    "width_prior, width_after": "90% interval width of the limit's risk at the selected "
    "candidate, today and after the trial (what the trial would teach)",
}

_FRAIL = (
    "each patient's cycles sharing his frailty (update.frailty; a cycle's conditional "
    "risk is the engine's average patient's, not the patient's own dose path)"
)
_CAVEATS = [
    "- The truths are drawn from the lenasim posterior, whose schedule differences are "
    "carried by the monotone dose priors (leave-one-trial-out: the dose structure predicts "
    "no better than a meta-analysis that ignores dose). A design's operating "
    "characteristics are only as good as that spread of truths.",
    "- The in-trial update reweights the posterior's draws by a working likelihood over "
    "every event of the hazards the limits name (flares of any grade with their grade "
    "when a limit names grade >= 3 flare), " + _FRAIL + "; it has "
    "been checked against an exact grid posterior for a small dose-level model and against "
    "NUTS refits of the full model with the trial's patient-cycles "
    "(benchmarks/README.md). Below the ESS floor an escalation becomes a stay.",
    "- Events are placed at mid-cycle (as the engine does): an event is seen half a cycle "
    "after the cycle starts; follow-up without an event counts as the share of the cycle "
    "elapsed.",
    "- Monte Carlo SEs are those of the simulated trials; they do not include the "
    "posterior's own uncertainty about the truth beyond the spread of truths simulated.",
]


def write_design(
    cfg: DesignConfig,
    res: DesignResult,
    out_dir: Path,
    manifest: dict,
    *,
    overwrite: bool,
    plots: bool = True,
    posterior_note: str = "",
) -> Path:
    """Write the folder (see the module docstring) atomically."""

    def build(tmp: Path) -> None:
        res.oc.to_csv(tmp / "operating_characteristics.csv", index=False, float_format="%.6g")
        res.trials.to_csv(tmp / "trials.csv", index=False)
        res.decisions.to_csv(tmp / "decision_table.csv", index=False)
        (tmp / "report.md").write_text(design_report(cfg, res, posterior_note))
        if plots:
            fig = plot_selection(res.oc)
            fig.savefig(tmp / "selection.png", dpi=120, metadata={"Software": None})
            _plt().close(fig)
        full = {"lenasim_result": KIND} | manifest
        full["config"] = json.loads(cfg.model_dump_json())
        (tmp / "manifest.json").write_text(json.dumps(full, indent=2, default=str) + "\n")

    write_atomically(out_dir, build, kind=KIND, overwrite=overwrite)
    return out_dir
