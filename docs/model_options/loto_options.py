"""Leave-one-trial-out of model spec options, without the no-dose model that
`python -m lenasim validate` adds (issue 23: deciding the spec options of this folder).

    python docs/model_options/loto_options.py OUT SPEC [SPEC ...] [--draws N --tune N --chains N]
    python docs/model_options/loto_options.py OUT --compare default NAME [NAME ...]

For each spec: the same refits and predictions as `python -m lenasim validate --only loto`
(the rows and arms as the spec's options give them, lenasim.model.given), writing
OUT/<spec name>/loto.csv, loto_vs_meta.csv and summary.json. The sampler settings are the
spec's own (as `fit` and `validate`) unless --draws / --tune / --chains say otherwise;
specs compared with each other must be run with the same settings (the seed is the
spec's). A spec whose OUT/<name>/summary.json exists is skipped (--force reruns it), so
an interrupted batch resumes. The default's `validate` folder can stand in for
OUT/default: its loto.csv has the same rows and columns (plus the no-dose model's).

--compare prints the README's table: each run against the first (the default), the
meta-analysis and the pooled baseline, overall and on the grade 3-4 neutropenia rows;
coverage 90 / 50, the PIT's KS p-value.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lenasim.evidence.table import fitted_rows, load_arms, load_evidence
from lenasim.model.fit import Fitter
from lenasim.model.given import as_given
from lenasim.model.likelihood import prepare
from lenasim.model.spec import load_spec
from lenasim.validation.loto import (
    elpd_difference,
    loto,
    loto_summary,
    meta_comparison,
    refit_fn,
)

NEUTROPENIA = "neutropenia_grade34"


def compare(out: Path, names: list[str]) -> None:
    """The README's table, one line per run (ELPD differences in nats with their SE)."""
    import pandas as pd

    tabs = {n: pd.read_csv(out / n / "loto.csv") for n in names}
    ref = tabs[names[0]]
    print("| model | vs default | vs default, neutropenia | vs meta-analysis | "
          "vs meta, neutropenia (rows worse) | vs pooled baseline | coverage 90 / 50 | "
          "PIT KS p |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, t in tabs.items():
        assert list(t["row_id"]) == list(ref["row_id"]), f"{n}: not the same rows as {names[0]}"
        neu = (t["outcome"] == NEUTROPENIA).to_numpy()
        fmt = lambda d: f"{d['diff']:+.1f} ({d['se']:.1f})"  # noqa: E731
        vs_def = elpd_difference(t["lpd"], ref["lpd"])
        neu_def = elpd_difference(t["lpd"][neu], ref["lpd"][neu])
        vs_meta = elpd_difference(t["lpd"], t["lpd_meta"])
        neu_meta = elpd_difference(t["lpd"][neu], t["lpd_meta"][neu])
        worse = int((t["lpd"][neu] < t["lpd_meta"][neu]).sum())
        vs_base = elpd_difference(t["lpd"], t["lpd_baseline"])
        s = loto_summary(t)
        print(f"| {n} | {fmt(vs_def)} | {fmt(neu_def)} | {fmt(vs_meta)} | "
              f"{fmt(neu_meta)} ({worse} of {int(neu.sum())}) | {fmt(vs_base)} | "
              f"{s['coverage90']['share']:.2f} / {s['coverage50']['share']:.2f} | "
              f"{s['pit_ks_pvalue']:.2f} |")  # fmt: skip
    print("\nneutropenia rows: observed, predicted median [90%] per run, meta-analysis expected")
    for i in ref.index[(ref["outcome"] == NEUTROPENIA).to_numpy()]:
        cells = [f"{n}: {t.at[i, 'pred_median']:.0f} [{t.at[i, 'lo90']:.0f}, {t.at[i, 'hi90']:.0f}]"
                 for n, t in tabs.items()]  # fmt: skip
        print(f"{ref.at[i, 'row_id']}: {ref.at[i, 'observed']:.0f}/{ref.at[i, 'n']:.0f}; "
              f"meta {ref.at[i, 'meta_rate'] * ref.at[i, 'n']:.0f}; " + "; ".join(cells))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--draws", type=int, default=None, help="default: the spec's")
    ap.add_argument("--tune", type=int, default=None, help="default: the spec's")
    ap.add_argument("--chains", type=int, default=None, help="default: the spec's")
    ap.add_argument("--force", action="store_true", help="rerun specs already in OUT")
    ap.add_argument("--compare", action="store_true", help="specs are run names in OUT")
    args = ap.parse_args()
    if args.compare:
        compare(Path(args.out), args.specs)
        return
    base_rows, base_arms = fitted_rows(load_evidence()), load_arms()
    for path in args.specs:
        spec = load_spec(path)
        out = Path(args.out) / spec.name
        if (out / "summary.json").exists() and not args.force:
            print(f"{spec.name}: done already ({out}), skipped", flush=True)
            continue
        s = spec.sampler
        settings = {"draws": args.draws or s.draws, "tune": args.tune or s.tune,
                    "chains": args.chains or s.chains}  # fmt: skip
        rows, arms = as_given(base_rows, base_arms, spec)
        t0 = time.perf_counter()
        fitter = Fitter(spec, prepare(rows, arms, spec.quadrature_nodes, spec.quadrature_rule,
                                      spec.link))  # fmt: skip
        fitter.compile()
        table, refits = loto(rows, arms, refit_fn(fitter, s.seed, **settings),
                             quadrature_nodes=spec.quadrature_nodes,
                             quadrature_rule=spec.quadrature_rule, seed=s.seed,
                             progress=False)  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "loto.csv", index=False)
        vs_rows, vs_meta = meta_comparison(table)
        vs_rows.to_csv(out / "loto_vs_meta.csv", index=False)
        summary = {"spec": path, "settings": settings, "seconds": time.perf_counter() - t0,
                   "loto": loto_summary(table) | {"refits": refits, "vs_meta": vs_meta}}  # fmt: skip
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
        print(f"{spec.name}: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
