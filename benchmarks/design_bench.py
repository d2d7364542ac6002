"""Benchmark of `lenasim design` (issue 25, item 6): 1,000 simulated trials of a 30-patient
design with 6 candidates and 1,000 posterior draws, end to end, and where the time goes.

    python benchmarks/design_bench.py                 # the acceptance case (~2-4 min)
    python benchmarks/design_bench.py --trials 200 --draws 300

Run from the repository root. It writes a copy of configs/design_untreated.yaml with one
truth (new_trial) and the requested trials and draws into a temporary folder, runs
``python -m lenasim design`` on it in a subprocess (startup, posterior, prior, outcomes,
true risks, trials, writing), and prints one JSON line: the wall and CPU time, the time by stage
(from the result's manifest) and, as the reference measured in the same run, the engine
alone simulating one candidate over the same draws and virtual patients (the unit the
prior is made of: the design's prior costs 6 candidates x 2 components of it). Every line
prints the 1-minute load average: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _engine_reference(cfg_path: Path, draws: int) -> float:
    """Seconds for the engine alone: the first candidate, ``draws`` posterior draws x the
    config's virtual patients, new trial effects (one unit of the prior's work)."""
    from lenasim.design.config import load_design
    from lenasim.pipeline.posterior import ensure_posterior
    from lenasim.simulation.engine import simulate
    from lenasim.simulation.streams import select_draws

    cfg = load_design(cfg_path)
    post = ensure_posterior(cfg.posterior.spec)
    idx = select_draws(post.draws.n_draws, draws, cfg.seed)
    sub = post.draws.take(idx)
    sch = cfg.candidates[0].regimen.expand()
    t0 = time.perf_counter()
    simulate(sch, cfg.population, cfg.rules, sub, n_patients=cfg.population.patients,
             seed=cfg.seed, posterior_index=idx)  # fmt: skip
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = yaml.safe_load((REPO / "configs" / "design_untreated.yaml").read_text())
        data.update(truths=["new_trial"], trials=args.trials, output=str(Path(tmp) / "results"))
        data["posterior"]["spec"] = str(REPO / "models" / "default.yaml")
        cfg = Path(tmp) / "design_bench.yaml"
        cfg.write_text(yaml.safe_dump(data, sort_keys=False))
        ref = _engine_reference(cfg, args.draws)
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        t0 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = subprocess.run(
            [sys.executable, "-m", "lenasim", "design", str(cfg), "--draws", str(args.draws),
             "--quiet"], env=env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return 1
        man = json.loads((Path(tmp) / "results" / "design-untreated" / "manifest.json").read_text())
    print(json.dumps({
        "case": f"{args.trials} trials x 30 patients x 6 candidates, {args.draws} draws",
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),  # the subprocess's user + system CPU (all its threads)
        "in_process_s": man["wall_seconds"],
        "seconds_by_stage": man["seconds_by_stage"],
        "engine_reference_s": round(ref, 2),
        "wall_over_reference": round(wall / ref, 1),
        "load_1min": os.getloadavg()[0],
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
