"""The explorer's one door to the run pipeline (:mod:`lenasim.pipeline.run`): every call
the app makes into loading a posterior, simulating a scenario, judging it and writing a
results folder goes through this module, so that when the pipeline changes the imports
change here and nowhere else.

Nothing here writes outside the scenario's results folder (``<output>/<name>/``): the
preview is computed in memory; a full run writes the folder atomically, as ``run`` does,
and puts the config that reproduces it (``scenario.yaml``) inside it.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lenasim.core.errors import ConfigError, LenasimError
from lenasim.core.writers import check_output_folder
from lenasim.outputs.judgements.caveats import collect_caveats
from lenasim.outputs.judgements.decision import bands_table, limits_table
from lenasim.outputs.judgements.mirror import mirrored_rows
from lenasim.pipeline.memory import check_simulation_memory, scenario_memory
from lenasim.pipeline.posterior import ensure_posterior
from lenasim.pipeline.run import RunResult, simulate_run, write_run
from lenasim.simulation.population import simulate_scenario
from lenasim.simulation.scenario import Scenario, output_problem
from lenasim.simulation.streams import select_draws

__all__ = ["CONFIG_NAME", "Preview", "full_run", "load_posterior", "preview"]

# The config a full run writes into its folder: `lenasim run` on it gives the same numbers.
CONFIG_NAME = "scenario.yaml"
_RUN_HINT = "change the scenario's name, or tick 'replace an existing result'"
# Full runs of every browser tab one at a time: two tabs naming the same folder cannot
# interleave their writes (the second finds the first's result and is refused, or
# replaces it with 'replace' ticked), and the plots' matplotlib state is not shared.
_RUN_LOCK = threading.Lock()
_POSTERIORS: dict[Path, Any] = {}
_POSTERIOR_LOCK = threading.Lock()


def load_posterior(spec: Path) -> Any:
    """The fitted posterior of a model spec, loaded once per process (never refitted: a
    missing or stale posterior is the error ``run`` gives, naming the fit command)."""
    key = Path(spec).resolve()
    with _POSTERIOR_LOCK:
        if key not in _POSTERIORS:
            if not key.is_file():
                raise ConfigError(f"posterior.spec: model spec {spec} not found")
            _POSTERIORS[key] = ensure_posterior(key, refit=False, quiet=True)
        return _POSTERIORS[key]


@dataclass
class Preview:
    """A reduced run in memory: the draws dataset and what a run judges of it."""

    scenario: Scenario
    ds: Any  # xarray.Dataset (draw x event x cycle), as in draws.nc
    limits: Any  # pandas.DataFrame (limits.csv)
    bands: Any  # pandas.DataFrame (bands.csv)
    mirrored: Any | None  # pandas.DataFrame (mirrored.csv), None without `mirrors`
    mirror_skipped: int
    caveats: Any  # lenasim.outputs.judgements.caveats.Caveats
    reference: Any | None  # xarray.Dataset of the reference schedule (paired), or None
    seconds: float


def _simulate(sc: Scenario, post: Any, draws: int, patients: int):
    index = select_draws(post.draws.n_draws, min(draws, post.draws.n_draws), sc.seed)
    taken = post.draws.take(index)
    ds = simulate_scenario(sc, taken, posterior_index=index, n_patients=patients)
    return ds, taken, index


@functools.lru_cache(maxsize=16)
def _mirrored(mirrors: tuple[str, ...], spec: Path):
    """The mirrored trial's predictions depend on the arms and the posterior, not on the
    schedule being edited (nor on the preview's draws): computed once per combination."""

    return mirrored_rows(list(mirrors), load_posterior(spec), spec)


def preview(
    sc: Scenario, *, draws: int, patients: int, reference: Scenario | None = None
) -> Preview:
    """Simulate ``sc`` with at most ``draws`` posterior draws x ``patients`` patients and
    judge it as ``run`` does; ``reference`` (same seed, draws and patients) is simulated on
    the same random numbers for a paired comparison."""

    t0 = time.perf_counter()
    post = load_posterior(sc.posterior.spec)
    draws = min(draws, sc.posterior.draws)
    patients = min(patients, sc.population.patients)
    ds, _, index = _simulate(sc, post, draws, patients)
    ref = None
    if reference is not None:
        ref, _, _ = _simulate(reference, post, draws, patients)
    mirrored, skipped = (None, 0)
    if sc.mirrors:
        mirrored, skipped = _mirrored(tuple(sc.mirrors), Path(sc.posterior.spec).resolve())
    return Preview(
        scenario=sc,
        ds=ds,
        limits=limits_table(ds, sc.limits),
        bands=bands_table(ds),
        mirrored=mirrored,
        mirror_skipped=skipped,
        caveats=collect_caveats(sc, post, sc.posterior.spec),
        reference=ref,
        seconds=time.perf_counter() - t0,
    )


def full_run(sc: Scenario, config_text: str, *, overwrite: bool) -> tuple[Path, RunResult]:
    """Run ``sc`` at its full size and write ``<output>/<name>/`` with its report, as
    ``lenasim run`` does, plus ``scenario.yaml`` (``config_text``, the config that
    reproduces it; the manifest names it and hashes its bytes).

    Raises
    ------
    LenasimError
        The run's own messages: an existing folder without ``overwrite``, a posterior
        with fewer draws than asked, ...
    """
    out_dir = Path(sc.output) / sc.name
    why = output_problem(out_dir)
    if why is not None:
        raise ConfigError(f"name: {why}")
    with _RUN_LOCK:
        try:
            check_output_folder(out_dir, "run", overwrite=overwrite, hint=_RUN_HINT)
        except LenasimError as err:
            raise ConfigError(f"name: {err}") from None
        check_simulation_memory("full run", **scenario_memory(sc))
        post = load_posterior(sc.posterior.spec)
        if sc.posterior.draws > post.draws.n_draws:
            raise ConfigError(
                f"posterior.draws: {sc.posterior.draws} draws requested but the posterior "
                f"{post.path} has {post.draws.n_draws}; ask for at most {post.draws.n_draws}"
            )
        res = simulate_run(sc, post)
        # scenario.yaml is written inside the folder as it is built: the manifest names it,
        # hashes it and lists it among the folder's files.
        write_run(res, out_dir, overwrite=overwrite, plots=True, config_text=config_text)
    return out_dir, res
