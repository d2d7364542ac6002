"""The search report (report.md) and the paired comparison of the best schedules with a
reference schedule (comparison.csv).

The comparison is paired: every schedule was simulated on the same posterior draws and
the same random numbers, so the difference of two schedules is taken draw by draw and its
interval reflects the schedules, not Monte Carlo noise or the posterior uncertainty they
share (as ``lenasim compare`` does for runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.limits import RiskLimits
from lenasim.core.vocabulary import event_title
from lenasim.outputs.judgements.decision import critical_words
from lenasim.outputs.judgements.limits import paired_safer, risk_draws
from lenasim.outputs.tables.formats import pct, signed_pp, skewed
from lenasim.outputs.tables.summaries import QUANTILES, probability_mcse
from lenasim.search.config import OBJECTIVES, SearchConfig
from lenasim.search.evaluate import limit_key, objective_draws
from lenasim.search.space import Candidate, Space, days_to_target

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

__all__ = ["Compared", "paired_comparison", "search_report"]

_SHOWN = 10  # rows of the tables of best and closest schedules


@dataclass(frozen=True)
class Compared:
    """A simulated schedule in the comparison: its rank (0 for a reference), candidate
    and run dataset."""

    rank: int
    candidate: Candidate
    ds: xr.Dataset


def paired_comparison(
    cfg: SearchConfig, reference: Compared, others: list[Compared]
) -> pd.DataFrame:
    """One row per schedule and quantity: each limited risk and each objective, the
    schedule's and the reference's means, the paired difference (schedule minus
    reference: mean and 90% interval over draws) and ``p_better``, the posterior
    probability that the schedule is better (lower risk, P(safer) with ties counted one
    half, as :func:`lenasim.outputs.judgements.limits.paired_safer`; for objectives, better in
    their direction)."""
    import pandas as pd

    n_cyc = cfg.space.cycles
    rows = []
    ref_days = np.asarray(reference.candidate.regimen.expand().cycle_days)
    ref_obj = objective_draws(reference.ds, cfg.objective_cycles, ref_days)
    for other in others:
        safer = paired_safer(reference.ds, other.ds, cfg.limits).set_index("limit")
        base = {"rank": other.rank, "id": other.candidate.id, "reference": reference.candidate.id}
        for event, limit in cfg.limits.items():
            a = np.nan_to_num(risk_draws(reference.ds, event, limit))
            b = np.nan_to_num(risk_draws(other.ds, event, limit))
            desc = limit.describe(event, n_cyc)
            rows.append(base | {"quantity": f"risk_{limit_key(event, limit, n_cyc)}",
                                "description": desc, **_diff(b, a),
                                "p_better": float(safer.loc[desc, "p_safer"]),
                                "p_better_mcse": float(safer.loc[desc, "p_safer_mcse"])})  # fmt: skip
        days = np.asarray(other.candidate.regimen.expand().cycle_days)
        obj = objective_draws(other.ds, cfg.objective_cycles, days)
        dt = days_to_target(other.candidate.regimen.expand())
        dt_ref = days_to_target(reference.candidate.regimen.expand())
        rows.append(
            base
            | {"quantity": "days_to_target", "description": cfg.objective_label("days_to_target")}
            | _diff(np.array([dt]), np.array([dt_ref]))
            | {"p_better": float(dt < dt_ref) + 0.5 * float(dt == dt_ref), "p_better_mcse": 0.0}
        )
        for name, values in obj.items():
            d = values - ref_obj[name]
            better = d < 0 if OBJECTIVES[name][0] == "min" else d > 0
            hits = better + 0.5 * (d == 0)
            rows.append(
                base
                | {"quantity": name, "description": cfg.objective_label(name)}
                | _diff(values, ref_obj[name])
                | {"p_better": float(np.mean(hits)), "p_better_mcse": probability_mcse(hits)}
            )
    return pd.DataFrame(rows)


def _diff(b: np.ndarray, a: np.ndarray) -> dict[str, float]:
    d = b - a
    q = np.quantile(d, QUANTILES)
    return {"value": float(np.mean(b)), "reference_value": float(np.mean(a)),
            "diff_mean": float(np.mean(d)), "diff_q05": float(q[0]),
            "diff_q95": float(q[-1])}  # fmt: skip


# --- report.md --------------------------------------------------------------------------


def _pct(m: float, lo: float | None = None, hi: float | None = None) -> str:
    if m is None or np.isnan(m):
        return "-"
    if lo is None:
        return pct(m)
    return f"{pct(m)} ({pct(lo)} to {pct(hi)})"


def _num(m: float, lo: float | None = None, hi: float | None = None, unit: str = "") -> str:
    if m is None or np.isnan(m):
        return "not reached"
    if lo is None:
        return f"{m:g}{unit}"
    return f"{m:.1f} ({lo:.1f} to {hi:.1f}){unit}"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[str(c).replace("|", "\\|") for c in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines)


def _schedule_rows(df: pd.DataFrame, cfg: SearchConfig, rank: bool = True) -> str:
    n_cyc, k = cfg.space.cycles, cfg.objective_cycles
    q_name = critical_words(1 - cfg.limits.max_probability)
    header = (["rank"] if rank else []) + ["id", "schedule", "days to target",
              f"mg/day, cycles 1-{k}", f"on target, cycle {k}", "stopped"]  # fmt: skip
    for event, limit in cfg.limits.items():
        header.append(limit.describe(event, n_cyc) + f": P(exceed) ± MCSE; {q_name}; "
                      "median, mean (90%)")  # fmt: skip
    peaks = [c for c in df.columns if c.endswith("_peak_cycle")]
    if peaks:
        header.append("risk peaks in cycle: " + ", ".join(
            event_title(c.removesuffix("_peak_cycle")) for c in peaks))  # fmt: skip
    body = []
    for _, r in df.iterrows():
        cells = ([str(r["rank"])] if rank else []) + [
            str(r["id"]), str(r["schedule"]), _num(r["days_to_target"]),
            _num(r["dose_intensity_mean"], r["dose_intensity_q05"], r["dose_intensity_q95"]),
            _pct(r["share_at_target_mean"]), _pct(r["share_stopped_mean"]),
        ]  # fmt: skip
        for event, limit in cfg.limits.items():
            key = limit_key(event, limit, n_cyc)
            mcse = r.get(f"p_exceed_{key}_mcse", np.nan)
            p = f"{r[f'p_exceed_{key}']:.2f}" + (f" ± {mcse:.2f}" if np.isfinite(mcse) else "")
            if bool(r.get("undecided", False)) and abs(
                r[f"p_exceed_{key}"] - cfg.limits.max_probability
            ) <= 2 * (mcse if np.isfinite(mcse) else 0):
                p += " (undecided)"
            cells.append(
                f"{p}; {_pct(r.get(f'risk_{key}_qcrit', np.nan))}; "
                + skewed(
                    r.get(f"risk_{key}_q50", np.nan),
                    r[f"risk_{key}_mean"],
                    r[f"risk_{key}_q05"],
                    r[f"risk_{key}_q95"],
                )  # fmt: skip
            )
        if peaks:
            cells.append(", ".join(str(int(r[c])) for c in peaks))
        body.append(cells)
    return _md_table(header, body)


def _failing(table: pd.DataFrame, cfg: SearchConfig) -> list[str]:
    """'<limit>: <number of schedules failing it>' for every limit."""
    n_cyc, threshold = cfg.space.cycles, cfg.limits.max_probability
    out = []
    for ev, lim in cfg.limits.items():
        n = int((table[f"p_exceed_{limit_key(ev, lim, n_cyc)}"] > threshold).sum())
        out.append(f"{lim.describe(ev, n_cyc)}: {n}")
    return out


def _limits_text(limits: RiskLimits, n_cyc: int) -> str:
    items = [f"- {lim.describe(ev, n_cyc)}" for ev, lim in limits.items()]
    return "\n".join(items) + (
        f"\n\nA schedule meets a limit when the posterior probability that its risk exceeds "
        f"the limit, P(exceed), is at most {limits.max_probability:g} (escalation with "
        "overdose control, Babb et al. 1998)."
    )


def search_report(
    cfg: SearchConfig,
    *,
    config_path: str,
    space: Space,
    table: pd.DataFrame,
    references: pd.DataFrame,
    comparison: pd.DataFrame | None,
    posterior: dict,
    execution: str,
    run_folders: list[str],
    caveat: str = "",
) -> str:
    """report.md: what was searched, what met the limits, the references, the paired
    comparison of the best schedules with the first reference, and how to read it."""
    n_cyc, pop = cfg.space.cycles, cfg.population
    who = "a new trial" if cfg.population_effect == "new_trial" else "the average trial"
    feasible = table[table["feasible"]]
    out = [f"# Schedule search `{cfg.name}`", ""]
    if caveat:
        out += [f"> **Caveat:** {caveat}", ""]
    if cfg.description:
        out += [cfg.description.strip(), ""]
    steroid = {True: "with", False: "without"}
    out += [
        "## What was searched",
        "",
        f"- config: `{config_path}`; seed {cfg.seed}",
        f"- population: {pop.setting}, {100 * pop.elderly_share:g}% aged 65 or more, "
        f"partners: {', '.join(pop.partner_classes) or 'none'}; "
        f"{pop.patients} virtual patients per posterior draw",
        f"- rules: neutropenia -> {cfg.rules.on_neutropenia}, grade >= 3 flare -> "
        f"{cfg.rules.on_flare_grade3plus}, TLS -> {cfg.rules.on_tls}; escalate only if "
        f"tolerated: {'yes' if cfg.rules.escalate_only_if_tolerated else 'no'}",
        f"- posterior: `{posterior['path']}` ({cfg.posterior.draws} draws; converged: "
        f"{'yes' if posterior['converged'] else '**no**'}); population effect: "
        f"{cfg.population_effect}",
        f"- space: {space.summary()}; {n_cyc} cycles each; steroid prophylaxis in cycle 1: "
        + " or ".join(steroid[s] for s in cfg.steroid_axis()),
        f"- run: {execution}",
        "",
        "Risk limits:",
        "",
        _limits_text(cfg.limits, n_cyc),
        "",
        "Objectives, in ranking order:",
        "",
        *[
            f"- `{o}` ({'lower' if OBJECTIVES[o][0] == 'min' else 'higher'} is better): "
            f"{cfg.objective_text(o)}"
            for o in cfg.objectives
        ],
        "",
        "## Result",
        "",
    ]
    undecided = table[table["undecided"]] if "undecided" in table else table.iloc[:0]
    if len(undecided):
        out += [
            f"**{len(undecided)} schedule(s) are undecided**: a limit's P(exceed) lies within "
            "2 Monte Carlo standard errors of the threshold even after the draws added to "
            f"them ({', '.join(undecided['id'].astype(str).head(_SHOWN))}"
            f"{', ...' if len(undecided) > _SHOWN else ''}); their verdict needs more "
            "posterior draws than the search could give.",
            "",
        ]
    if len(feasible):
        best = feasible.iloc[0]
        out += [
            f"**{len(feasible)} of {len(table)} schedules meet every limit.** The best by "
            f"`{cfg.objectives[0]}` is {best['id']}: {best['schedule']}.",
            "",
            _schedule_rows(feasible.head(_SHOWN), cfg),
            "",
            "Each limit's cell: the posterior probability that the risk exceeds the limit "
            "with its Monte Carlo standard error; the risk's "
            f"{critical_words(1 - cfg.limits.max_probability)} (within the limit exactly when "
            "the schedule meets it); the risk's median and mean with its 90% interval. "
            '"Risk peaks in cycle": the cycle with the highest mean per-cycle risk of each '
            "event, over the whole schedule (a risk moved to a later cycle shows there).",
        ]
        if table["target_mg"].nunique() > 1:  # days to target count to each one's own target
            per_target = feasible.groupby("target_mg", sort=True).head(1)
            out += ["", "The best within the limits for each target dose:", "",
                    _schedule_rows(per_target, cfg)]  # fmt: skip
    else:
        out += [
            f"**No schedule meets every limit.** None of the {len(table)} schedules has "
            f"P(risk > limit) <= {cfg.limits.max_probability:g} for every limit. The "
            "schedules closest to the limits (smallest excess of P(exceed) over the "
            "threshold) are below; the candidates.csv column `max_excess` ranks them all.",
            "",
            _schedule_rows(table.head(_SHOWN), cfg),
            "",
            "Schedules failing each limit: " + "; ".join(_failing(table, cfg)),
        ]
    q_name = critical_words(1 - cfg.limits.max_probability)
    out += ["", "![Pareto front](pareto.png)", "",
            f"Each point is a schedule at its `{cfg.objectives[0]}` and the {q_name} of its "
            "risk for one limit, the number the verdict compares with the limit: a point below "
            "its panel's dashed line meets that limit; filled points meet every limit. The line "
            "is the front of schedules no other beats on both.",
            ""]  # fmt: skip
    if len(references):
        out += ["## Reference schedules", "", _schedule_rows(references, cfg, rank=False), ""]
    out += ["## Paired comparison with the reference", ""]
    if comparison is None or not len(comparison):
        out += ["No comparison: the config gives no `references`, or `top` is 0.", ""]
    else:
        ref = comparison["reference"].iloc[0]
        out += [
            f"Each of the best schedules against `{ref}`, draw by draw on common random "
            "numbers: the difference (schedule minus reference) with its 90% interval, and "
            "the posterior probability that the schedule is better, ± its Monte Carlo error.",
            "",
        ]
        rows = []
        for _, r in comparison.iterrows():
            risk = r["quantity"].startswith("risk_") or r["quantity"] in (
                "share_at_target", "share_stopped")  # fmt: skip
            fmt = (lambda x: f"{signed_pp(x)} pp") if risk else (lambda x: signed_pp(x / 100))
            mcse = r.get("p_better_mcse", np.nan)
            rows.append([str(r["rank"]), str(r["id"]), str(r["description"]),
                         f"{fmt(r['diff_mean'])} ({fmt(r['diff_q05'])} to {fmt(r['diff_q95'])})",
                         f"{r['p_better']:.2f}" + (f" ± {mcse:.2f}" if np.isfinite(mcse)
                                                   else "")])  # fmt: skip
        out += [_md_table(["rank", "id", "quantity", "difference (90%)", "P(better) ± MCSE"],
                          rows), ""]  # fmt: skip
    out += [
        "## How to read this",
        "",
        "- Every schedule was simulated on the same posterior draws and the same random "
        "numbers, so differences between schedules are paired and most Monte Carlo noise "
        "cancels in them; each probability still carries its Monte Carlo standard error "
        "(± MCSE: binomial over the draws, or batch means if larger), and a verdict within "
        "2 MCSE of its threshold is undecided (the search adds draws to such schedules "
        "within its budget).",
        f"- Risks are for {who}: the intervals include the between-trial heterogeneity. "
        "They rest on a model fitted to a few hundred patients: read them with the "
        "model's validation and prior sensitivity (README), and the dose effects as "
        "largely prior (the caveat at the top).",
        "- `days_to_target` assumes escalation on schedule; the simulated shares on target "
        "and stopped include the dose rules.",
        "",
        "## Files",
        "",
        "- `candidates.csv`: one row per schedule, ranked (feasible first); "
        "`references.csv` the same for the references; `comparison.csv` the paired "
        "comparison; `manifest.json` the config, hashes and timings",
        *[
            f"- `{f}/`: a full `lenasim run` result folder (its `scenario.yaml` reruns it "
            "with the same numbers)"
            for f in run_folders
        ],  # fmt: skip
        "",
    ]
    return "\n".join(out)
