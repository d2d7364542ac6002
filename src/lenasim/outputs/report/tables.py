"""The tables of the reports that are data rather than words: dose by cycle (one run,
and side by side for a comparison), the evidence behind the posterior (with plain
citations) and the provenance of a run. Plain values for the templates (report.py)."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from lenasim.core.vocabulary import event_title
from lenasim.evidence.citations import plain_citation
from lenasim.outputs.tables.formats import pct
from lenasim.outputs.tables.summaries import started_draws, unreached_words

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["dose_rows", "dose_tables", "evidence_rows", "provenance_rows"]

_UNITS = {"patients": "patients (at least once)", "cycles": "share of cycles",
          "cycle_k": "in one cycle"}  # fmt: skip


def _short(v: Any, limit: int = 300) -> str:
    """A provenance value in words: a dict (or a JSON object in a string) as 'key: value;
    ...', a list as 'a, b', long values cut."""
    if isinstance(v, str) and v[:1] in "{[":
        try:
            v = json.loads(v)
        except ValueError:
            pass
    if isinstance(v, dict):
        s = "; ".join(f"{k}: {_short(x, limit)}" for k, x in v.items())
    elif isinstance(v, list | tuple):
        s = ", ".join(_short(x, limit) for x in v)
    else:
        s = str(v)
    return s if len(s) <= limit else s[:limit] + " ..."


def _cites(citations: Any) -> str:
    """Plain citations joined once each: the parts of 'A; B' and 'A' are A, B."""
    parts = [p.strip() for c in citations for p in str(c).split(";") if p.strip()]
    return "; ".join(dict.fromkeys(parts))


def dose_rows(ds: Any) -> dict:
    """The report's dose table: one row per cycle that some patient starts in some draw
    (the others are named in ``note``, in words), each value over the draws where it is
    defined."""
    reached = started_draws(ds) > 0
    cycles = np.asarray(ds["cycle"].values)[reached]
    columns, cols = ["Cycle"], [[str(int(c)) for c in cycles]]

    def draws(var: str) -> np.ndarray | None:
        if var not in ds:
            return None
        x = np.asarray(ds[var].transpose(..., "cycle").values, float)
        return x[..., reached]

    def mean(x: np.ndarray) -> np.ndarray:
        # over the draws where some patient starts the cycle (NaN where nobody does)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(x, axis=0)

    if "planned_intensity" in ds:
        columns.append("Planned (mg/day)")
        cols.append([f"{v:.2f}" for v in draws("planned_intensity")])
    x = draws("dose_intensity")
    if x is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanquantile(x, [0.05, 0.95], axis=0)
        columns.append("Delivered (mg/day, 90% interval)")
        cols.append([f"{m:.2f} ({lo:.2f} to {hi:.2f})" if np.isfinite(m) else "nobody left"
                     for m, lo, hi in zip(mean(x), q[0], q[1], strict=True)])  # fmt: skip
        n = np.sum(~np.isnan(x), axis=0)
        if (n < x.shape[0]).any():
            columns.append("Draws with patients left")
            cols.append([f"{k} of {x.shape[0]}" for k in n])
    x = draws("dose_mean_mg")
    if x is not None:
        columns.append("Dose on drug days (mg/day)")
        cols.append([f"{m:.1f}" if np.isfinite(m) else "-" for m in mean(x)])
    for var, label in (
        ("share_on", "Starting the cycle"),
        ("share_at_target", "At target dose"),
        ("share_held", "Held or reduced"),
        ("share_reduced", "Reduced after it"),
        ("share_stopped", "Stopped by its end"),
    ):
        x = draws(var)
        if x is not None:
            columns.append(label)
            cols.append([pct(m) for m in mean(x)])
    return {"columns": columns, "rows": [list(r) for r in zip(*cols, strict=True)],
            "numeric": set(range(len(columns))), "note": unreached_words(ds)}  # fmt: skip


def _join(v: Any) -> str:
    if isinstance(v, list | tuple | np.ndarray):
        return ", ".join(str(x) for x in v)
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def evidence_rows() -> dict:
    """Trials and fitted figures, with plain citations; the error if the table fails."""
    try:
        import importlib

        table = importlib.import_module("lenasim.evidence.table")
        records = _evidence_records(table)
        arms = table.load_arms()
        fitted = [r for r in records if bool(r.get("in_fit", True))]
        by_trial: dict[Any, list[dict]] = {}
        for r in fitted:
            by_trial.setdefault(r.get("trial"), []).append(r)
        trials = []
        for trial, sub in by_trial.items():
            ids = list(dict.fromkeys(a for row in sub for a in row.get("arm_ids", ())))
            cites = [plain_citation(getattr(arms.get(a), "citation", "")) for a in ids]
            trials.append([
                trial, _cites(cites),
                "; ".join(f"{a} (n={getattr(arms.get(a), 'n', '?')})" for a in ids),
                ", ".join(dict.fromkeys(event_title(str(r["outcome"])) for r in sub)),
            ])  # fmt: skip
        rows = []
        for r in fitted:
            ids = r.get("arm_ids", ())
            rows.append([
                r.get("trial", ""), _join(ids), event_title(str(r.get("outcome", ""))),
                _UNITS.get(str(r.get("unit", "")), str(r.get("unit", ""))),
                _join(r.get("cycle_k")), _join(r.get("events")), _join(r.get("n")),
                plain_citation(r.get("source", "")),
            ])  # fmt: skip
        return {"error": None, "n_fitted": len(fitted), "n_trials": len(trials),
                "n_other": len(records) - len(fitted), "trials": trials, "rows": rows}  # fmt: skip
    except Exception as err:  # noqa: BLE001 - the report must still be written
        return {"error": f"{type(err).__name__}: {err}"}


def _evidence_records(table: Any) -> list[dict]:
    """The evidence table's rows as dicts: without pandas where the evidence stage reads
    them so (``evidence_rows``, records of the DataFrame's columns), else the DataFrame's
    (``load_evidence``)."""
    if hasattr(table, "evidence_rows"):
        return [r._asdict() for r in table.evidence_rows()]
    return table.load_evidence().to_dict("records")


def provenance_rows(manifest: dict, ds: Any) -> list[dict]:
    sections = []
    post = manifest.get("posterior") or {}
    if post:
        sections.append({"title": "Posterior file", "header": ["Field", "Value"],
                         "rows": [[k, _short(v)] for k, v in post.items()]})  # fmt: skip
    attrs = manifest.get("posterior_attrs") or {}
    if attrs:
        sections.append({"title": "Posterior attributes", "header": ["Attribute", "Value"],
                         "rows": [[k, _short(v)] for k, v in attrs.items()]})  # fmt: skip
    for key, title, header in (("hashes", "Hashes", ["Input", "sha256"]),
                               ("versions", "Versions", ["Package", "Version"])):  # fmt: skip
        if manifest.get(key):
            sections.append({"title": title, "header": header,
                             "rows": [[k, _short(v)] for k, v in manifest[key].items()]})  # fmt: skip
    other = [["Config file", manifest.get("config_file")],
             ["Seed", manifest.get("seed", ds.attrs.get("seed"))],
             ["Wall time (s)", manifest.get("wall_seconds")],
             ["Created", manifest.get("created")]]  # fmt: skip
    sections.append({"title": "Run", "header": ["Field", "Value"],
                     "rows": [[k, _short(v)] for k, v in other if v is not None]})  # fmt: skip
    return sections


def dose_tables(dose: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """One table per dose measure, scenarios down and cycles across; the measures that are
    zero in every scenario and cycle are named instead of tabulated."""
    names = list(dict.fromkeys(dose["scenario"]))
    cycles = sorted(int(c) for c in dose["cycle"].unique())
    first: dict[tuple, int] = {}  # (scenario, cycle) -> its first row
    for i, key in enumerate(zip(dose["scenario"], dose["cycle"], strict=True)):
        first.setdefault(key, i)
    out, zero = [], []
    for col, title, fmt in (
        ("planned_intensity", "Planned intensity (mg/day)", "{:.1f}"),
        ("dose_intensity_mean", "Delivered intensity (mg/day)", "{:.1f}"),
        ("share_held_mean", "Held or reduced in the cycle", None),
        ("share_reduced_mean", "Reduced one level after the cycle", None),
        ("share_stopped_mean", "Stopped by the end of the cycle (of all)", None),
    ):
        if col not in dose or not np.isfinite(dose[col]).any():
            continue
        if fmt is None and not (np.nan_to_num(dose[col].to_numpy(float)) != 0).any():
            zero.append(title.lower())
            continue
        rows, values = [], dose[col]
        for n in names:
            row = [n]
            for cyc in cycles:
                v = values.iloc[first[n, cyc]] if (n, cyc) in first else None
                ok = v is not None and np.isfinite(v)
                row.append((fmt.format(v) if fmt else pct(v, 0)) if ok else "-")
            rows.append(row)
        out.append({"title": title, "columns": ["Cycle", *map(str, cycles)], "rows": rows,
                    "numeric": set(range(1, len(cycles) + 1))})  # fmt: skip
    return out, zero
