"""The mirrored trial: every figure the evidence table reports for the arms a scenario
``mirrors``, beside the model's prediction of it as a new trial would report it.

Each row is predicted as validation predicts a held-out row
(:func:`lenasim.model.predictive.predict_rows`): the arm's own protocol, n, setting and
partners from the evidence table (not the scenario's regimen), a new between-trial effect
u ~ N(0, tau) per posterior draw (several per draw), the frailty integrated out, and the
reporting noise of the row's unit (Binomial for patients and cycle k, the model's Normal
for shares of cycles). The interval is the central 90% of that predictive law, as a
share of the row's denominator.

Rows that entered the fit informed the posterior, so agreement with them is not a test:
``validate``'s leave-one-trial-out is. Rows outside the fit (other reports of the same
patients, outcomes recorded but not fitted) are shown too. Figures the model cannot
predict (grade >= 2 flare, reports in words only) are counted, not predicted.

NumPy and the standard library only (the run imports no pandas for it): the evidence rows
are :func:`lenasim.evidence.table.evidence_rows` records and the table a
:class:`MirroredTable` (``to_pandas`` for callers that want a DataFrame).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from lenasim.core.hazard import OUTCOME_EVENT, HazardDraws
from lenasim.evidence.citations import plain_citation
from lenasim.evidence.table import evidence_rows, load_arms
from lenasim.model.predictive import predict_rows
from lenasim.model.spec import load_spec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["MIRROR_COLUMNS", "MirroredRow", "MirroredTable", "format_mirrored", "mirrored_rows"]

_OUTCOME_WORDS = {
    "flare_any": "Flare (any grade)",
    "flare_grade3plus": "Flare grade >= 3",
    "tls": "TLS",
    "neutropenia_grade34": "Neutropenia grade 3-4",
}


class MirroredRow(NamedTuple):
    """One row of the mirrored trial (the columns :data:`MIRROR_COLUMNS`)."""

    row_id: str
    arms: str
    outcome: str
    unit: str
    cycles: int
    events: int
    n: int
    observed: float
    pred_median: float
    pred_q05: float
    pred_q95: float
    inside90: bool
    in_fit: bool
    citation: str


MIRROR_COLUMNS = MirroredRow._fields


class MirroredTable:
    """The mirrored trial's rows without pandas (the run imports none): ``len``, rows by
    :meth:`itertuples`, a column by ``table[name]`` (a list), :meth:`to_csv` (the bytes
    of ``DataFrame.to_csv(index=False)``) and :meth:`to_pandas`."""

    def __init__(self, rows: list[MirroredRow]):
        self.rows = tuple(rows)

    columns = MIRROR_COLUMNS

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list:
        i = MIRROR_COLUMNS.index(column)
        return [r[i] for r in self.rows]

    def itertuples(self):
        return iter(self.rows)

    def to_csv(self, path: str | Path, *, index: bool = False) -> None:
        """Write the table as pandas writes it (``index=False``, floats by their shortest
        repr, booleans True/False, fields quoted when they need it, "\\n" line ends)."""
        if index:
            raise ValueError("MirroredTable.to_csv: the table has no index to write")
        with open(path, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(MIRROR_COLUMNS)
            out.writerows(map(_csv_fields, self.rows))

    def to_pandas(self) -> pd.DataFrame:
        """The table as a DataFrame (int64, float64 and bool columns)."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=list(MIRROR_COLUMNS))


def _csv_fields(r: MirroredRow) -> list[str]:
    """pandas' text of each field: ``str`` (a float's shortest repr), NaN empty."""
    return ["" if v != v else str(v) for v in r]


def _unit_words(unit: str, cycles: int) -> str:
    if unit == "cycle_k":
        return f"in cycle {cycles}"
    if unit == "cycles":
        return f"share of cycles (~{cycles} per patient)"
    return f"patients, over {cycles} cycle{'s' if cycles != 1 else ''}"


def mirrored_rows(
    arm_ids: list[str],
    draws: HazardDraws,
    spec_path: str | Path,
    *,
    seed: int,
) -> tuple[MirroredTable, int]:
    """The mirrored arms' reported figures with their new-trial predictions.

    Returns the table (columns :data:`MIRROR_COLUMNS`; shares as fractions) and the
    number of the arms' figures that could not be predicted (outcomes the model does not
    have, figures without a count).
    """
    wanted = set(arm_ids)
    mine = [r for r in evidence_rows() if wanted & set(r.arm_ids)]
    rows = [r for r in mine if r.outcome in OUTCOME_EVENT and r.unit != "qualitative"]
    skipped = len(mine) - len(rows)
    if not rows:
        return MirroredTable([]), skipped
    arms = load_arms()
    spec = load_spec(spec_path)
    rng = np.random.default_rng([int(seed), 0x3199])
    laws = predict_rows(draws, rows, arms, quadrature_nodes=spec.quadrature_nodes,
                        quadrature_rule=spec.quadrature_rule, rng=rng)  # fmt: skip
    out = []
    for r, law in zip(rows, laws, strict=True):
        n = float(r.n)
        lo, med, hi = (law.quantile(q) / n for q in (0.05, 0.5, 0.95))
        obs = float(r.events) / n
        cycles = int(r.cycle_k) if r.unit == "cycle_k" else int(r.cycles_at_risk)
        out.append(MirroredRow(
            row_id=r.row_id, arms=" + ".join(r.arm_ids), outcome=r.outcome, unit=r.unit,
            cycles=cycles, events=int(r.events), n=int(r.n), observed=obs, pred_median=med,
            pred_q05=lo, pred_q95=hi, inside90=bool(lo - 1e-12 <= obs <= hi + 1e-12),
            in_fit=bool(r.in_fit), citation=plain_citation(r.source),
        ))  # fmt: skip
    return MirroredTable(out), skipped


def describe_row(r, arm_ids: list[str] = ()) -> str:
    """'TLS, patients, over 6 cycles' for a row of :func:`mirrored_rows`, with the other
    arms of a pooled figure ('pooled with chanan_khan_2006_b')."""
    text = f"{_OUTCOME_WORDS.get(r.outcome, r.outcome)}, {_unit_words(r.unit, int(r.cycles))}"
    others = [a for a in str(r.arms).split(" + ") if a not in arm_ids]
    return text + (f" (pooled with {', '.join(others)})" if arm_ids and others else "")


def format_mirrored(df: MirroredTable | pd.DataFrame, arm_ids: list[str], skipped: int = 0) -> str:
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
