"""The search pipeline: a search config -> candidates on common random numbers -> ranked
within the limits -> results/search-<name>/.

Order of work, so that mistakes fail before anything is computed: validate the config
and the overrides; refuse an existing results folder unless ``overwrite``; expand the
space (an empty one is an error); check the memory the candidates simulated at once need;
validate the Dask address; load the posterior; connect to Dask if asked; estimate the run
time from a short pilot and refuse it above ``time_budget_minutes`` unless ``yes``;
evaluate every candidate; write the folder atomically, with full ``run`` folders (written
by the run pipeline, :func:`lenasim.pipeline.run.write_run`) for the top k and the
references, judged by the search's own limits.
"""

from __future__ import annotations

import hashlib
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lenasim import __version__
from lenasim.core.errors import ConfigError, LenasimError
from lenasim.core.progress import progress_bar
from lenasim.core.writers import check_output_folder
from lenasim.evidence.table import evidence_hash
from lenasim.pipeline.memory import check_simulation_memory
from lenasim.pipeline.posterior import posterior_for
from lenasim.pipeline.run import naming_the_folder, simulate_run, write_run
from lenasim.search.config import MAX_TOP, SearchConfig, load_search
from lenasim.search.evaluate import Cohort
from lenasim.search.execute import (
    check_dask_options,
    cluster_slots,
    dask_client,
    default_batch_size,
    engine_threads,
    estimate_seconds,
    evaluate_in_process,
    evaluate_on_dask,
)
from lenasim.search.refine import refine_undecided
from lenasim.search.results import SearchResult, reference_candidates, tables, write_search
from lenasim.search.space import enumerate_space
from lenasim.simulation.scenario import MAX_PATIENTS, config_hash
from lenasim.simulation.streams import select_draws

__all__ = ["SearchOptions", "load_with_overrides", "run_search", "summary_text"]


@dataclass(frozen=True)
class SearchOptions:
    """The command line's choices for one search."""

    patients: int | None = None
    draws: int | None = None
    results: str | None = None
    top: int | None = None
    dask: str | None = None
    workers: int | None = None
    batch_size: int | None = None
    yes: bool = False
    overwrite: bool = False
    plots: bool = True
    quiet: bool = False
    refit: bool = False


def load_with_overrides(path: Path, opts: SearchOptions) -> SearchConfig:
    """The search config with the command line's overrides, each checked as the config's
    own key would be."""
    for opt in ("patients", "draws", "workers", "batch_size"):
        val = getattr(opts, opt)
        if val is not None and val < 1:
            raise ConfigError(f"--{opt.replace('_', '-')}: must be >= 1 (got {val})")
    if opts.patients is not None and opts.patients > MAX_PATIENTS:
        raise ConfigError(f"--patients: must be <= {MAX_PATIENTS:,} (got {opts.patients:,})")
    if opts.results is not None and str(opts.results).strip() == "":
        raise ConfigError("--results: is empty; give a folder (the config's output is the default)")
    check_dask_options(opts.dask, opts.workers, opts.batch_size)
    cfg = load_search(path)
    update: dict = {}
    if opts.patients is not None:
        update["population"] = cfg.population.model_copy(update={"patients": opts.patients})
    if opts.draws is not None:
        update["posterior"] = cfg.posterior.model_copy(update={"draws": opts.draws})
    if opts.results is not None:
        update["output"] = Path(opts.results)
    if opts.top is not None:
        if not 0 <= opts.top <= MAX_TOP:
            raise ConfigError(f"--top: must be between 0 and {MAX_TOP} (got {opts.top})")
        update["top"] = opts.top
    return cfg.model_copy(update=update)


def run_search(path: str | Path, opts: SearchOptions) -> tuple[SearchConfig, object]:
    """Run a search config end to end; return the config and the ranked table."""
    walls: dict[str, float] = {}
    t0 = time.perf_counter()
    path = Path(path)
    cfg = load_with_overrides(path, opts)
    # Before anything is simulated: only a schedule search's folder may be replaced, and
    # only with --overwrite (lenasim.core.writers).
    try:
        check_output_folder(cfg.out_dir, "search", overwrite=bool(opts.overwrite),
                            hint="change `name:` or `output:`, or pass --results DIR")  # fmt: skip
    except LenasimError as err:
        raise ConfigError(f"{path}: {err}") from None
    space = enumerate_space(cfg, source=str(path))
    cands = list(space.candidates)
    refs = reference_candidates(cfg)
    slots_here = engine_threads(None) if opts.dask is None else 1
    check_simulation_memory(
        str(path),
        patients=cfg.population.patients,
        levels=max(len(c.regimen.levels()) for c in cands + refs),
        cycles=cfg.space.cycles,
        draws=cfg.posterior.draws,
        concurrent=min(slots_here, len(cands) + len(refs)),
        threads=1,
        extra=2048 * (len(cands) + len(refs)),  # a row of the candidates' table each
    )
    say = (lambda *a: None) if opts.quiet else (lambda *a: print(*a, file=sys.stderr))
    say(f"search {cfg.name}: {space.summary()}")
    post = posterior_for(path, cfg.posterior.spec, cfg.posterior.draws, refit=opts.refit,
                         quiet=opts.quiet)  # fmt: skip
    index = select_draws(post.draws.n_draws, cfg.posterior.draws, cfg.seed)
    cohort = Cohort(post.draws.take(index), index)
    walls["prepare_s"] = time.perf_counter() - t0

    with dask_client(opts.dask, opts.workers) if opts.dask else nullcontext() as client:
        t1 = time.perf_counter()
        slots = cluster_slots(client, opts.dask) if client is not None else engine_threads(None)
        est = estimate_seconds(cfg, cands + refs, cohort, slots=slots)
        walls["estimate_s"] = time.perf_counter() - t1
        size = (f"{len(cands) + len(refs)} schedules x {cfg.posterior.draws} draws x "
                f"{cfg.population.patients} patients x {cfg.space.cycles} cycles")  # fmt: skip
        local = opts.dask in (None, "local")
        say(f"search {cfg.name}: {size}; {est.describe(local)}")
        budget = cfg.time_budget_minutes * 60
        if est.seconds > budget and not opts.yes:
            raise LenasimError(
                f"{path}: time_budget_minutes: the search ({size}) is estimated to take "
                f"{est.seconds / 60:.1f} min, above the budget of {cfg.time_budget_minutes:g} "
                "min. Narrow the space, lower posterior.draws or population.patients, raise "
                "time_budget_minutes, run it on a cluster (--dask), or pass --yes"
            )
        t2 = time.perf_counter()
        bar = progress_bar(len(cands) + len(refs), "search", "schedule", show=not opts.quiet)
        step = None if bar is None else bar.update
        try:
            if client is None:
                rows = evaluate_in_process(cfg, cands + refs, cohort, progress=step)
                execution = {"dask": None, "threads": slots}
            else:
                batch = opts.batch_size or default_batch_size(len(cands) + len(refs), slots)
                rows = evaluate_on_dask(client, cfg, cands + refs, cohort, batch_size=batch,
                                        progress=step, address=opts.dask,
                                        deadline=max(600.0, 20 * est.seconds))  # fmt: skip
                execution = {"dask": opts.dask, "slots": slots, "batch_size": batch}
        finally:
            if bar is not None:
                bar.close()
        walls["evaluate_s"] = time.perf_counter() - t2
        rows, refinement = _refine(cfg, cands + refs, rows, post, client, execution, opts,
                                   budget - (time.perf_counter() - t0))  # fmt: skip
        say(f"search {cfg.name}: {refinement.describe()}")
        walls["refine_s"] = time.perf_counter() - t2 - walls["evaluate_s"]
        execution["refinement"] = refinement.describe()

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

    def write_one(scenario, out_dir: Path):

        res = simulate_run(scenario, post)
        write_run(res, out_dir, config_file=path, overwrite=False, plots=opts.plots)
        return res.ds

    with naming_the_folder(cfg.out_dir):
        write_search(result, cfg.out_dir, write_run=write_one if cfg.top else None,
                     overwrite=opts.overwrite, plots=opts.plots)  # fmt: skip
    return cfg, table


def _refine(cfg: SearchConfig, cands, rows, post, client, execution, opts, seconds_left):
    """Undecided verdicts re-evaluated on more draws (lenasim.search.refine)."""

    def evaluate(subset, cohort):
        if client is None:
            return evaluate_in_process(cfg, subset, cohort)
        return evaluate_on_dask(client, cfg, subset, cohort,
                                batch_size=execution.get("batch_size"), address=opts.dask)  # fmt: skip

    return refine_undecided(cands, rows, post.draws, cfg.posterior.draws, cfg.seed, evaluate,
                            seconds_left=max(0.0, seconds_left))  # fmt: skip


def summary_text(table, cfg: SearchConfig) -> str:
    """The search's result in a few lines: how many schedules passed, the best five."""
    ok = table[table["feasible"]]
    head = (f"search {cfg.name}: {len(ok)} of {len(table)} schedules within every limit "
            f"-> {cfg.out_dir}")  # fmt: skip
    shown = ok.head(5) if len(ok) else table.head(5)
    lines = [head, "best:" if len(ok) else "none within the limits; closest:"]
    for _, r in shown.iterrows():
        days = "not reached" if np.isnan(r["days_to_target"]) else f"{r['days_to_target']:g} d"
        lines.append(f"  {r['rank']:>3}  {r['id']}  {days:>11}  {r['schedule']}")
    return "\n".join(lines)
