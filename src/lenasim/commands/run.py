"""`python -m lenasim run`: configs -> posterior -> simulation -> results/<name>/.

Order of work, so that mistakes fail before anything is computed:

1. load and validate every config (and the command-line overrides, ``LENASIM_THREADS``);
2. check every output folder (results, and the comparison of ``run A B``): refuse what is
   not a lenasim result of the same kind, and existing results unless ``--overwrite``
   (:mod:`lenasim.outputs.writers`); refuse a cohort too large for the memory;
3. load each posterior once (fitting it first, with a message, if missing or stale)
   and check the draws requested are available;
4. per scenario: simulate; judge the risk limits, predict the mirrored trial's figures
   and gather the caveats (validation, prior-dominated terms, prior sensitivity); write
   every file into a temporary sibling folder (``results/.<name>.partial-*``), then
   rename it into place. An interrupted run leaves no half-written ``results/<name>/``.

With a fitted posterior in place this module imports neither PyMC nor PyTensor.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import sys
import time
from argparse import Namespace
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lenasim import __version__
from lenasim.core.errors import ConfigError, LenasimError, PosteriorError
from lenasim.outputs.netcdf import write_dataset
from lenasim.outputs.writers import check_output_folder, write_atomically
from lenasim.simulation.scenario import (
    MAX_PATIENTS,
    Scenario,
    config_hash,
    env_threads,
    load_scenario,
)
from lenasim.simulation.streams import select_draws

__all__ = ["Job", "RunResult", "cmd_run", "ensure_posterior", "prepare_jobs", "run_job"]


@dataclass
class Job:
    """One scenario to run: the validated config and where its results go."""

    path: Path
    scenario: Scenario
    out_dir: Path


@dataclass
class RunResult:
    """What a run computed: the draws dataset and the tables printed and written with it."""

    ds: object  # xarray.Dataset (draws.nc)
    limits: object  # pandas.DataFrame (limits.csv)
    bands: object  # pandas.DataFrame (bands.csv)
    mirrored: object | None  # pandas.DataFrame (mirrored.csv), None without `mirrors`
    mirror_skipped: int
    caveats: object  # lenasim.outputs.caveats.Caveats (caveats.json)


_RUN_HINT = "change `name:` or `output:` in the config, or pass --results DIR"


def prepare_jobs(args: Namespace) -> list[Job]:
    """Load and validate all configs and overrides; check every output folder and the
    memory a cohort needs (all before any posterior is loaded or anything simulated)."""
    for opt, top in (("patients", MAX_PATIENTS), ("draws", None)):
        val = getattr(args, opt, None)
        if val is not None and val < 1:
            raise ConfigError(f"--{opt}: must be >= 1 (got {val})")
        if val is not None and top is not None and val > top:
            raise ConfigError(f"--{opt}: must be <= {top:,} (got {val:,})")
    env_threads()  # a bad LENASIM_THREADS is an error now, not after the first simulation
    jobs: list[Job] = []
    for p in args.configs:
        path = Path(p)
        sc = load_scenario(path)
        update: dict = {}
        if args.patients is not None:
            update["population"] = sc.population.model_copy(update={"patients": args.patients})
        if args.draws is not None:
            update["posterior"] = sc.posterior.model_copy(update={"draws": args.draws})
        if args.results is not None:
            update["output"] = Path(args.results)
        sc = sc.model_copy(update=update)
        jobs.append(Job(path=path, scenario=sc, out_dir=sc.output / sc.name))
    seen: dict[Path, Path] = {}
    for job in jobs:
        key = job.out_dir.resolve()
        if key in seen:
            raise ConfigError(
                f"{job.path}: name: '{job.scenario.name}' is also the name of {seen[key]}; "
                "both would write to the same results folder"
            )
        seen[key] = job.path
        try:
            check_output_folder(job.out_dir, "run", overwrite=args.overwrite, hint=_RUN_HINT)
        except LenasimError as err:
            raise ConfigError(f"{job.path}: {err}") from None
        _check_memory(job)
    if len(jobs) > 1:
        from lenasim.outputs.comparison import default_out_dir

        out = default_out_dir([j.out_dir for j in jobs], [j.scenario.name for j in jobs])
        check_output_folder(out, "comparison", overwrite=args.overwrite,
                            hint="run the scenarios one by one and compare them with "
                            "`python -m lenasim compare A B --out DIR`")  # fmt: skip
    return jobs


def available_memory() -> int | None:
    """Bytes of memory this process may still use: the kernel's MemAvailable, or the
    room left under a cgroup (container) limit if smaller; None if unknown."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            return None
    return min(found)


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def _check_memory(job: Job) -> None:
    """Refuse a scenario whose simulation would not fit in memory, with the estimate
    and what to change."""
    from lenasim.simulation.engine import memory_estimate

    sc = job.scenario
    n, n_levels = sc.population.patients, len(sc.regimen.levels())
    need = memory_estimate(n_levels, sc.regimen.cycles, n, sc.posterior.draws)
    free = available_memory()
    total = need["patients"] + need["tables"] + need["outputs"]
    if free is None or total <= free:
        return
    head = f"{job.path}: the simulation needs about {_gb(total)} of memory at once"
    tail = f"this machine has {_gb(free)} available"
    if need["patients"] >= need["tables"]:
        threads = need["threads"]
        per = need["patients"] / n
        fit = max(1, int((free - need["tables"] - need["outputs"]) // per))
        cohorts = f"{threads} threads each hold a cohort of " if threads > 1 else ""
        fewer = ", or fewer threads (LENASIM_THREADS=1)" if threads > 1 else ""
        raise ConfigError(
            f"{head} ({_gb(need['patients'])}: {cohorts}{n:,} patients, "
            f"{per / threads:.0f} bytes a patient); {tail}. population.patients: use fewer "
            f"patients (at most about {fit:,} here) or --patients N{fewer}; the posterior "
            "draws are simulated in chunks and add little"
        )
    raise ConfigError(
        f"{head} ({_gb(need['tables'])} for the state tables of {n_levels} dose levels over "
        f"{sc.regimen.cycles} cycles); {tail}. regimen: use fewer dose levels (a larger "
        "escalation step) or fewer cycles"
    )


def _load_posteriors(jobs: list[Job], quiet: bool, refit: bool = False) -> dict[Path, object]:
    """One posterior per distinct spec; check the draws requested are available."""
    posts: dict[Path, object] = {}
    for job in jobs:
        spec = job.scenario.posterior.spec
        if not spec.is_file():
            raise ConfigError(
                f"{job.path}: posterior.spec: model spec {spec} not found (a path written in "
                "a config is relative to the config file's folder; without one, the model "
                "shipped with lenasim is used)"
            )
        key = spec.resolve()
        if key not in posts:
            try:
                posts[key] = ensure_posterior(spec, refit=refit, quiet=quiet)
            except PosteriorError as err:
                raise PosteriorError(f"{job.path}: posterior.spec: {err}") from err
        available = posts[key].draws.n_draws
        want = job.scenario.posterior.draws
        if want > available:
            raise ConfigError(
                f"{job.path}: posterior.draws: {want} draws requested but the posterior "
                f"{posts[key].path} has {available}; ask for at most {available}"
            )
    return posts


def cmd_run(args: Namespace) -> int:
    """Handler of `python -m lenasim run` (see cli.py for the options)."""
    t0 = time.perf_counter()
    jobs = prepare_jobs(args)
    posts = _load_posteriors(jobs, quiet=args.quiet, refit=bool(getattr(args, "refit", False)))
    t_load = time.perf_counter() - t0
    for job in jobs:
        post = posts[job.scenario.posterior.spec.resolve()]
        res = run_job(job, post, overwrite=args.overwrite, plots=not args.no_plots,
                      quiet=args.quiet, t_load=t_load)  # fmt: skip
        print(_terminal_text(job, res))
        print()
    if len(jobs) > 1:
        from lenasim.outputs.comparison import compare_runs, default_out_dir

        dirs = [j.out_dir for j in jobs]
        compare_runs(
            dirs,
            default_out_dir(dirs, [j.scenario.name for j in jobs]),
            overwrite=args.overwrite,
            quiet=args.quiet,
        )
    return 0


def _terminal_text(job: Job, res: RunResult) -> str:
    """The compact table, the caveats under it, the decision table, the mirrored trial."""
    from lenasim.outputs.caveats import format_caveats
    from lenasim.outputs.decision import format_bands, format_limits
    from lenasim.outputs.mirror import format_mirrored
    from lenasim.outputs.summaries import compact_table, format_compact

    sc = job.scenario
    title = (f"{sc.name}: {sc.regimen.describe()}\n"
             f"{sc.population.patients} patients x {sc.posterior.draws} draws -> {job.out_dir}")  # fmt: skip
    parts = [
        format_compact(compact_table(res.ds), title),
        format_caveats(res.caveats),
        "",
        format_limits(res.limits, sc.limits.max_probability),
        format_bands(res.bands),
    ]
    if res.mirrored is not None:
        parts += ["", format_mirrored(res.mirrored, sc.mirrors, res.mirror_skipped)]
    return "\n".join(parts)


def run_job(
    job: Job, post, *, overwrite: bool, plots: bool, quiet: bool, t_load: float = 0.0
) -> RunResult:
    """Simulate one scenario over a loaded posterior, judge it and write its results folder."""
    from lenasim.outputs.caveats import collect_caveats
    from lenasim.outputs.decision import bands_table, limits_table
    from lenasim.outputs.mirror import mirrored_rows
    from lenasim.simulation.engine import simulate_scenario

    sc = job.scenario
    index = select_draws(post.draws.n_draws, sc.posterior.draws, sc.seed)
    draws = post.draws.take(index)
    t0 = time.perf_counter()
    bar = _progress_bar(sc.name, index.size, quiet)
    try:
        ds = simulate_scenario(sc, draws, posterior_index=index,
                               progress=None if bar is None else bar.update)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    spec = sc.posterior.spec
    mirrored, skipped = (
        mirrored_rows(sc.mirrors, draws, spec, seed=sc.seed) if sc.mirrors else (None, 0)
    )
    res = RunResult(ds=ds, limits=limits_table(ds, sc.limits), bands=bands_table(ds),
                    mirrored=mirrored, mirror_skipped=skipped,
                    caveats=collect_caveats(sc, post, spec))  # fmt: skip
    t_judge = time.perf_counter() - t0

    def build(tmp: Path) -> None:
        t1 = time.perf_counter()
        _write_tables(ds, tmp)
        _write_decision(res, tmp)
        walls = {"load_s": t_load, "simulate_s": t_sim, "judge_s": t_judge,
                 "write_s": time.perf_counter() - t1}  # fmt: skip
        _write_manifest(job, post, index, tmp, walls)
        if plots:
            from lenasim.outputs.figures import scenario_plots
            from lenasim.outputs.report import run_report

            t2 = time.perf_counter()
            scenario_plots(ds, tmp)
            run_report(tmp, ds=ds)
            walls["plots_s"] = time.perf_counter() - t2
            _write_manifest(job, post, index, tmp, walls)

    write_atomically(job.out_dir, build, kind="run", overwrite=overwrite, hint=_RUN_HINT)
    return res


def _write_decision(res: RunResult, out: Path) -> None:
    """limits.csv, bands.csv, mirrored.csv (with `mirrors`) and caveats.json."""
    res.limits.to_csv(out / "limits.csv", index=False)
    res.bands.to_csv(out / "bands.csv", index=False)
    if res.mirrored is not None:
        res.mirrored.to_csv(out / "mirrored.csv", index=False)
    caveats = res.caveats.to_json() | {"mirror_skipped": res.mirror_skipped}
    (out / "caveats.json").write_text(json.dumps(caveats, indent=2, default=float) + "\n")


def _progress_bar(name: str, total: int, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="draw", file=sys.stderr, leave=False)


def _write_tables(ds, out: Path) -> None:
    from lenasim.outputs.summaries import cumulative_table, dose_table, per_cycle_table

    per_cycle_table(ds).to_csv(out / "per_cycle.csv", index=False)
    cumulative_table(ds).to_csv(out / "cumulative.csv", index=False)
    dose_table(ds).to_csv(out / "dose.csv", index=False)
    write_dataset(ds, out / "draws.nc")  # as ds.to_netcdf(engine="h5netcdf") writes it, faster


@functools.cache
def _version(module: str) -> str:
    """The version of a module the run used (or, if it was not imported, of its
    installed distribution), without importing it."""
    mod = sys.modules.get(module)
    if mod is not None and isinstance(getattr(mod, "__version__", None), str):
        return mod.__version__
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def _write_manifest(job: Job, post, index: np.ndarray, out: Path, walls: dict) -> None:
    from lenasim.evidence.table import evidence_hash

    sc = job.scenario
    manifest = {
        "lenasim_result": "run",  # what lets --overwrite replace this folder (writers.py)
        "name": sc.name,
        "config_file": str(job.path),
        "config": sc.model_dump(mode="json"),
        "regimen_text": sc.regimen.describe(),
        "hashes": {
            "config": config_hash(job.path),
            "evidence": evidence_hash(),
            "posterior": post.hash,
            "posterior_index": hashlib.sha256(index.astype("<i8").tobytes()).hexdigest(),
        },
        "posterior": {
            "path": str(post.path),
            "converged": bool(post.converged),
            "n_draws_available": int(post.draws.n_draws),
        },
        "posterior_attrs": {k: _jsonable(v) for k, v in post.attrs.items() if k != "spec"},
        "seed": sc.seed,
        "n_patients": sc.population.patients,
        "n_draws": int(index.size),
        "population_effect": sc.population_effect,
        "versions": {
            "lenasim": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": _version("scipy"),
            "pandas": _version("pandas"),
            "xarray": _version("xarray"),
        },
        "wall_seconds": {k: round(v, 3) for k, v in walls.items()},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _jsonable(v):
    """Posterior attrs as JSON values (numpy scalars -> Python; JSON strings parsed)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def ensure_posterior(spec_path: str | Path, *, refit: bool = False, quiet: bool = False):
    """The spec's fitted posterior. A missing or stale one is an error that names the
    reason and the fit command; with ``refit`` it is fitted first (this imports PyMC and
    takes minutes, so it happens only when asked)."""
    from lenasim.model.posterior import load_posterior
    from lenasim.model.spec import posterior_path

    nc = posterior_path(spec_path)
    try:
        post = load_posterior(nc, spec_path)
    except PosteriorError as err:
        if not refit or not Path(spec_path).exists():
            raise PosteriorError(
                f"{err}. Or pass --refit to fit it before running (a few minutes)"
            ) from err
        print(
            f"lenasim: {err}\nlenasim: --refit: fitting {spec_path} now (a few minutes)...",
            file=sys.stderr,
        )
        from lenasim.model.fit import fit_spec

        fit_spec(spec_path, quiet=quiet)
        post = load_posterior(nc, spec_path)
    if not post.converged:
        print(
            f"lenasim: warning: {nc} was saved with --allow-unconverged; its diagnostics "
            "failed the gate, treat results as provisional",
            file=sys.stderr,
        )
    return post
