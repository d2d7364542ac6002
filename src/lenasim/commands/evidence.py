"""`python -m lenasim evidence`: the cited evidence table, printed by trial or exported as CSV.

The table is printed from the validated rows without pandas (``evidence_rows``: the same
rows and values as ``load_evidence``'s DataFrame); only ``--csv`` builds the DataFrame
(pandas' import and the frame took ~0.45 s of the command's ~0.85 s of CPU)."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any

from lenasim.core.errors import EvidenceError
from lenasim.core.writers import check_output_file, write_file_atomically
from lenasim.evidence.citations import plain_citation
from lenasim.evidence.table import Arm, evidence_rows, load_arms, load_evidence

if TYPE_CHECKING:
    import pandas as pd

_WIDTH = 100


def _fmt_row(r: dict[str, Any]) -> str:
    """One row of the table (an ``EvidenceRow`` as a dict)."""
    if r["unit"] == "qualitative":
        count, pct = "words", ""
    else:
        count = f"{r['events']}/{r['n']}"
        pct = "" if math.isnan(r["percent_reported"]) else f"{r['percent_reported']:g}%"
    if r["unit"] == "cycle_k":
        unit = f"cycle {r['cycle_k']}"
    elif r["unit"] == "cycles":
        unit = f"cycles (~{r['cycles_at_risk']}/pt)"
    else:
        unit = f"{r['unit']} ({r['cycles_at_risk']} cyc)"
    fit = "FIT" if r["in_fit"] else "--"
    head = f"    {r['outcome']:<19} {count:>7} {pct:>6}  {unit:<20} {fit:<3}  "
    src = plain_citation(r["source"])
    room = _WIDTH - len(head)
    if len(src) > room:
        src = src[: room - 3] + "..."
    return head + src


def _print_trial(trial: str, sub: list[dict[str, Any]], arms: dict[str, Arm]) -> None:
    """A trial's arms, each with its rows, then its rows pooled over several arms (by arm
    group, in order of first appearance)."""
    trial_arms = [a for a in arms.values() if a.trial == trial]
    first = trial_arms[0]
    print("=" * _WIDTH)
    print(
        textwrap.fill(
            f"{trial} | {plain_citation(first.citation)} | {first.setting}"
            + (" | elderly" if first.elderly else ""),
            _WIDTH,
        )
    )
    shown: set[int] = set()
    for arm in trial_arms:
        print(f"  [{arm.arm_id}] {arm.label}")
        n = "n not reported" if arm.n is None else f"n = {arm.n}"
        partners = ", ".join(arm.partners) if arm.partners else "none (single agent)"
        steroid = (
            "steroid flare prophylaxis in cycle 1"
            if arm.steroid_prophylaxis
            else "no steroid prophylaxis"
        )
        print(
            textwrap.fill(
                f"{n}; partners: {partners}; {steroid}",
                _WIDTH,
                initial_indent="    ",
                subsequent_indent="    ",
            )
        )
        print(
            textwrap.fill(
                f"schedule: {arm.regimen.describe()}",
                _WIDTH,
                initial_indent="    ",
                subsequent_indent="      ",
            )
        )
        for i, r in enumerate(sub):
            if r["arm_ids"] == (arm.arm_id,):
                print(_fmt_row(r))
                shown.add(i)
    pooled: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for i, r in enumerate(sub):
        if i not in shown:
            pooled.setdefault(r["arm_ids"], []).append(r)
    for ids, grp in pooled.items():
        print(f"  [pooled: {' + '.join(ids)}]")
        for r in grp:
            print(_fmt_row(r))


def cmd_evidence(args: Any) -> int:
    """Print the evidence table grouped by trial; with ``--csv PATH`` also write it flat
    (refused onto an existing file without ``--overwrite``, and inside the package)."""
    out = getattr(args, "csv", None)
    if out is not None and not out.strip():
        raise EvidenceError("--csv: is empty; give the path of the CSV file to write")
    if out:  # before reading anything: a refused destination fails at once
        check_output_file(out, overwrite=bool(getattr(args, "overwrite", False)), option="--csv")
    rows = [r._asdict() for r in evidence_rows()]  # validated as load_evidence validates
    arms = load_arms()
    trials = list(dict.fromkeys(a.trial for a in arms.values()))
    trial = getattr(args, "trial", None)
    if trial is not None:
        if trial not in trials:
            raise EvidenceError(f"unknown --trial '{trial}'; valid trials: {', '.join(trials)}")
        trials = [trial]
        rows = [r for r in rows if r["trial"] == trial]
    if out:  # the CSV only: the table is for reading, the file for the data
        df = load_evidence()
        if trial is not None:
            df = df[df["trial"] == trial]
        _write_csv(df, out, overwrite=bool(getattr(args, "overwrite", False)))
        return 0
    print(
        f"    {'outcome':<19} {'events/n':>7} {'%':>6}  {'unit (cycles at risk)':<20} fit  source"
    )
    for t in trials:
        _print_trial(t, [r for r in rows if r["trial"] == t], arms)
    n_fit = sum(bool(r["in_fit"]) for r in rows)
    print("=" * _WIDTH)
    print(
        f"{len(rows)} figures from {len(trials)} trial(s), {n_fit} in the fit. "
        "Notes and all columns: --csv PATH."
    )
    return 0


def _write_csv(df: pd.DataFrame, out: str, *, overwrite: bool) -> None:
    """The table, flat, every column (the full sources included); refused onto an existing
    file without ``overwrite`` and anywhere inside the package."""
    flat = df.copy()
    for col in ("arm_ids", "partners", "partner_classes"):
        flat[col] = flat[col].map(";".join)
    flat["arm_weights"] = flat["arm_weights"].map(lambda t: ";".join(f"{x:.4f}" for x in t))
    write_file_atomically(out, flat.to_csv(index=False).encode("utf-8"), overwrite=overwrite,
                          option="--csv")  # fmt: skip
    print(f"wrote {len(flat)} rows x {flat.shape[1]} columns to {out}")
