"""`python -m lenasim search CONFIG`: many candidate schedules on common random numbers,
kept within risk limits, ranked, written to results/search-<name>/.

Order of work, so that mistakes fail before anything is computed: validate the config
and the overrides; refuse an existing results folder unless ``--overwrite``; expand the
space (an empty one is an error); load the posterior; connect to Dask if asked; estimate
the run time from a short pilot and refuse it above ``time_budget_minutes`` unless
``--yes``; evaluate every candidate; write the folder atomically, with full ``run``
folders (written by ``lenasim run``'s own writer) for the top k and the references.
"""

from __future__ import annotations

import hashlib
import sys
import time
from argparse import Namespace
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lenasim import __version__
from lenasim.commands.run import Job, ensure_posterior, run_job, select_draws
from lenasim.core.errors import ConfigError, LenasimError
from lenasim.evidence.table import evidence_hash
from lenasim.outputs.writers import check_output_folder
from lenasim.search.config import SearchConfig, load_search
from lenasim.search.evaluate import Cohort
from lenasim.search.execute import (
    dask_client,
    default_batch_size,
    engine_threads,
    estimate_seconds,
    evaluate_in_process,
    evaluate_on_dask,
)
from lenasim.search.results import SearchResult, reference_candidates, tables, write_search
from lenasim.search.space import enumerate_space
from lenasim.simulation.scenario import config_hash

__all__ = ["cmd_search"]


def _overrides(cfg: SearchConfig, args: Namespace) -> SearchConfig:
    for opt in ("patients", "draws", "workers", "batch_size"):
        val = getattr(args, opt, None)
        if val is not None and val < 1:
            raise ConfigError(f"--{opt.replace('_', '-')}: must be >= 1 (got {val})")
    update: dict = {}
    if args.patients is not None:
        update["population"] = cfg.population.model_copy(update={"patients": args.patients})
    if args.draws is not None:
        update["posterior"] = cfg.posterior.model_copy(update={"draws": args.draws})
    if args.results is not None:
        update["output"] = Path(args.results)
    if args.top is not None:
        if not 0 <= args.top <= 50:
            raise ConfigError(f"--top: must be between 0 and 50 (got {args.top})")
        update["top"] = args.top
    return cfg.model_copy(update=update)


def _posterior(path: Path, cfg: SearchConfig, refit: bool, quiet: bool):
    spec = cfg.posterior.spec
    if not spec.is_file():
        raise ConfigError(
            f"{path}: posterior.spec: model spec {spec} not found (a path written in a config "
            "is relative to the config file's folder; without one, the model shipped with "
            "lenasim is used)"
        )
    post = ensure_posterior(spec, refit=refit, quiet=quiet)
    if cfg.posterior.draws > post.draws.n_draws:
        raise ConfigError(
            f"{path}: posterior.draws: {cfg.posterior.draws} draws requested but {post.path} "
            f"has {post.draws.n_draws}; ask for at most {post.draws.n_draws}"
        )
    return post


def _bar(total: int, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="search", unit="schedule", file=sys.stderr)


def cmd_search(args: Namespace) -> int:
    """Handler of `python -m lenasim search` (see cli.py for the options)."""
    walls: dict[str, float] = {}
    t0 = time.perf_counter()
    path = Path(args.config)
    cfg = _overrides(load_search(path), args)
    # Before anything is simulated: only a schedule search's folder may be replaced, and
    # only with --overwrite (lenasim.outputs.writers).
    try:
        check_output_folder(cfg.out_dir, "search", overwrite=bool(args.overwrite),
                            hint="change `name:` or `output:`, or pass --results DIR")  # fmt: skip
    except LenasimError as err:
        raise ConfigError(f"{path}: {err}") from None
    if args.dask is None and (args.workers is not None or args.batch_size is not None):
        raise ConfigError("--workers and --batch-size apply to --dask only")
    space = enumerate_space(cfg, source=str(path))
    cands = list(space.candidates)
    refs = reference_candidates(cfg)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    say(f"search {cfg.name}: {space.summary()}")
    post = _posterior(path, cfg, refit=bool(args.refit), quiet=args.quiet)
    index = select_draws(post.draws.n_draws, cfg.posterior.draws, cfg.seed)
    cohort = Cohort(post.draws.take(index), index)
    walls["prepare_s"] = time.perf_counter() - t0

    with dask_client(args.dask, args.workers) if args.dask else nullcontext() as client:
        t1 = time.perf_counter()
        slots = sum(client.nthreads().values()) if client is not None else engine_threads(None)
        est = estimate_seconds(cfg, cands + refs, cohort, slots=slots)
        walls["estimate_s"] = time.perf_counter() - t1
        size = (f"{len(cands) + len(refs)} schedules x {cfg.posterior.draws} draws x "
                f"{cfg.population.patients} patients x {cfg.space.cycles} cycles")  # fmt: skip
        local = args.dask in (None, "local")
        say(f"search {cfg.name}: {size}; {est.describe(local)}")
        budget = cfg.time_budget_minutes * 60
        if est.seconds > budget and not args.yes:
            raise LenasimError(
                f"{path}: time_budget_minutes: the search ({size}) is estimated to take "
                f"{est.seconds / 60:.1f} min, above the budget of {cfg.time_budget_minutes:g} "
                "min. Narrow the space, lower posterior.draws or population.patients, raise "
                "time_budget_minutes, run it on a cluster (--dask), or pass --yes"
            )
        t2 = time.perf_counter()
        bar = _bar(len(cands) + len(refs), args.quiet)
        step = None if bar is None else bar.update
        try:
            if client is None:
                rows = evaluate_in_process(cfg, cands + refs, cohort, progress=step)
                execution = {"dask": None, "threads": slots}
            else:
                batch = args.batch_size or default_batch_size(len(cands) + len(refs), slots)
                rows = evaluate_on_dask(client, cfg, cands + refs, cohort, batch_size=batch,
                                        progress=step)  # fmt: skip
                execution = {"dask": args.dask, "slots": slots, "batch_size": batch}
        finally:
            if bar is not None:
                bar.close()
        walls["evaluate_s"] = time.perf_counter() - t2

    table, references = tables(cfg, rows[: len(cands)], rows[len(cands) :])
    manifest = {
        "name": cfg.name,
        "config_file": str(path),
        "config": cfg.model_dump(mode="json"),
        "hashes": {
            "config": config_hash(path),
            "evidence": evidence_hash(),
            "posterior": post.hash,
            "posterior_index": hashlib.sha256(index.astype("<i8").tobytes()).hexdigest(),
        },
        "seed": cfg.seed,
        "space": {
            "candidates": len(cands),
            "combinations": space.combinations,
            "duplicates": space.duplicates,
            "skipped": space.skipped,
        },  # fmt: skip
        "execution": execution,
        "estimate_s": round(est.seconds, 2),
        "wall_seconds": {k: round(v, 3) for k, v in walls.items()},
        "versions": {
            "lenasim": __version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },  # fmt: skip
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
    }
    result = SearchResult(
        cfg=cfg, config_path=path, space=space, table=table, references=references,
        posterior={"path": str(post.path), "converged": post.converged},
        execution=execution, manifest=manifest,
    )  # fmt: skip

    def write_run(scenario, out_dir: Path):
        job = Job(path=path, scenario=scenario, out_dir=out_dir)
        return run_job(job, post, overwrite=False, plots=not args.no_plots, quiet=True).ds

    write_search(result, cfg.out_dir, write_run=write_run if cfg.top else None,
                 overwrite=args.overwrite, plots=not args.no_plots)  # fmt: skip
    if not args.quiet:
        print(_summary(table, cfg))
    return 0


def _summary(table, cfg: SearchConfig) -> str:
    ok = table[table["feasible"]]
    head = (f"search {cfg.name}: {len(ok)} of {len(table)} schedules within every limit "
            f"-> {cfg.out_dir}")  # fmt: skip
    shown = ok.head(5) if len(ok) else table.head(5)
    lines = [head, "best:" if len(ok) else "none within the limits; closest:"]
    for _, r in shown.iterrows():
        days = "not reached" if np.isnan(r["days_to_target"]) else f"{r['days_to_target']:g} d"
        lines.append(f"  {r['rank']:>3}  {r['id']}  {days:>11}  {r['schedule']}")
    return "\n".join(lines)
