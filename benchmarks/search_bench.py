"""Benchmark of `lenasim search`: its overhead over the engine, and the shipped searches end
to end.

    python benchmarks/search_bench.py                        # both sections (~10-15 min)
    python benchmarks/search_bench.py --only overhead --candidates 40
    python benchmarks/search_bench.py --only e2e --config configs/search_relapsed.yaml

Run from the repository root. Sections:

- ``overhead``: in one process, on the same posterior draws and the same candidates (every
  k-th schedule of the space, so every kind of schedule is in), the engine alone
  (``simulate`` on each expanded schedule, as many at once as the search runs, one
  thread each) against the search's evaluation of the same candidates (scenario, engine,
  summaries, limits, objectives),
  alternated ``--repeat`` times; the overhead is search / engine - 1 (the best wall and
  the best CPU time of each over the repeats). For information, the engine one candidate
  at a time with its draws split over the threads (how ``run`` uses it). Then the writing of the results folder for those candidates
  (CSV, pareto.png, report, run folders of the top 3 and the references), in seconds
  and per candidate of the full space.
- ``e2e``: ``python -m lenasim search CONFIG --yes --quiet`` in a subprocess, timed, with
  the time estimated before it started (from the manifest). The search needs an
  up-to-date posterior: the shipped ``models/default.nc`` is copied into a temporary
  folder and stamped current (its draws unchanged), for timing only; its numbers are
  not results.

Every line prints the 1-minute load average: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = (ROOT / "configs" / "search_untreated.yaml", ROOT / "configs" / "search_relapsed.yaml")
TARGET_S = 300.0  # the issue: the shipped searches in under 5 minutes on this machine
MAX_OVERHEAD = 0.15


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def _setup(config: Path, n_candidates: int):
    from lenasim.commands.run import select_draws
    from lenasim.model.posterior import load_posterior
    from lenasim.search.config import load_search
    from lenasim.search.evaluate import Cohort
    from lenasim.search.space import enumerate_space

    cfg = load_search(config)
    post = load_posterior(ROOT / "models" / "default.nc", check=False)
    idx = select_draws(post.draws.n_draws, cfg.posterior.draws, cfg.seed)
    space = enumerate_space(cfg)
    step = max(1, len(space.candidates) // n_candidates)
    cands = list(space.candidates[::step])[:n_candidates]
    return cfg, post, Cohort(post.draws.take(idx), idx), space, cands


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def overhead(config: Path, n_candidates: int, repeat: int) -> dict:
    from lenasim.search.execute import engine_threads, evaluate_in_process
    from lenasim.search.results import SearchResult, tables, write_search
    from lenasim.search.space import candidate_scenario
    from lenasim.simulation.engine import simulate

    cfg, post, cohort, space, cands = _setup(config, n_candidates)
    scenarios = [candidate_scenario(cfg, c) for c in cands]
    schedules = [sc.regimen.expand() for sc in scenarios]

    n_threads = engine_threads(None)

    def one(i: int, threads: int) -> None:
        sc, schedule = scenarios[i], schedules[i]
        simulate(schedule, sc.population, sc.rules, cohort.draws,
                 n_patients=sc.population.patients, seed=sc.seed,
                 population_effect=sc.population_effect,
                 posterior_index=cohort.posterior_index, threads=threads)  # fmt: skip

    def engine() -> None:  # as the search schedules it: n candidates at once, 1 thread each
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(lambda i: one(i, 1), range(len(cands))))

    def engine_split() -> None:  # one candidate at a time, its draws over the threads
        for i in range(len(cands)):
            one(i, n_threads)

    rows: list[dict] = []

    def search() -> None:
        rows[:] = evaluate_in_process(cfg, cands, cohort)

    # warm up both paths (imports, thread pool) on one candidate
    evaluate_in_process(cfg, cands[:1], type(cohort)(cohort.draws.take(slice(0, 2)),
                                                     cohort.posterior_index[:2]))  # fmt: skip
    best = {k: (np.inf, np.inf) for k in ("engine", "search", "engine_split")}
    for r in range(repeat):
        order = (("engine", engine), ("search", search), ("engine_split", engine_split))
        for name, fn in order[:: 1 if r % 2 == 0 else -1]:
            t = _timed(fn)
            print(f"  repeat {r + 1}: {name:12s} {t[0]:7.2f} s wall {t[1]:7.2f} s CPU  ({load()})")
            best[name] = (min(best[name][0], t[0]), min(best[name][1], t[1]))
    (ew, ec), (sw, sc_) = best["engine"], best["search"]
    table, refs = tables(cfg, rows, [])
    result = SearchResult(cfg=cfg, config_path=config, space=space, table=table,
                          references=refs, posterior={"path": str(post.path), "converged": True},
                          execution={"dask": None}, manifest={})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        from lenasim.commands.run import Job, run_job

        def write_run(scenario, out_dir):
            job = Job(path=config, scenario=scenario, out_dir=out_dir)
            return run_job(job, post, overwrite=False, plots=True, quiet=True)

        w0 = time.perf_counter()
        write_search(result, Path(tmp) / "out", write_run=write_run, overwrite=False)
        write_s = time.perf_counter() - w0
    n_full = len(space.candidates)
    out = {
        "config": config.name,
        "candidates": len(cands),
        "draws": cohort.draws.n_draws,
        "patients": cfg.population.patients,
        "engine_wall_s": ew,
        "search_wall_s": sw,
        "engine_cpu_s": ec,
        "search_cpu_s": sc_,
        "overhead_wall": sw / ew - 1,
        "overhead_cpu": sc_ / ec - 1,
        "engine_split_wall_s": best["engine_split"][0],
        "threads": n_threads,
        "write_s": write_s,
        "write_share_of_full_search": write_s / (sw * n_full / len(cands)),
    }
    print(
        f"overhead: {len(cands)} of {n_full} schedules x {out['draws']} draws x "
        f"{out['patients']} patients: engine {ew:.2f} s, search {sw:.2f} s wall -> "
        f"{100 * out['overhead_wall']:+.1f}% (CPU {100 * out['overhead_cpu']:+.1f}%); target "
        f"<= {100 * MAX_OVERHEAD:.0f}%. Writing the folder (top 3 run folders with plots): "
        f"{write_s:.1f} s = {100 * out['write_share_of_full_search']:.1f}% of the full "
        f"search's evaluation. The engine one candidate at a time on {n_threads} threads: "
        f"{best['engine_split'][0]:.2f} s ({load()})"
    )
    return out


def _current_posterior(workdir: Path) -> None:
    """The shipped posterior's draws, stamped current against this checkout (timing only)."""
    from lenasim.evidence.table import evidence_hash
    from lenasim.model.posterior import load_posterior, write_posterior
    from lenasim.model.spec import load_spec

    (workdir / "models").mkdir()
    spec = workdir / "models" / "default.yaml"
    shutil.copy(ROOT / "models" / "default.yaml", spec)
    post = load_posterior(ROOT / "models" / "default.nc", check=False)
    attrs = dict(post.attrs) | {"evidence_hash": evidence_hash(),
                                "spec_hash": load_spec(spec).hash(), "converged": 1}  # fmt: skip
    write_posterior(workdir / "models" / "default.nc", post.draws, attrs)


def e2e(config: Path, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _current_posterior(work)
        cmd = [sys.executable, "-m", "lenasim", "search", str(config), "--yes", "--quiet",
               "--results", "out", *extra]  # fmt: skip
        before = load()
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr}")
        folder = next((work / "out").glob("search-*"))
        manifest = json.loads((folder / "manifest.json").read_text())
    out = {"config": config.name, "args": extra, "wall_s": wall,
           "estimate_s": manifest["estimate_s"], "phases_s": manifest["wall_seconds"],
           "candidates": manifest["space"]["candidates"]}  # fmt: skip
    ok = "yes" if wall < TARGET_S else "NO"
    print(
        f"e2e {config.name} {' '.join(extra)}: {out['candidates']} schedules in {wall:.0f} s "
        f"(target < {TARGET_S:.0f} s: {ok}); estimated {out['estimate_s']:.0f} s; phases "
        f"{manifest['wall_seconds']} ({before} -> {load()})"
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="overhead,e2e")
    p.add_argument("--config", default=None, help="one search config (default: both shipped)")
    p.add_argument("--candidates", type=int, default=40, help="candidates in the overhead run")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--dask", default=None, help="also time e2e with --dask ADDRESS")
    p.add_argument("--json", default=None, help="write the measurements here")
    args = p.parse_args()
    configs = [Path(args.config).resolve()] if args.config else list(CONFIGS)
    only = set(args.only.split(","))
    results: dict[str, list] = {"overhead": [], "e2e": []}
    print(f"search benchmark, {os.cpu_count()} CPUs ({load()})")
    if "overhead" in only:
        results["overhead"].append(overhead(configs[0], args.candidates, args.repeat))
    if "e2e" in only:
        for config in configs:
            results["e2e"].append(e2e(config, []))
            if args.dask:
                results["e2e"].append(e2e(config, ["--dask", args.dask]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
