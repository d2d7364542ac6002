"""The risk limits of a comparison (compare's ``limits.csv``): for each limit of the
reference's config (the default limits when it states none), P(the scenario's risk is
below the reference's) -- P(safer), paired draw by draw like the differences -- beside
each run's P(risk > limit) and overdose-control verdict; and the comparison's caveat."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.limits import DEFAULT_LIMITS, RiskLimits
from lenasim.outputs.judgements.caveats import decision_caveat
from lenasim.outputs.judgements.decision import verdict
from lenasim.outputs.judgements.limits import evaluate_limits, paired_safer
from lenasim.outputs.judgements.tipping import compare_tipping
from lenasim.outputs.tables.runs import Run

__all__ = ["compare_limits", "comparison_caveat", "format_limit_rows", "limits_of"]


def limits_of(run: Run):
    """The risk limits of a run's config (the default limits when it states none)."""
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
    ref = runs[0]
    limits = limits_of(ref)
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
            if getattr(r, "tipping", ""):  # judgements/tipping.py
                lines.append(f"  {'':<{width}}  tipping point: {r.tipping}")
    return "\n".join(lines)


def comparison_caveat(runs: list[Run]) -> str:
    """The caveat of a comparison, one sentence a haematologist reads first and the
    statistics second (:func:`lenasim.outputs.judgements.caveats.decision_caveat`), from the
    reference run's caveats.json (the validation its posterior carries)."""
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
