"""The design's in-trial update against a full NUTS refit (issue 25, item 3): K simulated
trials of a design config, and at decisions 1 and 2 of each trial and at its last
decision, the importance-reweighted update's decision, posterior means and P(risk > limit)
against a NUTS refit of the lenasim model with the trial's patient-cycles as a new trial's
patient-level data beside the evidence rows (:mod:`lenasim.design.nuts_check`).

    python benchmarks/design_nuts_check.py --trials 10              # the README's numbers
    python benchmarks/design_nuts_check.py --trials 2 --nuts-draws 200 --tune 300

Run from the repository root. It prints one progress line per decision point and, at the
end, one JSON line: the settings, the agreement of the decisions (the design's update as
configured, and the plain reweighting without robust component and fallback) with a
95% Clopper-Pearson interval, the reasons of the disagreements, the reweighting's ESS,
the z-scores of the posterior-mean differences (difference over the combined Monte Carlo
SE), the wall time and the 1-minute load average. ``--out DIR`` also writes the points
and cells tables as CSV.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from lenasim.design.config import load_design
    from lenasim.design.nuts_check import NutsSettings, check, summarise
    from lenasim.pipeline.posterior import ensure_posterior

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(REPO / "configs" / "design_untreated.yaml"))
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--draws", type=int, default=1000, help="prior draws of the update")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--nuts-draws", type=int, default=500)
    p.add_argument("--tune", type=int, default=500)
    p.add_argument("--seed", type=int, default=1, help="NUTS seed")
    p.add_argument("--first", default="1,2", help="decisions checked besides the last")
    p.add_argument("--out", default=None, help="folder for points.csv and cells.csv")
    args = p.parse_args()
    cfg = load_design(args.config)
    cfg = cfg.model_copy(
        update={"posterior": cfg.posterior.model_copy(update={"draws": args.draws})}
    )
    post = ensure_posterior(cfg.posterior.spec)
    settings = NutsSettings(args.chains, args.nuts_draws, args.tune, args.seed)
    first = tuple(int(x) for x in args.first.split(",") if x)
    t0 = time.perf_counter()
    points, cells = check(cfg, post.draws, cfg.posterior.spec, args.trials, settings, first,
                          log=lambda s: print(s, file=sys.stderr, flush=True))  # fmt: skip
    wall = time.perf_counter() - t0
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        points.to_csv(out / "points.csv", index=False)
        cells.to_csv(out / "cells.csv", index=False)
    print(json.dumps({
        "config": str(args.config), "trials": args.trials, "prior_draws": args.draws,
        "nuts": {"chains": args.chains, "draws": args.nuts_draws, "tune": args.tune},
        "summary": summarise(points, cells, cfg.update.min_ess),
        "nuts_seconds_median": float(points["nuts_seconds"].median()),
        "wall_s": round(wall, 1), "load_1min": os.getloadavg()[0],
    }, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
