"""The validation report (report.md) from the summaries."""

from __future__ import annotations

from lenasim.core.vocabulary import GATE


def _fmt(x: float, d: int = 2) -> str:
    return f"{x:.{d}f}"


def _vs_meta_lines(vm: dict) -> list[str]:
    """The model against the meta-analysis by outcome, unit and trial (``loto_vs_meta.csv``)."""
    t = vm["total"]
    lines = ["### Where the model wins or loses against the meta-analysis", "",
             "Sum over the rows of lpd(model) - lpd(meta-analysis), in nats (positive: the model "
             "predicted the left-out rows better), with the SE of the sum; all rows: "
             f"{_fmt(t['diff'], 1)} (SE {_fmt(t['se'], 1)}, {t['n_rows']} rows).", "",
             "| group | rows | model - meta (nats) | SE | rows where the model is worse |",
             "|---|---|---|---|---|"]  # fmt: skip
    for part, label in (("by_outcome", "outcome"), ("by_unit", "unit"), ("by_trial", "trial")):
        for key, g in vm[part].items():
            # one row has no spread to estimate an SE from: said, not printed as nan
            se = _fmt(g["se"], 1) if g["n_rows"] > 1 else "none (one row)"
            lines.append(f"| {label} {key} | {g['n_rows']} | {g['diff']:+.1f} | "
                         f"{se} | {g['rows_worse']} |")  # fmt: skip
    return lines + ["", "Rows: `loto_vs_meta.csv`.", ""]


def validation_report(summary: dict) -> str:
    lines = ["# lenasim validation", ""]
    s = summary.get("settings", {})
    if s:
        lines += [f"Spec `{s.get('spec')}`; refits of {s.get('chains')} chains x {s.get('draws')} "
                  f"draws after {s.get('tune')} tuning steps, target_accept "
                  f"{s.get('target_accept')} ({s.get('sampler')}); "
                  f"{s.get('effects_per_draw')} new trial effects per posterior draw.", ""]  # fmt: skip
    lo = summary.get("loto")
    if lo:
        c50, c90 = lo["coverage50"], lo["coverage90"]
        mb = lo["model_vs_baseline"]
        lines += [
            "## Leave-one-trial-out prediction", "",
            f"{lo['n_rows']} fitted rows of {lo['n_trials']} trials, each predicted by the model "
            "refitted without its trial, as a new trial (new trial effect u ~ N(0, tau)).", "",
            "| measure | value | nominal |", "|---|---|---|",
            f"| rows inside the 50% interval | {_fmt(c50['share'])} (SE {_fmt(c50['se'])}) | 0.50 (at least, for discrete counts) |",
            f"| rows inside the 90% interval | {_fmt(c90['share'])} (SE {_fmt(c90['se'])}) | 0.90 (at least) |",
            f"| mean randomised PIT | {_fmt(lo['pit_mean'])} | 0.50 |",
            f"| KS p-value of PIT vs U(0,1) | {_fmt(lo['pit_ks_pvalue'], 3)} | |",
            f"| ELPD, model | {_fmt(lo['elpd_model'], 1)} | |",
            f"| ELPD, pooled-rate baseline | {_fmt(lo['elpd_baseline'], 1)} | |",
            f"| model - baseline | {_fmt(mb['diff'], 1)} (SE {_fmt(mb['se'], 1)}) | |",
            *([f"| ELPD, random-effects meta-analysis | {_fmt(lo['elpd_meta'], 1)} | |",
               f"| model - meta-analysis | {_fmt(lo['model_vs_meta']['diff'], 1)} "
               f"(SE {_fmt(lo['model_vs_meta']['se'], 1)}) | |"] if "model_vs_meta" in lo else []),
            "",
            "Baseline: one pooled rate per outcome, setting and unit family with a Beta(1,1) "
            "prior, updated by the training rows (exact Beta-binomial predictive); it ignores "
            "dose and schedule. Meta-analysis: the baseline the field would use (RBesT's gMAP): "
            "per outcome and unit family a logit-normal rate with a between-trial SD, "
            "predicted for a new trial; it too ignores dose and schedule.", "",
            "Plots: `calibration.png` (observed against predicted), `pit.png`. Rows: `loto.csv`.",
            "",
        ]  # fmt: skip
        vm = lo.get("vs_meta")
        if vm:
            lines += _vs_meta_lines(vm)
        refits = lo.get("refits", [])
        bad = [r for r in refits
               if r.get("max_rhat", 1) > GATE.refit_rhat or r.get("divergences", 0)]  # fmt: skip
        if refits:
            worst = max(r.get("max_rhat", float("nan")) for r in refits)
            lines += [f"Refit diagnostics: worst R-hat {worst:.3f}; "
                      f"{sum(r.get('divergences', 0) for r in refits)} divergences in all; "
                      f"{len(bad)} refit(s) with R-hat > {GATE.refit_rhat} or divergences.",
                      ""]  # fmt: skip
    mc = summary.get("model_comparison")
    if mc:
        verdict = ("the data cannot tell them apart (|difference| < 2 SE)" if not mc["distinguishable"]
                   else ("the full model predicts better" if mc["diff"] > 0
                         else "the model without dose terms predicts better"))  # fmt: skip
        lines += ["## Model comparison: dose terms", "",
                  f"LOTO ELPD of the full model {_fmt(mc['elpd_a'], 1)}, without dose terms "
                  f"{_fmt(mc['elpd_b'], 1)}: difference {_fmt(mc['diff'], 1)} "
                  f"(SE {_fmt(mc['se'], 1)}, {mc['n_rows']} rows): {verdict}.", ""]  # fmt: skip
    lv = summary.get("loto_variants")
    if lv:
        lines += ["## Model v2's choices, by leave-one-trial-out", "",
                  "| model | inside 50% | inside 90% | PIT KS p | ELPD | vs default (SE) |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for name, r in lv.items():
            vs = r.get("vs_default")
            lines.append(
                f"| {name} | {_fmt(r['coverage50']['share'])} | {_fmt(r['coverage90']['share'])} | "
                f"{_fmt(r['pit_ks_pvalue'], 3)} | {_fmt(r['elpd_model'], 1)} | "
                + (f"{_fmt(vs['diff'], 1)} ({_fmt(vs['se'], 1)})" if vs else "-")
                + " |"
            )
        lines += ["", "unconstrained: `monotone: false` (each log-normal slope prior replaced by "
                  "the normal with its mean and SD); student_t: Student-t(5) trial effects. "
                  "Rows: `loto_<model>.csv`.", ""]  # fmt: skip
    cl = summary.get("claims")
    if cl:
        lines += ["## The literature's claims, paired on the shipped posterior", "",
                  "Population of configs/slow_escalation.yaml, only the compared feature "
                  "changed; P under the posterior and under the prior alone.", "",
                  "| claim | P (posterior) | P (prior) | aim | carried by |", "|---|---|---|---|---|"]  # fmt: skip
        for r in cl:
            aim = "-" if r["aim"] != r["aim"] else f">= {r['aim']:g}"
            lines.append(f"| {r['claim']} | {r['p_posterior']:.2f} | {r['p_prior']:.2f} | "
                         f"{aim} | {r['verdict']} |")  # fmt: skip
        lines += ["", "Table: `claims.csv`.", ""]
    ps = summary.get("prior_sensitivity")
    if ps:
        lines += ["## Prior sensitivity", "",
                  f"Every prior scale multiplied by {ps['factor']:g}; shipped configs simulated "
                  f"with {ps['patients']} patients x {ps['draws']} draws on each posterior "
                  "(mean [5%, 95%]).", "",
                  "| config | event | quantity | default | widened | shift |", "|---|---|---|---|---|---|"]  # fmt: skip
        for r in ps["table"]:
            lines.append(
                f"| {r['config']} | {r['event']} | {r['quantity']} | "
                f"{r['mean_default']:.3f} [{r['q05_default']:.3f}, {r['q95_default']:.3f}] | "
                f"{r['mean_widened']:.3f} [{r['q05_widened']:.3f}, {r['q95_widened']:.3f}] | "
                f"{r['shift']:+.3f} |"
            )
        lines.append("")
    sb = summary.get("sbc")
    if sb:
        from scipy.stats import norm

        level = sb["alpha"] / len(sb["params"])
        lines += ["## Simulation-based calibration", "",
                  f"{sb['n_fits']} fits; ranks among {sb['L']} thinned posterior draws; "
                  f"Bonferroni family level {sb['alpha']} over {len(sb['params'])} parameters "
                  "(a parameter is uniform when its chi-square p-value is above "
                  f"{level:.4f} and its |z| below {norm.isf(level / 2):.2f})."]  # fmt: skip
        if "draws" in sb:
            lines.append(
                f"Refits of {sb['chains']} chains x {sb['draws']} draws after {sb['tune']} "
                f"tuning steps, {sb['seconds_per_fit']:.0f} s each on average; "
                f"{sb['fits_failing_gate']} of {sb['n_fits']} fits would fail `fit`'s gate "
                f"({GATE.words()}; short chains make R-hat over "
                f"~90 parameters exceed {GATE.max_rhat} easily), "
                f"{sb.get('fits_with_divergences', 0)} had divergent transitions."
            )
        lines += ["", "| parameter | chi-square p | rank-mean z | verdict |", "|---|---|---|---|"]
        for name, r in sb["params"].items():
            ok = r["chi2_pvalue"] > level and abs(r["rank_mean_z"]) < norm.isf(level / 2)
            lines.append(
                f"| {name} | {r['chi2_pvalue']:.3f} | {r['rank_mean_z']:+.2f} | "
                f"{'uniform' if ok else 'NOT uniform'} |"
            )
        lines += ["", "Plot: `sbc_ranks.png`; ranks: `sbc_ranks.csv`.", ""]
    return "\n".join(lines)
