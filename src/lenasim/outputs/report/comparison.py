"""Compare finished runs against a reference (the first run) and write the comparison's
folder: ``comparison.csv`` and ``dose_differences.csv`` (:mod:`lenasim.outputs.tables.paired`),
``limits.csv`` (:mod:`lenasim.outputs.judgements.paired_limits`), compare's ``dose.csv``, the
figures and ``report.html``, all or nothing.

When runs cannot be paired (:func:`lenasim.outputs.tables.runs.pairing`), the comparison
is still made, but unpaired: the other run's draws are permuted with a fixed generator so
each difference is between independent draws, and a warning on stderr names the field
that differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from lenasim.core.errors import LenasimError
from lenasim.core.writers import check_output_folder, write_atomically
from lenasim.outputs.figures.compare import comparison_plots
from lenasim.outputs.judgements.paired_limits import (
    compare_limits,
    comparison_caveat,
    format_limit_rows,
)
from lenasim.outputs.judgements.tipping import comparison_rows_tipping, format_rows_tipping
from lenasim.outputs.report.compare import compare_report
from lenasim.outputs.tables.paired import (
    compare_pair,
    dose_pair,
    dose_side_by_side,
    format_main_rows,
    undefined_notes,
)
from lenasim.outputs.tables.runs import (
    Run,
    default_out_dir,
    differences_in_setup,
    load_run,
    pairing,
    recorded,
    unique_names,
)
from lenasim.outputs.tables.subgroup_compare import format_subgroup_rows, subgroup_differences

__all__ = ["compare_runs", "default_out_dir"]

_OUT_HINT = "choose another folder with --out"


def _warn(msg: str, notes: list[str], capital: bool = True) -> None:
    """A warning on stderr, and the same as a sentence among the report's notes (its first
    letter capitalised with ``capital``)."""
    print(f"lenasim compare: warning: {msg}", file=sys.stderr)
    notes.append((msg[0].upper() + msg[1:] if capital else msg) + ".")


def compare_runs(
    result_dirs: list[Path],
    out_dir: Path | None = None,
    overwrite: bool = False,
    *,
    quiet: bool = False,
    plots: bool = True,
) -> pd.DataFrame:
    """Compare runs against the first (the reference); see the module docstring for columns.

    Parameters
    ----------
    result_dirs : two or more result folders (each with draws.nc and manifest.json).
    out_dir : where to write comparison.csv, dose.csv, the plots and report.html
        (atomically). ``None`` computes and returns the table without writing.
    overwrite : replace an existing ``out_dir``; otherwise refuse with LenasimError.
    quiet : do not print the main rows to stdout (warnings still go to stderr).
    plots : draw the PNGs and embed them in report.html (``False``: neither; for tests).
    """
    result_dirs = [Path(p) for p in result_dirs]
    if len(result_dirs) < 2:
        raise LenasimError("compare needs at least two result folders (the first is the reference)")
    if out_dir is not None:
        out_dir = Path(out_dir)
        check_output_folder(out_dir, "comparison", overwrite=overwrite, hint=_OUT_HINT)
    runs = [load_run(p) for p in result_dirs]
    names = unique_names(runs)
    ref = runs[0]
    frames, dose_frames, notes, pairs = [], [], [], []
    for run, name in zip(runs[1:], names[1:], strict=True):
        ok, reasons = pairing(ref, run)
        pairs.append(ok)
        setup = differences_in_setup(ref, run)
        if setup:
            msg = (
                f"{name} and {names[0]} differ in more than the schedule ({'; '.join(setup)}): "
                "their difference mixes the schedule with who is treated or how long a "
                "cycle is"
            )
            _warn(msg, notes)
        if ok:
            notes.append(
                f"{name} vs {names[0]}: paired on the same {ref.ds.sizes['draw']} posterior "
                f"draws and seed {recorded(ref, ('seed',), 'seed')}."
            )
        else:
            msg = (
                f"{name} vs {names[0]} cannot be paired draw by draw ({'; '.join(reasons)}); "
                "comparing unpaired (independent draws), so intervals on differences are wider "
                "and include Monte Carlo noise"
            )
            _warn(msg, notes)
        rc, oc = set(ref.ds["cycle"].values.tolist()), set(run.ds["cycle"].values.tolist())
        if rc != oc:
            common = sorted(rc & oc)
            msg = (
                f"{name} has cycles {min(oc)}-{max(oc)} and {names[0]} {min(rc)}-{max(rc)}; "
                f"compared on the common cycles {common[0]}-{common[-1]}"
                if common
                else f"{name} and {names[0]} share no cycles"
            )
            _warn(msg, notes, capital=False)
            if not common:
                raise LenasimError(msg)
        frames.append(comparison_rows_tipping(compare_pair(ref, run, names[0], name, ok),
                                              ref, run, ok))  # fmt: skip
        dose_frames.append(dose_pair(ref, run, names[0], name, ok))
    df = pd.concat(frames, ignore_index=True)
    dose_diff = pd.concat(dose_frames, ignore_index=True)
    lim = compare_limits(runs, names, pairs)
    caveat = comparison_caveat(runs)
    notes += undefined_notes(runs, names)
    by_subgroup = subgroup_differences(result_dirs, names, pairs)  # by CrCl band (issue 24)
    if not quiet:
        print(f"Caveat: {caveat}")
        print(format_main_rows(df))
        print(format_rows_tipping(df))
        if len(lim):
            print(format_limit_rows(lim))
        if len(by_subgroup):
            print(format_subgroup_rows(by_subgroup))
    if out_dir is not None:
        df.attrs["caveat"] = caveat
        _write_outputs(
            out_dir, df, runs, names, notes, overwrite, lim, dose_diff, by_subgroup, plots=plots
        )
        if not quiet:
            print(f"wrote {out_dir}")
    return df


def _write_outputs(
    out_dir: Path,
    df: pd.DataFrame,
    runs: list[Run],
    names: list[str],
    notes: list[str],
    overwrite: bool,
    limits: pd.DataFrame | None = None,
    dose_diff: pd.DataFrame | None = None,
    by_subgroup: pd.DataFrame | None = None,
    *,
    plots: bool = True,
) -> None:
    caveat = df.attrs.get("caveat", "")

    def build(tmp: Path) -> None:
        df.assign(caveat=caveat).to_csv(tmp / "comparison.csv", index=False)
        if limits is not None:
            (limits.assign(caveat=caveat) if len(limits) else limits).to_csv(
                tmp / "limits.csv", index=False
            )
        if dose_diff is not None and len(dose_diff):
            dose_diff.to_csv(tmp / "dose_differences.csv", index=False)
        if by_subgroup is not None and len(by_subgroup):
            by_subgroup.to_csv(tmp / "subgroups.csv", index=False)
        dose = dose_side_by_side(runs, names)
        dose.to_csv(tmp / "dose.csv", index=False)
        if plots:
            comparison_plots({n: r.ds for n, r in zip(names, runs, strict=True)}, df, tmp)
        compare_report(tmp, df, runs=runs, names=names, notes=notes, dose=dose, limits=limits,
                       caveat=caveat, by_subgroup=by_subgroup, plots=plots)  # fmt: skip

    write_atomically(out_dir, build, kind="comparison", overwrite=overwrite, hint=_OUT_HINT)
