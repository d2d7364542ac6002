"""The cited evidence table: trial arms (arms.yaml) and reported figures (evidence.csv).

``arms.yaml`` holds one entry per trial arm (schedule in the regimen language,
setting, partners, prophylaxis, source and judgments); ``evidence.csv`` one row per
figure a source reports (outcome, unit, events, denominator, printed percent,
whether it enters the fit, note). Both ship in ``lenasim/evidence/data``.

Everything is validated at load; a problem raises :class:`EvidenceError` naming the
file, the row (row_id and line) or arm, the field and the fix. The arms are read by
:mod:`lenasim.evidence.arms`, each row checked by :mod:`lenasim.evidence.rows`; this
module joins them into the table (its names are importable from here).
"""

from __future__ import annotations

import csv
import hashlib
import io
from typing import TYPE_CHECKING, Any, NamedTuple

from lenasim.core.errors import EvidenceError
from lenasim.core.vocabulary import OUTCOMES
from lenasim.evidence.arms import Arm, PathLike, load_arms, read_data
from lenasim.evidence.rows import UNITS, Where, parse_row

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "Arm",
    "COLUMNS",
    "EvidenceRow",
    "OUTCOMES",
    "UNITS",
    "evidence_hash",
    "evidence_rows",
    "fitted_rows",
    "load_arms",
    "load_evidence",
]

COLUMNS = (
    "row_id", "trial", "arms", "source", "outcome", "unit", "cycle_k", "cycles_at_risk",
    "cycles_source", "events", "n", "percent_reported", "percent_tolerance", "in_fit", "note",
)  # fmt: skip


class EvidenceRow(NamedTuple):
    """One validated row of the table (:func:`evidence_rows`), the columns of
    :func:`load_evidence` in its order; a missing count or cycle is None, a missing
    percent NaN."""

    row_id: str
    trial: str
    arms: str
    source: str
    outcome: str
    unit: str
    cycle_k: int | None
    cycles_at_risk: int
    cycles_source: str
    events: int | None
    n: int | None
    percent_reported: float
    percent_tolerance: float
    in_fit: bool
    note: str
    line: int
    arm_ids: tuple[str, ...]
    arm_weights: tuple[float, ...]
    arm_label: str
    arm_n: int | None
    citation: str
    setting: str
    elderly: bool
    partners: tuple[str, ...]
    partner_classes: tuple[str, ...]
    steroid_prophylaxis: float
    regimen_text: str


# Parsed and validated rows by (files, sha256 of their bytes), as for the arms
# (:mod:`lenasim.evidence.arms`), and the DataFrames built from them; callers get a new
# list or DataFrame each time.
_EVIDENCE_CACHE: dict[tuple, tuple[EvidenceRow, ...]] = {}
_FRAME_CACHE: dict[tuple, pd.DataFrame] = {}


def _check_double_counting(rows: list[EvidenceRow], name: str) -> None:
    """No two fitted rows may count the same arm's patients for the same outcome.

    Rows overlap when they share an arm (pooled rows included) and an outcome; the one
    exception is two ``cycle_k`` rows for different cycles (different events).
    """
    recs = [r for r in rows if r.in_fit]
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


def _key(path: PathLike | None, arms_path: PathLike | None) -> tuple:
    (raw, name), (raw_arms, arms_name) = (
        read_data(path, "evidence.csv"),
        read_data(arms_path, "arms.yaml"),
    )
    return (name, arms_name, hashlib.sha256(raw + b"\0" + raw_arms).digest())


def evidence_rows(
    path: PathLike | None = None, arms_path: PathLike | None = None
) -> list[EvidenceRow]:
    """The validated rows of :func:`load_evidence` as :class:`EvidenceRow` records, without
    pandas (the run's mirrored trial reads them so), once per content of the two files."""
    key = _key(path, arms_path)
    if key not in _EVIDENCE_CACHE:
        _EVIDENCE_CACHE[key] = _read_evidence(path, arms_path)
    return list(_EVIDENCE_CACHE[key])


def load_evidence(path: PathLike | None = None, arms_path: PathLike | None = None) -> pd.DataFrame:
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
    prophylaxis, 0 or 1 for a single arm) and ``regimen_text``: the fields of
    :class:`EvidenceRow` (:func:`evidence_rows`, the same rows without pandas).
    """
    key = _key(path, arms_path)
    if key not in _FRAME_CACHE:
        # pandas here, not at the top: `lenasim run` hashes the table (evidence_hash) and
        # reads its mirrored rows (evidence_rows) without it
        import pandas as pd

        df = pd.DataFrame(evidence_rows(path, arms_path), columns=list(EvidenceRow._fields))
        for col in ("events", "n", "cycle_k", "arm_n"):
            df[col] = df[col].astype("Int64")
        df["in_fit"] = df["in_fit"].astype(bool)
        _FRAME_CACHE[key] = df
    return _FRAME_CACHE[key].copy()


def _read_evidence(path: PathLike | None, arms_path: PathLike | None) -> tuple[EvidenceRow, ...]:
    """Read and validate the table's rows (:func:`load_evidence` says what they hold)."""
    arms = load_arms(arms_path)
    raw, name = read_data(path, "evidence.csv")
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
    rows: list[EvidenceRow] = []
    seen: dict[str, int] = {}
    for rec in reader:
        line = reader.line_num
        if None in rec or any(v is None for v in rec.values()):
            raise EvidenceError(
                f"{name}: line {line}: {len(header)} fields expected; fix: quote fields with commas"
            )
        rec = {k: v.strip() for k, v in rec.items()}
        rid = rec["row_id"]
        w = Where(name, rid or "?", line)
        if not rid:
            raise w.fail("row_id", "is empty", "give each row a unique readable id")
        if rid in seen:
            raise w.fail("row_id", f"duplicate of line {seen[rid]}", "make row_id unique")
        seen[rid] = line
        row = parse_row(w, rec, arms)
        row.update(_arm_columns(row["arm_ids"], arms))
        rows.append(EvidenceRow(**row))
    if not rows:
        raise EvidenceError(f"{name}: no rows; fix: add one row per reported figure")
    _check_double_counting(rows, name)
    return tuple(rows)


def fitted_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that enter the fit (``in_fit`` true), re-indexed from 0."""
    return df[df["in_fit"].astype(bool)].reset_index(drop=True)


def evidence_hash(path: PathLike | None = None, arms_path: PathLike | None = None) -> str:
    """sha256 (hex) of the evidence CSV's bytes followed by the arms YAML's bytes."""
    h = hashlib.sha256()
    for p, default in ((path, "evidence.csv"), (arms_path, "arms.yaml")):
        h.update(read_data(p, default)[0])
    return h.hexdigest()
