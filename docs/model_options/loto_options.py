"""Leave-one-trial-out of model spec options, with short refits and without the no-dose
model (issue 23 item 2, run on a machine too loaded for `validate`'s full refits).

    python docs/model_options/loto_options.py OUT SPEC [SPEC ...] [--draws 300 --tune 500 --chains 2]
    python docs/model_options/loto_options.py OUT --compare default NAME [NAME ...]

For each spec: the same refits and predictions as `python -m lenasim validate --only loto`
(the rows and arms as the spec's options give them, lenasim.model.given), with the given
sampler settings, writing OUT/<spec name>/loto.csv, loto_vs_meta.csv and summary.json.
Specs compared with each other must be run with the same settings (the seed is the spec's).
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


def compare(out: Path, names: list[str]) -> None:
    """The README's table: each run against the first (the default) and the meta-analysis,
    overall and on the grade 3-4 neutropenia rows; coverage 90 / 50."""
    import pandas as pd

    tabs = {n: pd.read_csv(out / n / "loto.csv") for n in names}
    ref = tabs[names[0]]
    for n, t in tabs.items():
        assert list(t["row_id"]) == list(ref["row_id"])
        neu = (t["outcome"] == "neutropenia_grade34").to_numpy()
        fmt = lambda d: f"{d['diff']:+.1f} ({d['se']:.1f})"  # noqa: E731
        vs_def = elpd_difference(t["lpd"], ref["lpd"])
        vs_meta = elpd_difference(t["lpd"], t["lpd_meta"])
        neu_meta = elpd_difference(t["lpd"][neu], t["lpd_meta"][neu])
        neu_def = elpd_difference(t["lpd"][neu], ref["lpd"][neu])
        print(f"| {n} | {fmt(vs_def)} | {fmt(neu_def)} | {fmt(vs_meta)} | {fmt(neu_meta)} | "
              f"{t['inside90'].mean():.2f} / {t['inside50'].mean():.2f} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--compare", action="store_true", help="specs are run names in OUT")
    args = ap.parse_args()
    if args.compare:
        compare(Path(args.out), args.specs)
        return
    base_rows, base_arms = fitted_rows(load_evidence()), load_arms()
    for path in args.specs:
        spec = load_spec(path)
        rows, arms = as_given(base_rows, base_arms, spec)
        t0 = time.perf_counter()
        fitter = Fitter(spec, prepare(rows, arms, spec.quadrature_nodes, spec.quadrature_rule,
                                      spec.link))  # fmt: skip
        fitter.compile()
        settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
        table, refits = loto(rows, arms, refit_fn(fitter, spec.sampler.seed, **settings),
                             quadrature_nodes=spec.quadrature_nodes,
                             quadrature_rule=spec.quadrature_rule, seed=spec.sampler.seed,
                             progress=False)  # fmt: skip
        out = Path(args.out) / spec.name
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
