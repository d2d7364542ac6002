"""One row of the evidence table (``evidence.csv``: one figure a source reports), read and
checked against its arms: outcome, unit, counts, the printed percent, whether it enters
the fit, and the agreement of pooled arms. A problem is an :class:`EvidenceError` naming
the file, the row (row_id and line), the field and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from lenasim.core.errors import EvidenceError
from lenasim.core.vocabulary import OUTCOMES
from lenasim.core.vocabulary import UNITS as FITTED_UNITS
from lenasim.evidence.arms import Arm

__all__ = ["UNITS", "Where", "parse_row"]

UNITS = (*FITTED_UNITS, "qualitative")  # the likelihood's units (the vocabulary), or none
# Arm attributes that must agree across the arms of a pooled row.
_POOLED_AGREE = ("trial", "setting", "elderly", "partners", "partner_classes")


@dataclass(frozen=True)
class Where:
    file: str
    row_id: str
    line: int

    def fail(self, field: str, problem: str, fix: str) -> EvidenceError:
        return EvidenceError(
            f"{self.file}: row '{self.row_id}' (line {self.line}), field '{field}': "
            f"{problem}; fix: {fix}"
        )


def _int(w: Where, field: str, text: str, *, minimum: int = 0) -> int | None:
    if text == "":
        return None
    try:
        val = int(text)
    except ValueError:
        raise w.fail(field, f"'{text}' is not a whole number", "write an integer") from None
    if val < minimum:
        raise w.fail(field, f"{val} is below {minimum}", f"use a count >= {minimum}")
    return val


def _decimal(w: Where, field: str, text: str) -> Decimal | None:
    if text == "":
        return None
    try:
        val = Decimal(text)
    except InvalidOperation:
        raise w.fail(
            field, f"'{text}' is not a number", "write a plain number, e.g. 58 or 1.7"
        ) from None
    if not val.is_finite() or val < 0:
        raise w.fail(field, f"{text} must be a finite number >= 0", "write a non-negative number")
    return val


def _percent_ok(events: int, n: int, pct: Decimal, tol: float) -> bool:
    """True if 100*events/n rounds (half either way) to ``pct`` at its printed precision."""
    exponent = pct.as_tuple().exponent
    half = 0.5 * 10.0 ** (exponent if isinstance(exponent, int) else 0)
    return abs(100.0 * events / n - float(pct)) <= half + tol + 1e-9


def _matching_counts(n: int, pct: Decimal) -> list[int]:
    return [k for k in range(n + 1) if _percent_ok(k, n, pct, 0.0)]


def parse_row(w: Where, rec: dict[str, str], arms: dict[str, Arm]) -> dict[str, Any]:
    row: dict[str, Any] = {"row_id": w.row_id, "line": w.line}
    for col in ("trial", "source", "cycles_source"):
        if not rec[col]:
            fix = {
                "source": "give the seed file and section/table, or the address in evidence-notes.md",
                "cycles_source": "say where the number of cycles comes from, or 'assumed: ...' with the reason",
            }.get(col, "give the trial's short id")
            raise w.fail(col, "is empty", fix)
        row[col] = rec[col]
    row["note"] = rec["note"]
    outcome, unit = rec["outcome"], rec["unit"]
    if outcome not in OUTCOMES:
        raise w.fail("outcome", f"unknown outcome '{outcome}'", f"use one of {', '.join(OUTCOMES)}")
    if unit not in UNITS:
        raise w.fail("unit", f"unknown unit '{unit}'", f"use one of {', '.join(UNITS)}")
    row["outcome"], row["unit"] = outcome, unit

    ids = tuple(a.strip() for a in rec["arms"].split(";")) if rec["arms"] else ()
    if not ids or any(not a for a in ids):
        raise w.fail(
            "arms", f"'{rec['arms']}' names no arm", "give an arm id, or several joined by ';'"
        )
    if len(set(ids)) != len(ids):
        raise w.fail("arms", f"an arm is repeated in '{rec['arms']}'", "name each arm once")
    for a in ids:
        if a not in arms:
            raise w.fail(
                "arms",
                f"unknown arm id '{a}'",
                f"use an arm defined in arms.yaml ({', '.join(sorted(arms))}) or add it there",
            )
        if arms[a].trial != row["trial"]:
            raise w.fail(
                "trial",
                f"'{row['trial']}' but arm '{a}' belongs to trial '{arms[a].trial}'",
                "make the row's trial match its arms",
            )
    row["arms"] = ";".join(ids)
    row["arm_ids"] = ids

    k = _int(w, "cycle_k", rec["cycle_k"], minimum=1)
    if unit == "cycle_k" and k is None:
        raise w.fail(
            "cycle_k", "is empty for a unit=cycle_k row", "give the cycle number k (1, 2, ...)"
        )
    if unit != "cycle_k" and k is not None:
        raise w.fail(
            "cycle_k", f"is {k} but unit is '{unit}'", "leave cycle_k empty unless unit=cycle_k"
        )
    row["cycle_k"] = k
    car = _int(w, "cycles_at_risk", rec["cycles_at_risk"], minimum=1)
    if car is None:
        raise w.fail("cycles_at_risk", "is empty", "give the cycles per patient the figure covers")
    if k is not None and car != k:
        raise w.fail("cycles_at_risk", f"is {car} for a cycle_k row with k={k}", f"set it to {k}")
    row["cycles_at_risk"] = car

    events = _int(w, "events", rec["events"])
    n = _int(w, "n", rec["n"], minimum=1)
    if unit == "qualitative":
        if events is not None:
            raise w.fail(
                "events",
                "a qualitative row has a count",
                "use unit=patients/cycles/cycle_k, or empty events",
            )
    else:
        if events is None:
            raise w.fail("events", "is empty", "give the count (only qualitative rows have none)")
        if n is None:
            raise w.fail(
                "n", "is empty", "give the denominator (only qualitative rows may omit it)"
            )
        if events > n:
            raise w.fail("events", f"{events} events out of n={n}", "events must be <= n")
    row["events"], row["n"] = events, n

    pct = _decimal(w, "percent_reported", rec["percent_reported"])
    tol = _decimal(w, "percent_tolerance", rec["percent_tolerance"])
    tol_f = float(tol) if tol is not None else 0.0
    if tol_f > 0 and not rec["note"].strip():
        raise w.fail(
            "percent_tolerance", f"{tol} given without a note", "explain the mismatch in the note"
        )
    if pct is not None:
        if pct > 100:
            raise w.fail(
                "percent_reported", f"{pct} is above 100", "give the percent as printed (0-100)"
            )
        if events is None or n is None:
            raise w.fail(
                "percent_reported",
                "a percent without events and n",
                "give the count and denominator",
            )
        if not _percent_ok(events, n, pct, tol_f):
            match = _matching_counts(n, pct)
            hint = (
                f"counts out of {n} that print {pct}%: {match}"
                if match
                else f"no count out of {n} prints {pct}%"
            )
            raise w.fail(
                "percent_reported",
                f"{pct}% does not match {events}/{n} = {100 * events / n:.2f}% "
                f"(tolerance {tol_f:g}); {hint}",
                "correct events or n, or set percent_tolerance and explain it in the note",
            )
    row["percent_reported"] = float(pct) if pct is not None else math.nan
    row["percent_tolerance"] = tol_f

    fit = rec["in_fit"].strip().lower()
    if fit not in ("true", "false"):
        raise w.fail("in_fit", f"'{rec['in_fit']}' is not true/false", "write true or false")
    row["in_fit"] = fit == "true"
    if row["in_fit"] and unit == "qualitative":
        raise w.fail("in_fit", "a qualitative row cannot enter the fit", "set in_fit to false")
    if row["in_fit"] and outcome == "flare_grade2plus":
        raise w.fail(
            "in_fit", "flare_grade2plus rows are recorded, never fitted", "set in_fit to false"
        )

    pooled = [arms[a] for a in ids]
    for attr in _POOLED_AGREE:
        vals = {getattr(a, attr) for a in pooled}
        if len(vals) > 1:
            raise w.fail(
                "arms",
                f"pooled arms disagree on {attr} ({sorted(map(str, vals))})",
                "pool only arms of one trial with the same setting and partners, or split the row",
            )
    ns = [a.n for a in pooled]
    if unit != "qualitative" and any(x is None for x in ns):
        missing = [a.arm_id for a in pooled if a.n is None]
        raise w.fail(
            "arms",
            f"arm(s) {missing} have no n",
            "give the arm's n in arms.yaml, or make the row qualitative",
        )
    if unit in ("patients", "cycle_k") and n is not None and None not in ns and n > sum(ns):
        raise w.fail(
            "n",
            f"{n} patients but the arms have {sum(ns)} in all",
            "the denominator cannot exceed the arms' patients: check n in the row and arms.yaml",
        )
    return row
