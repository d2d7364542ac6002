"""results/design-<name>/: written atomically (the project's folder writer), with a
manifest.

- ``operating_characteristics.csv``: truth, quantity, candidate, what, value, mcse
  (:mod:`lenasim.design.oc` says what each quantity is);
- ``trials.csv``: one row per simulated trial (its truth's posterior index, selection,
  stop, patients per candidate, duration): what a cross-check needs;
- ``decision_table.csv``: the next candidate after each outcome of the first two cohorts;
- ``selection.png``: P(select each candidate) per truth, with 95% Monte Carlo intervals;
- ``report.md`` (:mod:`lenasim.design.report`): the summary first (stops for toxicity,
  false stops, selection, the candidates truly within the limits), then the details;
- ``manifest.json``: resolved config, hashes, versions, seed, wall time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.writers import write_atomically  # the one import of the writer
from lenasim.design.config import DesignConfig
from lenasim.design.report import design_report
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
