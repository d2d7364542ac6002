"""The cited evidence table: trial arms (arms.yaml) and reported figures (evidence.csv).

``arms.yaml`` holds one entry per trial arm (schedule in the regimen language,
setting, partners, prophylaxis, source and judgments); ``evidence.csv`` one row per
figure a source reports (outcome, unit, events, denominator, printed percent,
whether it enters the fit, note). Both ship in ``lenasim/evidence/data``.

Everything is validated at load; a problem raises :class:`EvidenceError` naming the
file, the row (row_id and line) or arm, the field and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import Field, ValidationError

from lenasim.core.errors import EvidenceError
from lenasim.core.regimen import Regimen
from lenasim.core.schema import LAX, PartnerClass, Setting, Strict, format_errors
from lenasim.core.vocabulary import OUTCOMES
from lenasim.core.vocabulary import UNITS as FITTED_UNITS
from lenasim.core.yamlio import load_yaml

__all__ = [
    "Arm",
    "COLUMNS",
    "OUTCOMES",
    "UNITS",
    "evidence_hash",
    "fitted_rows",
    "load_arms",
    "load_evidence",
]

PathLike = str | Path

UNITS = (*FITTED_UNITS, "qualitative")  # the likelihood's units (the vocabulary), or none
COLUMNS = (
    "row_id", "trial", "arms", "source", "outcome", "unit", "cycle_k", "cycles_at_risk",
    "cycles_source", "events", "n", "percent_reported", "percent_tolerance", "in_fit", "note",
)  # fmt: skip
# Arm attributes that must agree across the arms of a pooled row.
_POOLED_AGREE = ("trial", "setting", "elderly", "partners", "partner_classes")


class Arm(Strict):
    """One trial arm: who was treated, with which schedule, and where that comes from.

    ``n`` is None when the source gives no patient count (qualitative-only arms).
    """

    arm_id: str
    trial: str = Field(..., min_length=1)
    label: str = Field(..., min_length=1)
    citation: str = Field(..., min_length=1)
    setting: Setting
    elderly: bool
    n: int | None = Field(..., ge=1)
    regimen: Regimen
    partners: Annotated[tuple[str, ...], LAX]
    partner_classes: Annotated[tuple[PartnerClass, ...], LAX]
    steroid_prophylaxis: bool
    source: str = Field(..., min_length=1)
    note: str = ""


def _data_file(name: str) -> Any:
    return resources.files("lenasim.evidence") / "data" / name


def _read_bytes(path: PathLike | None, default: str) -> tuple[bytes, str]:
    src = _data_file(default) if path is None else Path(path)
    try:
        return src.read_bytes(), str(src)
    except OSError as err:
        raise EvidenceError(f"{src}: cannot read the file ({err})") from err


# --------------------------------------------------------------------------- arms


# Parsed and validated tables by (file, sha256 of its bytes): a process (a search, the
# tests) reads the same files many times; the bytes are read each time, so an edited
# file is parsed again. Arms are frozen; callers get a new dict or DataFrame each time.
_ARMS_CACHE: dict[tuple, dict[str, Arm]] = {}
_EVIDENCE_CACHE: dict[tuple, pd.DataFrame] = {}


def load_arms(path: PathLike | None = None) -> dict[str, Arm]:
    """Load and validate the trial arms (see :func:`_load_arms`), once per file content."""
    raw, name = _read_bytes(path, "arms.yaml")
    key = (name, hashlib.sha256(raw).digest())
    if key not in _ARMS_CACHE:
        _ARMS_CACHE[key] = _load_arms(path)
    return dict(_ARMS_CACHE[key])


def _load_arms(path: PathLike | None = None) -> dict[str, Arm]:
    """Load and validate the trial arms.

    Parameters
    ----------
    path : arms YAML file; default the package's ``data/arms.yaml``.

    Returns
    -------
    dict of arm id -> :class:`Arm`, in file order.
    """
    raw, name = _read_bytes(path, "arms.yaml")
    # Strict YAML: an arm id given twice is an error naming both lines.
    doc = load_yaml(name, EvidenceError, "arms file", data=raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("arms"), dict) or not doc["arms"]:
        raise EvidenceError(f"{name}: expected a top-level mapping `arms:` of arm_id -> arm fields")
    out: dict[str, Arm] = {}
    for arm_id, spec in doc["arms"].items():
        if not isinstance(arm_id, str) or not arm_id:
            raise EvidenceError(f"{name}: arms: arm id {arm_id!r} must be text; fix: quote it")
        if not isinstance(spec, dict):
            raise EvidenceError(f"{name}: arms.{arm_id}: expected a mapping of fields")
        if "arm_id" in spec:
            raise EvidenceError(
                f"{name}: arms.{arm_id}.arm_id: the arm id is the mapping key; remove this field"
            )
        try:
            out[arm_id] = Arm.model_validate({"arm_id": arm_id, **spec})
        except ValidationError as err:
            raise EvidenceError(format_errors(err, Arm, name, root=("arms", arm_id))) from None
    return out


# ----------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class _Where:
    file: str
    row_id: str
    line: int

    def fail(self, field: str, problem: str, fix: str) -> EvidenceError:
        return EvidenceError(
            f"{self.file}: row '{self.row_id}' (line {self.line}), field '{field}': "
            f"{problem}; fix: {fix}"
        )


def _int(w: _Where, field: str, text: str, *, minimum: int = 0) -> int | None:
    if text == "":
        return None
    try:
        val = int(text)
    except ValueError:
        raise w.fail(field, f"'{text}' is not a whole number", "write an integer") from None
    if val < minimum:
        raise w.fail(field, f"{val} is below {minimum}", f"use a count >= {minimum}")
    return val


def _decimal(w: _Where, field: str, text: str) -> Decimal | None:
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


def _parse_row(w: _Where, rec: dict[str, str], arms: dict[str, Arm]) -> dict[str, Any]:
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


def _check_double_counting(df: pd.DataFrame, name: str) -> None:
    """No two fitted rows may count the same arm's patients for the same outcome.

    Rows overlap when they share an arm (pooled rows included) and an outcome; the one
    exception is two ``cycle_k`` rows for different cycles (different events).
    """
    fit = df[df["in_fit"]]
    recs = list(
        fit[["row_id", "line", "arm_ids", "outcome", "unit", "cycle_k"]].itertuples(index=False)
    )
    for i, a in enumerate(recs):
        for b in recs[i + 1 :]:
            if a.outcome != b.outcome or not set(a.arm_ids) & set(b.arm_ids):
                continue
            if a.unit == "cycle_k" and b.unit == "cycle_k" and a.cycle_k != b.cycle_k:
                continue
            shared = sorted(set(a.arm_ids) & set(b.arm_ids))
            raise EvidenceError(
                f"{name}: rows '{a.row_id}' (line {a.line}) and '{b.row_id}' (line {b.line}), "
                f"field 'in_fit': both fit {a.outcome} for arm(s) {shared}, counting the same "
                "patients twice; fix: set in_fit=false on one and say why in both notes"
            )


def _arm_columns(ids: tuple[str, ...], arms: dict[str, Arm]) -> dict[str, Any]:
    pooled = [arms[a] for a in ids]
    ns = [a.n for a in pooled]
    total = sum(ns) if None not in ns else None
    if len(pooled) == 1:
        weights: tuple[float, ...] = (1.0,)
    elif total:
        weights = tuple(x / total for x in ns)
    else:
        weights = tuple(1.0 / len(pooled) for _ in pooled)
    first = pooled[0]
    if len(pooled) == 1:
        text, label = first.regimen.describe(), first.label
    else:
        text = "; ".join(f"{a.n}/{total} pts: {a.regimen.describe()}" for a in pooled)
        label = " + ".join(a.label for a in pooled)
    return {
        "arm_ids": ids,
        "arm_weights": weights,
        "arm_label": label,
        "arm_n": total,
        "citation": " / ".join(dict.fromkeys(a.citation for a in pooled)),
        "setting": first.setting,
        "elderly": first.elderly,
        "partners": first.partners,
        "partner_classes": first.partner_classes,
        "steroid_prophylaxis": float(
            sum(w * a.steroid_prophylaxis for w, a in zip(weights, pooled, strict=True))
        ),
        "regimen_text": text,
    }


def load_evidence(path: PathLike | None = None, arms_path: PathLike | None = None) -> pd.DataFrame:
    """Load and validate the evidence table (see :func:`_load_evidence`), once per content
    of the two files."""
    (raw, name), (raw_arms, arms_name) = (
        _read_bytes(path, "evidence.csv"),
        _read_bytes(arms_path, "arms.yaml"),
    )
    key = (name, arms_name, hashlib.sha256(raw + b"\0" + raw_arms).digest())
    if key not in _EVIDENCE_CACHE:
        _EVIDENCE_CACHE[key] = _load_evidence(path, arms_path)
    return _EVIDENCE_CACHE[key].copy()


def _load_evidence(path: PathLike | None = None, arms_path: PathLike | None = None) -> pd.DataFrame:
    """Load and validate the evidence table, with the arm columns joined in.

    Parameters
    ----------
    path : evidence CSV; default the package's ``data/evidence.csv``.
    arms_path : arms YAML; default the package's ``data/arms.yaml``.

    Returns
    -------
    DataFrame, one row per reported figure, with the CSV columns (``events``, ``n``,
    ``cycle_k`` nullable Int64; ``percent_reported`` float, NaN if none;
    ``percent_tolerance`` float; ``in_fit`` bool), ``line`` (CSV line), ``arm_ids``
    (tuple), ``arm_weights`` (n-weights of a pooled row's arms), ``arm_label``,
    ``arm_n`` (patients in the arms), ``citation``, ``setting``, ``elderly``,
    ``partners``, ``partner_classes`` (tuples; equal across pooled arms),
    ``steroid_prophylaxis`` (float: share of the rows' patients with cycle-1 steroid
    prophylaxis, 0 or 1 for a single arm) and ``regimen_text``.
    """
    arms = load_arms(arms_path)
    raw, name = _read_bytes(path, "evidence.csv")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise EvidenceError(f"{name}: not UTF-8 text ({err})") from err
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    if missing or extra:
        raise EvidenceError(
            f"{name}: header: missing columns {missing}, unknown columns {extra}; "
            f"fix: the header must be {','.join(COLUMNS)}"
        )
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for rec in reader:
        line = reader.line_num
        if None in rec or any(v is None for v in rec.values()):
            raise EvidenceError(
                f"{name}: line {line}: {len(header)} fields expected; fix: quote fields with commas"
            )
        rec = {k: v.strip() for k, v in rec.items()}
        rid = rec["row_id"]
        w = _Where(name, rid or "?", line)
        if not rid:
            raise w.fail("row_id", "is empty", "give each row a unique readable id")
        if rid in seen:
            raise w.fail("row_id", f"duplicate of line {seen[rid]}", "make row_id unique")
        seen[rid] = line
        row = _parse_row(w, rec, arms)
        row.update(_arm_columns(row["arm_ids"], arms))
        rows.append(row)
    if not rows:
        raise EvidenceError(f"{name}: no rows; fix: add one row per reported figure")
    df = pd.DataFrame(rows)
    for col in ("events", "n", "cycle_k", "arm_n"):
        df[col] = df[col].astype("Int64")
    df["in_fit"] = df["in_fit"].astype(bool)
    _check_double_counting(df, name)
    order = [*COLUMNS, "line"]
    return df[order + [c for c in df.columns if c not in order]].reset_index(drop=True)


def fitted_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that enter the fit (``in_fit`` true), re-indexed from 0."""
    return df[df["in_fit"].astype(bool)].reset_index(drop=True)


def evidence_hash(path: PathLike | None = None, arms_path: PathLike | None = None) -> str:
    """sha256 (hex) of the evidence CSV's bytes followed by the arms YAML's bytes."""
    h = hashlib.sha256()
    for p, default in ((path, "evidence.csv"), (arms_path, "arms.yaml")):
        h.update(_read_bytes(p, default)[0])
    return h.hexdigest()


# ---------------------------------------------------------------------------- CLI
