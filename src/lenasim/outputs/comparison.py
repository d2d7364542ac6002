"""Compare finished runs against a reference (the first run).

Runs simulated on the same posterior draws with the same seed (and the same cohort
size, population effect and posterior) share their random numbers, so the
difference between two scenarios is computed per posterior draw: its interval
reflects the schedules, not Monte Carlo noise or posterior uncertainty common to
both. When runs cannot be paired, the comparison is still made, but unpaired:
the other run's draws are permuted with a fixed generator so each difference is
between independent draws, and a warning on stderr names the field that differs.

Output of :func:`compare_runs` (one row per scenario x quantity x event x cycle):

- ``quantity``: ``per_cycle`` (probability of the event in the cycle), ``cumulative``
  (at least one event by the end of the cycle) or ``dose`` (``event`` then names the
  dose variable: ``dose_intensity`` in mg/day, ``dose_mean_mg``, ``share_held``, ...).
- ``ref_*`` / ``scen_*``: mean, q05, q95 of each run, side by side.
- ``diff_*``: mean, q05, q50, q95 and ``diff_mcse`` (sd/sqrt(S)) of scenario minus
  reference; ``ratio_*`` the same for scenario / reference (NaN where the reference
  is 0); ``p_riskier`` the share of draws with a difference above 0 (events only).
- ``paired``: whether the differences are per draw (True) or between independent
  draws (False); ``identical``: whether the two runs give the same value in every draw
  (the schedules do not differ there: shown as "identical", not as P = 0).

Risk limits (``limits.csv``, :func:`compare_limits`): for each limit of the reference's
config (the default limits when it states none), P(the scenario's risk is below the
reference's) -- P(safer), paired draw by draw like the differences -- beside each run's
P(risk > limit) and overdose-control verdict.

Runs whose populations (setting, share elderly, partner drugs, steroid prophylaxis) or
cycle lengths differ are compared all the same, with a warning: the difference then
mixes the schedule with who is treated, or with how long a cycle is.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lenasim.core.errors import LenasimError
from lenasim.core.vocabulary import DOSE_COLUMNS, event_title
from lenasim.core.writers import check_output_folder, write_atomically
from lenasim.outputs.subgroup_compare import format_subgroup_rows, subgroup_differences
from lenasim.outputs.verify import verify_run_folder

__all__ = [
    "Run",
    "compare_limits",
    "compare_runs",
    "differences_in_setup",
    "format_limit_rows",
    "format_main_rows",
    "load_run",
    "pairing",
]

EVENT_VARS = ("per_cycle", "cumulative")
# manifest path -> fallback attribute of draws.nc
PAIRING_FIELDS: tuple[tuple[tuple[str, ...], str | None], ...] = (
    (("hashes", "posterior"), None),
    (("hashes", "posterior_index"), None),
    (("seed",), "seed"),
    (("n_patients",), "n_patients"),
    (("population_effect",), "population_effect"),
)
_OUT_HINT = "choose another folder with --out"
UNPAIRED_SEED = 20240521  # fixed permutation for unpaired comparisons: same inputs, same table


@dataclass
class Run:
    """A finished run: its folder, draws and manifest (empty if the file is absent)."""

    name: str
    path: Path
    ds: Any  # xarray.Dataset
    manifest: dict = field(default_factory=dict)


def load_run(path: Path | str) -> Run:
    """Load ``draws.nc`` and ``manifest.json`` of a result folder.

    Raises LenasimError naming the folder if it or its draws are missing, and naming the
    file when the folder does not pass :func:`lenasim.outputs.verify.verify_run_folder`
    (its manifest, the hashes of its files, its limits).
    """
    import xarray as xr

    path = Path(path)
    if not path.is_dir():
        raise LenasimError(
            f"result folder {path} does not exist; run `python -m lenasim run CONFIG` first"
        )
    draws = path / "draws.nc"
    if not draws.is_file():
        raise LenasimError(
            f"result folder {path} has no draws.nc; it is not a finished run "
            f"(re-run the scenario with `python -m lenasim run`)"
        )
    manifest = verify_run_folder(path)  # the manifest, the files' hashes, the limits
    try:
        ds = xr.load_dataset(draws)
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        raise LenasimError(f"cannot read {draws}: {err}") from err
    missing = [v for v in EVENT_VARS if v not in ds]
    if missing:
        raise LenasimError(f"{draws} lacks the variable(s) {', '.join(missing)}")
    name = str(manifest.get("name") or ds.attrs.get("scenario") or path.name)
    return Run(name=name, path=path, ds=ds, manifest=manifest)


def _field(run: Run, keys: tuple[str, ...], attr: str | None) -> Any:
    node: Any = run.manifest
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    if node is None and attr is not None:
        node = run.ds.attrs.get(attr)
    if isinstance(node, np.generic):
        node = node.item()
    return node


def _brief(v: Any) -> str:
    """A value for a message: long hashes cut to 12 characters."""
    s = repr(v)
    return s if len(s) <= 24 else s[:13] + "...'"


def pairing(ref: Run, other: Run) -> tuple[bool, list[str]]:
    """Whether ``other`` can be compared with ``ref`` draw by draw, and if not, why.

    Paired needs the same posterior (hash), the same posterior draws (hash of the
    index and the ``posterior_index`` coordinate), seed, n_patients and
    population_effect.
    """
    reasons: list[str] = []
    for keys, attr in PAIRING_FIELDS:
        label = ".".join(keys)
        a, b = _field(ref, keys, attr), _field(other, keys, attr)
        if a is None or b is None:
            who = ", ".join(r.name for r, v in ((ref, a), (other, b)) if v is None)
            reasons.append(f"{label} is not recorded for {who}")
        elif str(a) != str(b):
            reasons.append(f"{label} differs: {ref.name}={_brief(a)}, {other.name}={_brief(b)}")
    na, nb = ref.ds.sizes["draw"], other.ds.sizes["draw"]
    if na != nb:
        reasons.append(f"number of posterior draws differs: {ref.name}={na}, {other.name}={nb}")
    elif "posterior_index" in ref.ds.coords and "posterior_index" in other.ds.coords:
        ia = np.asarray(ref.ds["posterior_index"].values)
        ib = np.asarray(other.ds["posterior_index"].values)
        if not np.array_equal(ia, ib):
            reasons.append(
                f"posterior_index (the draws used) differs between {ref.name} and {other.name}"
            )
    return not reasons, reasons


def _unique_names(runs: list[Run]) -> list[str]:
    names, seen = [], {}
    for r in runs:
        n = r.name
        if n in seen:
            seen[n] += 1
            n = f"{n} ({r.path})"
        else:
            seen[n] = 0
        names.append(n)
    return names


def _summaries(ref: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    """Column arrays for ref and other (draw first, same draw count), each cell over the
    draws where both values are defined (``n_draws``; a per-cycle risk is undefined in a
    draw where nobody starts the cycle). A cell no draw defines stays NaN (its row is
    dropped by the caller)."""
    from lenasim.outputs.limits import probability_mcse

    ok = ~(np.isnan(ref) | np.isnan(other))
    n = ok.sum(axis=0)
    flat_r = ref.reshape(ref.shape[0], -1)
    flat_o = other.reshape(other.shape[0], -1)
    flat_ok = ok.reshape(ok.shape[0], -1)
    names = ("ref_mean", "ref_q05", "ref_q95", "scen_mean", "scen_q05", "scen_q95",
             "diff_mean", "diff_q05", "diff_q50", "diff_q95", "diff_mcse", "ratio_q05",
             "ratio_q50", "ratio_q95", "n_ratio", "p_riskier", "p_riskier_mcse")  # fmt: skip
    out = {k: np.full(flat_r.shape[1], np.nan) for k in names}
    out["identical"] = np.zeros(flat_r.shape[1], bool)
    for j in range(flat_r.shape[1]):
        m = flat_ok[:, j]
        if not m.any():
            continue
        a, b = flat_r[m, j], flat_o[m, j]
        for prefix, x in (("ref", a), ("scen", b)):
            out[f"{prefix}_mean"][j] = x.mean()
            out[f"{prefix}_q05"][j], out[f"{prefix}_q95"][j] = np.quantile(x, [0.05, 0.95])
        d = b - a
        out["diff_mean"][j] = d.mean()
        out["diff_q05"][j], out["diff_q50"][j], out["diff_q95"][j] = np.quantile(
            d, [0.05, 0.5, 0.95]
        )
        out["diff_mcse"][j] = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else 0.0
        pos = a > 0
        out["n_ratio"][j] = pos.sum()
        if pos.any():
            q = np.quantile(b[pos] / a[pos], [0.05, 0.5, 0.95])
            out["ratio_q05"][j], out["ratio_q50"][j], out["ratio_q95"][j] = q
        hits = (d > 0).astype(float)
        out["p_riskier"][j] = hits.mean()
        out["p_riskier_mcse"][j] = probability_mcse(hits)
        out["identical"][j] = bool(np.all(d == 0))
    shape = ref.shape[1:]
    res = {k: v.reshape(shape) for k, v in out.items()}
    res["n_draws"] = n.reshape(shape)
    return res


def _compare_pair(ref: Run, other: Run, ref_name: str, name: str, paired: bool) -> pd.DataFrame:
    """The event rows of comparison.csv for one scenario against the reference; rows no
    draw defines (nobody starts the cycle in any draw of one run) are left out."""
    rds, ods = ref.ds, other.ds
    cycles = np.intersect1d(rds["cycle"].values, ods["cycle"].values)
    idx = _draw_index(ref, other, paired)
    frames = []
    events = [e for e in rds["event"].values if e in set(ods["event"].values)]
    for var in EVENT_VARS:
        r = rds[var].sel(event=events, cycle=cycles).transpose("draw", "event", "cycle").values
        o = ods[var].sel(event=events, cycle=cycles).transpose("draw", "event", "cycle").values[idx]
        cols = _summaries(np.asarray(r, float), np.asarray(o, float))
        ev, cy = np.meshgrid(np.asarray(events, dtype=str), cycles, indexing="ij")
        frame = pd.DataFrame({"quantity": var, "event": ev.ravel(), "cycle": cy.ravel()})
        for k, v in cols.items():
            frame[k] = np.asarray(v).ravel()
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    df = df[df["n_draws"] > 0].reset_index(drop=True)
    df["n_ratio"] = df["n_ratio"].astype(int)
    df.insert(0, "reference", ref_name)
    df.insert(0, "scenario", name)
    df["paired"] = paired
    df["n_draws_run"] = rds.sizes["draw"]
    return df


def _draw_index(ref: Run, other: Run, paired: bool) -> np.ndarray:
    """The other run's draws matched to the reference's: the same draws when paired,
    else a fixed permutation (independent pairs)."""
    s_ref = ref.ds.sizes["draw"]
    if paired:
        return np.arange(s_ref)
    rng = np.random.default_rng(UNPAIRED_SEED)
    s_o = other.ds.sizes["draw"]
    return rng.permutation(s_o)[:s_ref] if s_o >= s_ref else rng.choice(s_o, size=s_ref)


def _dose_pair(ref: Run, other: Run, ref_name: str, name: str, paired: bool) -> pd.DataFrame:
    """dose_differences.csv rows: per dose measure and cycle, each run's mean and 90%
    interval, the difference (scenario minus reference) and P(higher), the share of draws
    in which the scenario's value is higher (ties one half), over the draws where both
    are defined."""
    rds, ods = ref.ds, other.ds
    cycles = np.intersect1d(rds["cycle"].values, ods["cycle"].values)
    idx = _draw_index(ref, other, paired)
    frames = []
    for var in DOSE_COLUMNS:
        if var not in rds or var not in ods:
            continue
        r = rds[var].sel(cycle=cycles).transpose("draw", "cycle").values
        o = ods[var].sel(cycle=cycles).transpose("draw", "cycle").values[idx]
        cols = _summaries(np.asarray(r, float), np.asarray(o, float))
        frame = pd.DataFrame({"measure": var, "cycle": cycles})
        for k in ("ref_mean", "ref_q05", "ref_q95", "scen_mean", "scen_q05", "scen_q95",
                  "diff_mean", "diff_q05", "diff_q95", "p_riskier", "p_riskier_mcse",
                  "identical", "n_draws"):  # fmt: skip
            frame[k.replace("p_riskier", "p_higher")] = np.asarray(cols[k])
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df = df[df["n_draws"] > 0].reset_index(drop=True)
    df.insert(0, "reference", ref_name)
    df.insert(0, "scenario", name)
    df["paired"] = paired
    return df


def _warn(msg: str) -> None:
    print(f"lenasim compare: warning: {msg}", file=sys.stderr)


# (what, path in the manifest's config): who is treated and how long a cycle is
_SETUP_FIELDS = (
    ("setting", ("population", "setting")),
    ("share elderly", ("population", "elderly_share")),
    ("partner drugs", ("population", "partners")),
    ("steroid prophylaxis", ("population", "steroid_prophylaxis")),
    ("cycle length (days)", ("regimen", "cycle_days")),
    ("first cycle length (days)", ("regimen", "first_cycle", "cycle_days")),
)


def _config_value(run: Run, keys: tuple[str, ...]) -> Any:
    node: Any = run.manifest.get("config")
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node


def differences_in_setup(ref: Run, other: Run) -> list[str]:
    """What differs between two runs besides the schedule: population, prophylaxis,
    cycle length (from the configs in their manifests; nothing for runs without one)."""
    if not isinstance(ref.manifest.get("config"), dict) or not isinstance(
        other.manifest.get("config"), dict
    ):
        return []
    out = []
    for what, keys in _SETUP_FIELDS:
        a, b = _config_value(ref, keys), _config_value(other, keys)
        if what == "first cycle length (days)" and (a is None or b is None):
            continue
        if a != b:
            show = (lambda v: ", ".join(v) or "none") if what == "partner drugs" else str
            out.append(f"{what} {show(a)} vs {show(b)}")
    return out


def _limits_of(run: Run):
    """The risk limits of a run's config (the default limits when it states none)."""
    from lenasim.core.limits import DEFAULT_LIMITS, RiskLimits

    cfg = run.manifest.get("config")
    if isinstance(cfg, dict) and "limits" in cfg:
        return RiskLimits.model_validate(cfg["limits"])
    return DEFAULT_LIMITS


def compare_limits(runs: list[Run], names: list[str], paired: list[bool]) -> pd.DataFrame:
    """Per scenario and limit of the reference: P(safer than the reference) with its MCSE,
    and each run's P(risk > limit) with its MCSE and verdict (acceptable, not acceptable
    or undecided: run more draws). ``paired[i]`` says whether runs[i + 1] pairs with the
    reference. Limits on a cycle the runs do not share are left out; a limit on "the last
    cycle" looks at the last cycle both runs have."""
    from lenasim.core.limits import RiskLimits
    from lenasim.outputs.decision import verdict
    from lenasim.outputs.limits import evaluate_limits, paired_safer

    ref = runs[0]
    limits = _limits_of(ref)
    frames = []
    for run, name, ok in zip(runs[1:], names[1:], paired, strict=True):
        common = np.intersect1d(ref.ds["cycle"].values, run.ds["cycle"].values)
        last = int(common.max())
        fixed: dict[str, list] = {}
        for event, lim in limits.items():
            cyc = lim.last_cycle(last)
            if cyc in common:
                fixed.setdefault(event, []).append(lim.model_copy(update={"cycle": int(cyc)}))
        resolved = RiskLimits(events=fixed, max_probability=limits.max_probability)
        if not resolved.items():
            continue
        safer = paired_safer(ref.ds, run.ds, resolved, paired=ok)
        ev_ref, ev_run = evaluate_limits(ref.ds, resolved), evaluate_limits(run.ds, resolved)
        frame = pd.DataFrame({
            "scenario": name, "reference": names[0], "event": safer["event"],
            "limit": [lim.describe(e, last) for e, lim in resolved.items()],
            "p_safer": safer["p_safer"], "p_safer_mcse": safer["p_safer_mcse"],
            "n_draws": safer["n_draws"], "identical": safer["identical"],
            "paired": safer["paired"],
            "ref_p_exceed": ev_ref["p_exceed"], "ref_p_exceed_mcse": ev_ref["p_exceed_mcse"],
            "scen_p_exceed": ev_run["p_exceed"], "scen_p_exceed_mcse": ev_run["p_exceed_mcse"],
            "scen_q_critical": ev_run["q_critical"],
            "ref_acceptable": ev_ref["acceptable"], "scen_acceptable": ev_run["acceptable"],
            "ref_verdict": [verdict(a, d) for a, d in zip(ev_ref["acceptable"],
                                                          ev_ref["decided"], strict=True)],
            "scen_verdict": [verdict(a, d) for a, d in zip(ev_run["acceptable"],
                                                           ev_run["decided"], strict=True)],
            "max_probability": limits.max_probability,
        })  # fmt: skip
        from lenasim.outputs.tipping import compare_tipping

        frames.append(compare_tipping(frame, ref, run, resolved, ok))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def format_limit_rows(lim: pd.DataFrame) -> str:
    """P(safer) per limit and scenario as text."""
    if not len(lim):
        return ""
    lines = []
    for name, sub in lim.groupby("scenario", sort=False):
        ref = sub["reference"].iloc[0]
        kind = "paired" if bool(sub["paired"].iloc[0]) else "UNPAIRED"
        cut = float(sub["max_probability"].iloc[0])
        lines.append(
            f"{name} vs {ref}, risk limits ({kind}; P(safer) = P({name}'s risk is below "
            f"{ref}'s), +/- its Monte Carlo error; acceptable when P(exceed) <= {cut:g}):"
        )
        width = max(len(x) for x in sub["limit"])
        for r in sub.itertuples():
            safer = (
                "identical" if r.identical else f"P(safer)={r.p_safer:.2f}+/-{r.p_safer_mcse:.2f}"
            )
            shown = r.scen_verdict.upper() if r.scen_verdict == "not acceptable" else r.scen_verdict
            verdict = f"P(exceed) {r.ref_p_exceed:.2f} -> {r.scen_p_exceed:.2f} ({shown})"
            lines.append(f"  {r.limit:<{width}}  {safer:<22} {verdict}")
            if getattr(r, "tipping", ""):  # outputs/tipping.py
                lines.append(f"  {'':<{width}}  tipping point: {r.tipping}")
    return "\n".join(lines)


def comparison_caveat(runs: list[Run]) -> str:
    """The caveat of a comparison, one sentence a haematologist reads first and the
    statistics second (:func:`lenasim.outputs.caveats.decision_caveat`), from the
    reference run's caveats.json (the validation its posterior carries)."""
    from lenasim.outputs.caveats import decision_caveat

    validation = None
    for run in runs:
        path = Path(run.path) / "caveats.json"
        if path.is_file():
            try:
                validation = json.loads(path.read_text()).get("validation")
            except (json.JSONDecodeError, AttributeError):
                validation = None
            break
    return decision_caveat(validation)


def default_out_dir(result_dirs: list[Path], names: list[str]) -> Path:
    """results/compare-<name1>-vs-<name2>... next to the first run."""
    slug = "-vs-".join(n.replace(os.sep, "_").replace(" ", "_") for n in names)
    return Path(result_dirs[0]).parent / f"compare-{slug}"


def compare_runs(
    result_dirs: list[Path],
    out_dir: Path | None = None,
    overwrite: bool = False,
    *,
    quiet: bool = False,
) -> pd.DataFrame:
    """Compare runs against the first (the reference); see the module docstring for columns.

    Parameters
    ----------
    result_dirs : two or more result folders (each with draws.nc and manifest.json).
    out_dir : where to write comparison.csv, dose.csv, the plots and report.html
        (atomically). ``None`` computes and returns the table without writing.
    overwrite : replace an existing ``out_dir``; otherwise refuse with LenasimError.
    quiet : do not print the main rows to stdout (warnings still go to stderr).
    """
    result_dirs = [Path(p) for p in result_dirs]
    if len(result_dirs) < 2:
        raise LenasimError("compare needs at least two result folders (the first is the reference)")
    if out_dir is not None:
        out_dir = Path(out_dir)
        check_output_folder(out_dir, "comparison", overwrite=overwrite, hint=_OUT_HINT)
    runs = [load_run(p) for p in result_dirs]
    names = _unique_names(runs)
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
            _warn(msg)
            notes.append(msg[0].upper() + msg[1:] + ".")
        if ok:
            notes.append(
                f"{name} vs {names[0]}: paired on the same {ref.ds.sizes['draw']} posterior "
                f"draws and seed {_field(ref, ('seed',), 'seed')}."
            )
        else:
            msg = (
                f"{name} vs {names[0]} cannot be paired draw by draw ({'; '.join(reasons)}); "
                "comparing unpaired (independent draws), so intervals on differences are wider "
                "and include Monte Carlo noise"
            )
            _warn(msg)
            notes.append(msg[0].upper() + msg[1:] + ".")
        rc, oc = set(ref.ds["cycle"].values.tolist()), set(run.ds["cycle"].values.tolist())
        if rc != oc:
            common = sorted(rc & oc)
            msg = (
                f"{name} has cycles {min(oc)}-{max(oc)} and {names[0]} {min(rc)}-{max(rc)}; "
                f"compared on the common cycles {common[0]}-{common[-1]}"
                if common
                else f"{name} and {names[0]} share no cycles"
            )
            _warn(msg)
            notes.append(msg + ".")
            if not common:
                raise LenasimError(msg)
        from lenasim.outputs.tipping import comparison_rows_tipping

        frames.append(comparison_rows_tipping(_compare_pair(ref, run, names[0], name, ok),
                                              ref, run, ok))  # fmt: skip
        dose_frames.append(_dose_pair(ref, run, names[0], name, ok))
    df = pd.concat(frames, ignore_index=True)
    dose_diff = pd.concat(dose_frames, ignore_index=True)
    lim = compare_limits(runs, names, pairs)
    caveat = comparison_caveat(runs)
    notes += _undefined_notes(runs, names)
    by_subgroup = subgroup_differences(result_dirs, names, pairs)  # by CrCl band (issue 24)
    if not quiet:
        print(f"Caveat: {caveat}")
        print(format_main_rows(df))
        from lenasim.outputs.tipping import format_rows_tipping

        print(format_rows_tipping(df))
        if len(lim):
            print(format_limit_rows(lim))
        if len(by_subgroup):
            print(format_subgroup_rows(by_subgroup))
    if out_dir is not None:
        df.attrs["caveat"] = caveat
        _write_outputs(out_dir, df, runs, names, notes, overwrite, lim, dose_diff, by_subgroup)
        if not quiet:
            print(f"wrote {out_dir}")
    return df


def _pp(x: float) -> str:
    from lenasim.outputs.html import signed_pp

    return signed_pp(x)


def _undefined_notes(runs: list[Run], names: list[str]) -> list[str]:
    """A note per run with draws in which nobody starts some cycle (everyone stopped): its
    per-cycle risks there are computed over the draws where they are defined."""
    out = []
    for run, name in zip(runs, names, strict=True):
        pc = run.ds["per_cycle"].transpose("draw", "event", "cycle").values
        gone = np.all(np.isnan(pc), axis=1)  # (draw, cycle): nobody started the cycle
        n_draws = pc.shape[0]
        counts = gone.sum(axis=0)
        if counts.any():
            cycles = run.ds["cycle"].values
            first = int(cycles[np.argmax(counts > 0)])
            out.append(
                f"{name}: in {int(counts.max())} of {n_draws} posterior draws every virtual "
                f"patient has stopped by cycle {int(cycles[np.argmax(counts)])} (from cycle "
                f"{first} in some draws); per-cycle risks of those cycles are over the draws "
                "where some patient starts them (the count is the n_draws column)."
            )
    return out


def format_main_rows(df: pd.DataFrame) -> str:
    """The rows a reader needs first: per event, cycle 1 and cumulative differences."""
    lines = []
    for name, sub in df.groupby("scenario", sort=False):
        ref = sub["reference"].iloc[0]
        kind = "paired" if bool(sub["paired"].iloc[0]) else "UNPAIRED"
        last = int(sub.loc[sub["quantity"] == "cumulative", "cycle"].max())
        lines.append(
            f"{name} vs {ref} ({kind}; difference in percentage points, 90% interval; "
            f"P = P(riskier than {ref}) +/- its Monte Carlo error):"
        )
        lines.append(f"  {'event':<26} {'in cycle 1':<40} {'by end of cycle ' + str(last)}")
        for event in dict.fromkeys(sub.loc[sub["quantity"] != "dose", "event"]):
            cells = []
            for qty, cyc in (("per_cycle", 1), ("cumulative", last)):
                r = sub[(sub["quantity"] == qty) & (sub["event"] == event) & (sub["cycle"] == cyc)]
                if not len(r):
                    cells.append("-")
                    continue
                r = r.iloc[0]
                if bool(getattr(r, "identical", False)):
                    cells.append("identical")
                    continue
                few = f" [{int(r.n_draws)} draws]" if r.n_draws < r.n_draws_run else ""
                cells.append(
                    f"{_pp(r.diff_mean)} ({_pp(r.diff_q05)} to {_pp(r.diff_q95)}) "
                    f"P={r.p_riskier:.2f}+/-{r.p_riskier_mcse:.2f}{few}"
                )
            lines.append(f"  {event_title(event):<26} {cells[0]:<40} {cells[1]:<40}".rstrip())
    return "\n".join(lines)


def _dose_side_by_side(runs: list[Run], names: list[str]) -> pd.DataFrame:
    rows = []
    for run, name in zip(runs, names, strict=True):
        ds = run.ds
        for i, c in enumerate(ds["cycle"].values):
            row: dict[str, Any] = {"scenario": name, "cycle": int(c)}
            if "planned_intensity" in ds:
                row["planned_intensity"] = float(ds["planned_intensity"].values[i])
            started = None
            for var in DOSE_COLUMNS:
                if var in ds:
                    x = np.asarray(ds[var].transpose("draw", "cycle").values[:, i], float)
                    x = x[~np.isnan(x)]  # over the draws where some patient starts the cycle
                    started = x.size if started is None else max(started, x.size)
                    if not x.size:
                        continue
                    row[f"{var}_mean"] = float(x.mean())
                    row[f"{var}_q05"], row[f"{var}_q95"] = (
                        float(q) for q in np.quantile(x, [0.05, 0.95])
                    )
            row["n_draws"] = int(started or 0)
            rows.append(row)
    return pd.DataFrame(rows)


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
) -> None:
    from lenasim.outputs.figures import comparison_plots
    from lenasim.outputs.report import compare_report

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
        dose = _dose_side_by_side(runs, names)
        dose.to_csv(tmp / "dose.csv", index=False)
        comparison_plots({n: r.ds for n, r in zip(names, runs, strict=True)}, df, tmp)
        compare_report(tmp, df, runs=runs, names=names, notes=notes, dose=dose, limits=limits,
                       caveat=caveat)  # fmt: skip

    write_atomically(out_dir, build, kind="comparison", overwrite=overwrite, hint=_OUT_HINT)
