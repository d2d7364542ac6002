"""The validation report (report.md) from the summaries."""

from __future__ import annotations


def _fmt(x: float, d: int = 2) -> str:
    return f"{x:.{d}f}"


def _report(summary: dict) -> str:
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
            "",
            "Baseline: one pooled rate per outcome, setting and unit family with a Beta(1,1) "
            "prior, updated by the training rows (exact Beta-binomial predictive); it ignores "
            "dose and schedule.", "",
            "Plots: `calibration.png` (observed against predicted), `pit.png`. Rows: `loto.csv`.",
            "",
        ]  # fmt: skip
        refits = lo.get("refits", [])
        bad = [r for r in refits if r.get("max_rhat", 1) > 1.05 or r.get("divergences", 0)]
        if refits:
            worst = max(r.get("max_rhat", float("nan")) for r in refits)
            lines += [f"Refit diagnostics: worst R-hat {worst:.3f}; "
                      f"{sum(r.get('divergences', 0) for r in refits)} divergences in all; "
                      f"{len(bad)} refit(s) with R-hat > 1.05 or divergences.", ""]  # fmt: skip
    mc = summary.get("model_comparison")
    if mc:
        verdict = ("the data cannot tell them apart (|difference| < 2 SE)" if not mc["distinguishable"]
                   else ("the full model predicts better" if mc["diff"] > 0
                         else "the model without dose terms predicts better"))  # fmt: skip
        lines += ["## Model comparison: dose terms", "",
                  f"LOTO ELPD of the full model {_fmt(mc['elpd_a'], 1)}, without dose terms "
                  f"{_fmt(mc['elpd_b'], 1)}: difference {_fmt(mc['diff'], 1)} "
                  f"(SE {_fmt(mc['se'], 1)}, {mc['n_rows']} rows): {verdict}.", ""]  # fmt: skip
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
        lines += ["## Simulation-based calibration", "",
                  f"{sb['n_fits']} fits; ranks among {sb['L']} thinned posterior draws; "
                  f"Bonferroni family level {sb['alpha']} over {len(sb['params'])} parameters.", "",
                  "| parameter | chi-square p | rank-mean z | verdict |", "|---|---|---|---|"]  # fmt: skip
        for name, r in sb["params"].items():
            ok = r["chi2_pvalue"] > sb["alpha"] / len(sb["params"])
            lines.append(
                f"| {name} | {r['chi2_pvalue']:.3f} | {r['rank_mean_z']:+.2f} | "
                f"{'uniform' if ok else 'NOT uniform'} |"
            )
        lines += ["", "Plot: `sbc_ranks.png`; ranks: `sbc_ranks.csv`.", ""]
    return "\n".join(lines)
