"""The mirrored trial: every figure the evidence table reports for the arms a scenario
``mirrors``, beside the model's prediction of it as a new trial would report it.

Each row is predicted as validation predicts a held-out row
(:func:`lenasim.model.predictive.predict_rows`): the arm's own protocol, n, setting and
partners from the evidence table (not the scenario's regimen), every posterior draw
repeated 4 times with a new between-trial effect u ~ N(0, tau) per copy (rows of one
trial share it), the frailty integrated out, and the reporting noise of the row's unit
(Binomial for patients and cycle k, the model's Normal for shares of cycles). The
interval is the central 90% of that predictive law, as a share of the row's denominator.
The prediction belongs to the posterior and the evidence table, not to the scenario: it
uses all the posterior's draws (not the run's), is the same in every run that mirrors
the arm, and is read from the store ``lenasim fit`` writes beside the posterior
(:mod:`lenasim.model.row_predictions`), or computed when that store is missing or stale.

Rows that entered the fit informed the posterior, so agreement with them is not a test:
``validate``'s leave-one-trial-out is. Rows outside the fit (other reports of the same
patients, outcomes recorded but not fitted) are shown too. Figures the model cannot
predict (grade >= 2 flare, reports in words only) are counted, not predicted.

NumPy and the standard library only (the run imports no pandas for it): the evidence rows
are :func:`lenasim.evidence.table.evidence_rows` records and the table a
:class:`~lenasim.outputs.tables.frame.Columns` (``to_pandas`` for a DataFrame).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lenasim.evidence.citations import plain_citation
from lenasim.evidence.table import evidence_rows
from lenasim.model.row_predictions import countable_rows, row_quantiles
from lenasim.outputs.tables.frame import Columns

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["MIRROR_COLUMNS", "format_mirrored", "mirrored_rows"]

_OUTCOME_WORDS = {
    "flare_any": "Flare (any grade)",
    "flare_grade3plus": "Flare grade >= 3",
    "tls": "TLS",
    "neutropenia_grade34": "Neutropenia grade 3-4",
}


MIRROR_COLUMNS = (
    "row_id", "arms", "outcome", "unit", "cycles", "events", "n", "observed", "pred_median",
    "pred_q05", "pred_q95", "inside90", "in_fit", "citation",
)  # fmt: skip


def _unit_words(unit: str, cycles: int) -> str:
    if unit == "cycle_k":
        return f"in cycle {cycles}"
    if unit == "cycles":
        return f"share of cycles (~{cycles} per patient)"
    return f"patients, over {cycles} cycle{'s' if cycles != 1 else ''}"


def mirrored_rows(arm_ids: list[str], post, spec_path: str | Path) -> tuple[Columns, int]:
    """The mirrored arms' reported figures with their new-trial predictions, from every
    draw of ``post`` (a :class:`~lenasim.model.posterior.Posterior` of the spec at
    ``spec_path``).

    Returns the table (columns :data:`MIRROR_COLUMNS`; shares as fractions) and the
    number of the arms' figures that could not be predicted (outcomes the model does not
    have, figures without a count).
    """
    wanted = set(arm_ids)
    mine = [r for r in evidence_rows() if wanted & set(r.arm_ids)]
    rows = countable_rows(mine)
    skipped = len(mine) - len(rows)
    if not rows:
        return Columns.from_rows([], columns=MIRROR_COLUMNS), skipped
    quantiles, _ = row_quantiles(post, spec_path, rows)
    out = []
    for r in rows:
        n = float(r.n)
        lo, med, hi = (x / n for x in quantiles[r.row_id])
        obs = float(r.events) / n
        cycles = int(r.cycle_k) if r.unit == "cycle_k" else int(r.cycles_at_risk)
        out.append({
            "row_id": r.row_id, "arms": " + ".join(r.arm_ids), "outcome": r.outcome,
            "unit": r.unit, "cycles": cycles, "events": int(r.events), "n": int(r.n),
            "observed": obs, "pred_median": med, "pred_q05": lo, "pred_q95": hi,
            "inside90": bool(lo - 1e-12 <= obs <= hi + 1e-12), "in_fit": bool(r.in_fit),
            "citation": plain_citation(r.source),
        })  # fmt: skip
    return Columns.from_rows(out, columns=MIRROR_COLUMNS), skipped


def describe_row(r, arm_ids: list[str] = ()) -> str:
    """'TLS, patients, over 6 cycles' for a row of :func:`mirrored_rows`, with the other
    arms of a pooled figure ('pooled with chanan_khan_2006_b')."""
    text = f"{_OUTCOME_WORDS.get(r.outcome, r.outcome)}, {_unit_words(r.unit, int(r.cycles))}"
    others = [a for a in str(r.arms).split(" + ") if a not in arm_ids]
    return text + (f" (pooled with {', '.join(others)})" if arm_ids and others else "")


def format_mirrored(df: Columns | pd.DataFrame, arm_ids: list[str], skipped: int = 0) -> str:
    """The mirrored-trial table as text."""
    head = f"Mirrored trial ({', '.join(arm_ids)}): reported against predicted for a new trial"
    if not len(df):
        return f"{head}: the evidence table has no countable figure for these arms."
    rows = [
        (describe_row(r, arm_ids), f"{r.events}/{r.n} = {100 * r.observed:.0f}%",
         f"{100 * r.pred_median:.0f}% ({100 * r.pred_q05:.0f}-{100 * r.pred_q95:.0f})",
         ("inside" if r.inside90 else "OUTSIDE") + ("" if r.in_fit else ", not fitted"))
        for r in df.itertuples()
    ]  # fmt: skip
    header = ("figure", "reported", "predicted (90%)", "")
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(4)]
    lines = [head + ":", "  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  " + "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)) for r in rows]
    inside = int(sum(df["inside90"]))
    lines.append(
        f"  {inside} of {len(df)} inside their 90% interval; fitted figures informed the "
        "posterior (not a held-out test)."
        + (f" {skipped} figure(s) the model cannot predict left out." if skipped else "")
    )
    return "\n".join(line.rstrip() for line in lines)
