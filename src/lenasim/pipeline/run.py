"""The run pipeline: configs -> posterior -> simulation -> judgement -> results/<name>/.

Order of work, so that mistakes fail before anything is computed:

1. load and validate every config (and the command-line overrides, ``LENASIM_THREADS``);
2. check every output folder (results, and the comparison of ``run A B``): refuse what is
   not a lenasim result of the same kind, and existing results unless ``overwrite``
   (:mod:`lenasim.core.writers`); refuse a cohort too large for the memory
   (:mod:`lenasim.pipeline.memory`);
3. load each posterior once (:mod:`lenasim.pipeline.posterior`) and check the draws
   requested are available;
4. per scenario: simulate, judge the risk limits, predict the mirrored trial's figures and
   gather the caveats, all in memory (:func:`simulate_run`); then write every file into a
   temporary sibling folder and rename it into place (:func:`write_run`; the manifest:
   :mod:`lenasim.pipeline.manifest`). An interrupted run leaves no half-written
   ``results/<name>/``. On the command line (:func:`run_job`) the figures are drawn by a
   child process while the rest is computed and written (:mod:`lenasim.pipeline.plots`).

Other callers (the search's run folders, a web explorer) use :func:`simulate_run` with a
validated :class:`~lenasim.simulation.scenario.Scenario` (or a config mapping, through
:func:`scenario_from`) and get the result in memory; writing it is a separate step.

With a fitted posterior in place this module imports neither PyMC nor PyTensor; its tables
(limits, bands, per-cycle, cumulative, dose) are NumPy columns
(:class:`lenasim.outputs.tables.frame.Columns`, written as pandas writes them): a run
whose population has no ``characteristics`` imports pandas only where the evidence stage
does (the mirrored trial, the report's evidence section).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenasim.core.errors import ConfigError, LenasimError
from lenasim.core.progress import progress_bar
from lenasim.core.writers import check_output_folder, write_atomically
from lenasim.outputs.judgements.caveats import collect_caveats, format_caveats
from lenasim.outputs.judgements.decision import (
    band_columns,
    decision_rows,
    format_bands,
    format_limits,
)
from lenasim.outputs.judgements.mirror import format_mirrored, mirrored_rows
from lenasim.outputs.judgements.tipping import format_tipping, with_tipping
from lenasim.outputs.tables.netcdf import write_dataset
from lenasim.outputs.tables.summaries import (
    compact_columns,
    cumulative_table,
    dose_table,
    format_compact,
    per_cycle_table,
)
from lenasim.pipeline.manifest import version_of, write_manifest
from lenasim.pipeline.memory import check_simulation_memory, scenario_memory
from lenasim.pipeline.plots import PlotChild
from lenasim.pipeline.posterior import posterior_for, xarray_without_dask
from lenasim.simulation.population import prior_only_rows, simulate_scenario, subgroup_risks
from lenasim.simulation.scenario import (
    MAX_PATIENTS,
    Scenario,
    env_threads,
    load_scenario,
    output_problem,
    scenario_from_mapping,
)
from lenasim.simulation.streams import select_draws

__all__ = [
    "Job",
    "RunResult",
    "check_overrides",
    "compare_jobs",
    "load_posteriors",
    "prepare_jobs",
    "run_job",
    "scenario_from",
    "simulate_run",
    "terminal_text",
    "version_of",
    "write_run",
]


@dataclass
class Job:
    """One scenario to run: the validated config, the file it came from (or a label for a
    config given in memory) and where its results go."""

    path: Path
    scenario: Scenario
    out_dir: Path


@dataclass
class RunResult:
    """What a run computed, in memory: the draws dataset and the tables printed and
    written with it, and what the manifest records (the posterior and the draws used)."""

    scenario: Scenario
    ds: object  # xarray.Dataset or lenasim.simulation.dataset.RunDataset (draws.nc)
    limits: object  # lenasim.outputs.tables.frame.Columns (limits.csv; .to_pandas())
    bands: object  # lenasim.outputs.tables.frame.Columns (bands.csv; .to_pandas())
    mirrored: object | None  # outputs.tables.frame.Columns (mirrored.csv), None without `mirrors`
    mirror_skipped: int
    caveats: object  # lenasim.outputs.judgements.caveats.Caveats (caveats.json)
    posterior: object  # lenasim.model.posterior.Posterior
    index: np.ndarray  # the posterior draws simulated
    walls: dict[str, float] = field(default_factory=dict)
    subgroups: object | None = None  # pandas.DataFrame (subgroups.csv), with characteristics
    subgroup_draws: object | None = None  # the same draw by draw (subgroup_draws.csv)


RUN_HINT = "change `name:` or `output:` in the config, or pass --results DIR"


def check_overrides(patients: int | None, draws: int | None) -> None:
    """Command-line ``--patients`` and ``--draws``: whole numbers >= 1 (patients at most
    the engine's counter allows)."""
    for opt, val, top in (("patients", patients, MAX_PATIENTS), ("draws", draws, None)):
        if val is not None and val < 1:
            raise ConfigError(f"--{opt}: must be >= 1 (got {val})")
        if val is not None and top is not None and val > top:
            raise ConfigError(f"--{opt}: must be <= {top:,} (got {val:,})")


def prepare_jobs(
    configs: list,
    *,
    patients: int | None = None,
    draws: int | None = None,
    results: str | Path | None = None,
    overwrite: bool = False,
) -> list[Job]:
    """Load and validate all configs and overrides; check every output folder and the
    memory a cohort needs (all before any posterior is loaded or anything simulated)."""
    check_overrides(patients, draws)
    env_threads()  # a bad LENASIM_THREADS is an error now, not after the first simulation
    if results is not None and str(results).strip() == "":
        raise ConfigError(
            "--results: is empty; give a folder (results/ is the default when it is left out)"
        )
    jobs: list[Job] = []
    for p in configs:
        path = Path(p)
        sc = load_scenario(path)
        update: dict = {}
        if patients is not None:
            update["population"] = sc.population.model_copy(update={"patients": patients})
        if draws is not None:
            update["posterior"] = sc.posterior.model_copy(update={"draws": draws})
        if results is not None:
            update["output"] = Path(results)
        sc = sc.model_copy(update=update)
        if results is not None:
            why = output_problem(sc.output / sc.name)
            if why is not None:
                raise ConfigError(f"--results: {why}")
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
            check_output_folder(job.out_dir, "run", overwrite=overwrite, hint=RUN_HINT)
        except LenasimError as err:
            raise ConfigError(f"{job.path}: {err}") from None
        check_memory(job)
    if len(jobs) > 1:
        from lenasim.outputs.report.comparison import default_out_dir

        out = default_out_dir([j.out_dir for j in jobs], [j.scenario.name for j in jobs])
        check_output_folder(out, "comparison", overwrite=overwrite,
                            hint="run the scenarios one by one and compare them with "
                            "`python -m lenasim compare A B --out DIR`")  # fmt: skip
    return jobs


def check_memory(job: Job) -> None:
    """Refuse a scenario whose simulation would not fit in memory, with the estimate
    and what to change."""
    check_simulation_memory(str(job.path), **scenario_memory(job.scenario))


def load_posteriors(jobs: list[Job], quiet: bool, refit: bool = False) -> dict[Path, object]:
    """One posterior per distinct spec; check the draws requested are available."""
    posts: dict[Path, object] = {}
    for job in jobs:
        sc = job.scenario
        posterior_for(job.path, sc.posterior.spec, sc.posterior.draws, refit=refit,
                      quiet=quiet, cache=posts)  # fmt: skip
    return posts


def scenario_from(config: Scenario | dict, source: str = "<config>") -> Scenario:
    """A validated scenario from a :class:`Scenario` (returned as it is) or a config
    mapping (validated as a config file is; errors name ``source``)."""
    if isinstance(config, Scenario):
        return config
    return scenario_from_mapping(config, source)


def simulate_run(
    config: Scenario | dict,
    post,
    *,
    progress=None,
    source: str = "<config>",
    on_simulated=None,
    light: bool = False,
) -> RunResult:
    """Simulate one scenario over a loaded posterior and judge it, in memory.

    Parameters
    ----------
    config : a validated :class:`Scenario` or a config mapping (validated here).
    post : the posterior (:func:`lenasim.pipeline.posterior.ensure_posterior`).
    progress : called with the number of draws done after each chunk, or None.
    on_simulated : called with the draws dataset as soon as it is simulated (before the
        judgement), or None; the command line starts drawing the figures there.
    light : the draws dataset as a :class:`lenasim.simulation.dataset.RunDataset` (NumPy
        only; what the command line writes, without importing xarray) instead of an
        ``xarray.Dataset``; a population with characteristics is always the latter.

    Returns
    -------
    RunResult
        The draws dataset, the limits and bands tables, the mirrored trial and the caveats;
        :func:`write_run` writes them as a results folder.
    """
    sc = scenario_from(config, source)
    light = light and sc.population.characteristics is None  # mixed groups: xarray arithmetic
    if not light:
        xarray_without_dask()
    index = select_draws(post.draws.n_draws, sc.posterior.draws, sc.seed)
    draws = post.draws.take(index)
    t0 = time.perf_counter()
    kw = {"light": True} if light else {}
    ds = simulate_scenario(sc, draws, posterior_index=index, progress=progress, **kw)
    subgroups = subgroup_draws = None
    if sc.population.characteristics is not None:  # risks by CrCl band, age band, bulky
        n_sub = min(sc.population.patients, 500)
        subgroups, subgroup_draws = subgroup_risks(sc, draws, index, n_sub)
    t_sim = time.perf_counter() - t0
    if on_simulated is not None:
        on_simulated(ds)
    t0 = time.perf_counter()
    spec = sc.posterior.spec
    if sc.mirrors:
        mirrored, skipped = mirrored_rows(sc.mirrors, post, spec)
    else:
        mirrored, skipped = None, 0
    caveats = collect_caveats(sc, post, spec)
    if sc.population.characteristics is not None:  # the patient terms: prior only (issue 24)
        caveats.prior_dominated = prior_only_rows(sc.population.characteristics) + list(
            caveats.prior_dominated
        )
    limits = with_tipping(decision_rows(ds, sc.limits), ds, sc.limits, draws, post,
                          spec_path=spec)  # fmt: skip
    return RunResult(scenario=sc, ds=ds, limits=limits,
                     bands=band_columns(ds), mirrored=mirrored, mirror_skipped=skipped,
                     caveats=caveats, posterior=post, index=index,
                     walls={"simulate_s": t_sim, "judge_s": time.perf_counter() - t0},
                     subgroups=subgroups, subgroup_draws=subgroup_draws)  # fmt: skip


def write_run(
    res: RunResult,
    out_dir: Path,
    *,
    config_file: Path | None = None,
    overwrite: bool = False,
    plots: bool = True,
    t_load: float = 0.0,
    config_text: str | None = None,
    pngs: Callable[[Path], bool] | None = None,
) -> Path:
    """Write a run's results folder (tables, draws.nc, decision tables, manifest and,
    with ``plots``, the PNGs and report.html) all or nothing; return the folder.

    ``config_text``: the config that reproduces the run, written inside the folder as
    ``scenario.yaml`` (the manifest's ``config_file``, its hash and file list name it),
    for a run whose config was never a file (the explorer's form). ``pngs``: puts the
    PNGs, drawn elsewhere (:mod:`lenasim.pipeline.plots`), into the folder being built
    and returns True; they are drawn here if it returns False."""
    walls = {"load_s": t_load, **res.walls}

    def build(tmp: Path) -> None:
        nonlocal config_file
        if config_text is not None:
            config_file = tmp / "scenario.yaml"
            config_file.write_text(config_text, encoding="utf-8")
        t1 = time.perf_counter()
        write_tables(res.ds, tmp)
        write_decision(res, tmp)
        if res.subgroups is not None:  # prior-dominated: the patient terms (issue 24)
            res.subgroups.to_csv(tmp / "subgroups.csv", index=False, float_format="%.6g")
            res.subgroup_draws.to_csv(tmp / "subgroup_draws.csv", index=False,
                                      float_format="%.8g")  # fmt: skip
        walls["write_s"] = time.perf_counter() - t1
        shown = out_dir / config_file.name if config_text is not None else None
        write_manifest(res, config_file, tmp, walls, shown)
        if plots:
            from lenasim.outputs.figures.run import scenario_plots
            from lenasim.outputs.report.run import pending_run_report

            t2 = time.perf_counter()
            report = pending_run_report(tmp, ds=res.ds)  # the page, while the PNGs are drawn
            if pngs is None or not pngs(tmp):
                scenario_plots(res.ds, tmp)
            report()
            walls["plots_s"] = time.perf_counter() - t2
            write_manifest(res, config_file, tmp, walls, shown)

    with naming_the_folder(out_dir):
        write_atomically(out_dir, build, kind="run", overwrite=overwrite, hint=RUN_HINT)
    return out_dir


@contextmanager
def naming_the_folder(out_dir: Path):
    """An OSError that names no file (a full disk, a file too large) re-raised naming the
    result folder being written (nothing of it was left; an earlier result is kept)."""
    try:
        yield
    except OSError as err:
        if err.filename is not None:
            raise
        raise LenasimError(
            f"{out_dir}: {err.strerror or err} while writing the results (nothing of them was "
            "left behind; an earlier result in that folder is kept): free space or choose "
            "another folder with --results DIR"
        ) from err


def run_job(
    job: Job,
    post,
    *,
    overwrite: bool,
    plots: bool,
    quiet: bool,
    t_load: float = 0.0,
    plot_child: PlotChild | None = None,
) -> RunResult:
    """Simulate one scenario over a loaded posterior, judge it and write its results folder
    (``plot_child``: the figures drawn by it while the rest is done, :mod:`.plots`)."""
    sc = job.scenario
    bar = progress_bar(sc.posterior.draws, sc.name, "draw", show=not quiet, leave=False)
    request: list[str | None] = []

    def simulated(ds) -> None:  # hand the dataset to the child, then judge and write
        if plots and plot_child is not None:
            request.append(plot_child.draw(ds))

    try:
        res = simulate_run(sc, post, progress=None if bar is None else bar.update,
                           on_simulated=simulated, light=True)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    pngs = None if not request else (lambda tmp: plot_child.collect(request[0], tmp))
    write_run(res, job.out_dir, config_file=job.path, overwrite=overwrite, plots=plots,
              t_load=t_load, pngs=pngs)  # fmt: skip
    return res


def compare_jobs(jobs: list[Job], *, overwrite: bool, quiet: bool, plots: bool = True) -> None:
    """The paired comparison of the runs of ``run A B ...`` (the first is the reference);
    without ``plots`` (``--no-plots``), no PNGs and a report.html without figures."""
    from lenasim.outputs.report.comparison import compare_runs, default_out_dir

    xarray_without_dask()  # the runs are read with xarray: keep its Dask check off Dask
    dirs = [j.out_dir for j in jobs]
    compare_runs(dirs, default_out_dir(dirs, [j.scenario.name for j in jobs]),
                 overwrite=overwrite, quiet=quiet, plots=plots)  # fmt: skip


def terminal_text(job: Job, res: RunResult) -> str:
    """The compact table, the caveats under it, the decision table, the mirrored trial."""

    sc = job.scenario
    title = (f"{sc.name}: {sc.regimen_text()}\n"
             f"{sc.population.patients} patients x {sc.posterior.draws} draws -> {job.out_dir}")  # fmt: skip
    rules = "" if "rules" in sc.model_fields_set else (
        "\nNo `rules` in the config: the protocol carries on whatever happens; "
        + "; ".join(sc.rules.describe()) + "."
    )  # fmt: skip
    parts = [
        format_compact(compact_columns(res.ds), title) + rules,
        format_caveats(res.caveats),
        "",
        format_limits(res.limits, sc.limits.max_probability),
        *([format_tipping(res.limits)] if "tipping" in res.limits else []),
        format_bands(res.bands),
    ]
    if res.mirrored is not None:
        parts += ["", format_mirrored(res.mirrored, sc.mirrors, res.mirror_skipped)]
    return "\n".join(parts)


def write_decision(res: RunResult, out: Path) -> None:
    """limits.csv, bands.csv, mirrored.csv (with `mirrors`) and caveats.json."""
    res.limits.to_csv(out / "limits.csv", index=False)
    res.bands.to_csv(out / "bands.csv", index=False)
    if res.mirrored is not None:
        res.mirrored.to_csv(out / "mirrored.csv", index=False)
    caveats = res.caveats.to_json() | {"mirror_skipped": res.mirror_skipped}
    (out / "caveats.json").write_text(json.dumps(caveats, indent=2, default=float) + "\n")


def write_tables(ds, out: Path) -> None:
    """per_cycle.csv, cumulative.csv, dose.csv and draws.nc."""

    per_cycle_table(ds).to_csv(out / "per_cycle.csv", index=False)
    cumulative_table(ds).to_csv(out / "cumulative.csv", index=False)
    dose_table(ds).to_csv(out / "dose.csv", index=False)
    write_dataset(ds, out / "draws.nc")  # as ds.to_netcdf(engine="h5netcdf") writes it, faster
