"""`python -m lenasim design CONFIG`: simulate a schedule-finding trial's operating
characteristics over the posterior; write results/design-<name>/.

Order of work, so that mistakes fail before anything is computed: validate the config
and the overrides; refuse an existing results folder unless ``--overwrite``; load the
posterior (stale or missing: an error, as for ``run``); simulate, in process or with
``--dask`` on a cluster (batches of trials; the same bytes); write atomically.
"""

from __future__ import annotations

import time
from argparse import Namespace
from datetime import UTC, datetime
from pathlib import Path

from lenasim import __version__
from lenasim.core.errors import ConfigError
from lenasim.core.progress import progress_bar
from lenasim.core.writers import check_output_folder
from lenasim.design.config import load_design
from lenasim.design.simulate import run_design
from lenasim.design.write import KIND, write_design
from lenasim.pipeline.memory import check_simulation_memory
from lenasim.pipeline.posterior import ensure_posterior
from lenasim.search.execute import dask_client
from lenasim.simulation.scenario import config_hash

__all__ = ["cmd_design"]


def _overrides(cfg, args: Namespace):
    update: dict = {}
    for opt in ("trials", "draws", "workers"):
        val = getattr(args, opt, None)
        if val is not None and val < 1:
            raise ConfigError(f"--{opt}: must be >= 1 (got {val})")
    if args.trials is not None:
        update["trials"] = args.trials
    if args.draws is not None:
        update["posterior"] = cfg.posterior.model_copy(update={"draws": args.draws})
    if args.results is not None:
        update["output"] = Path(args.results)
    return cfg.model_copy(update=update)


class _Progress:
    """One tqdm bar per stage (the prior's engine runs, then the trials), on a terminal."""

    def __init__(self, totals: dict[str, int], quiet: bool) -> None:
        self.totals, self.bars = totals, {}
        self.quiet = quiet

    def __call__(self, stage: str, n: int) -> None:
        if stage not in self.bars:
            self.bars[stage] = progress_bar(self.totals[stage], stage, "step",
                                            show=not self.quiet, leave=False)  # fmt: skip
        if self.bars[stage] is not None:
            self.bars[stage].update(n)

    def close(self) -> None:
        for bar in self.bars.values():
            if bar is not None:
                bar.close()


def _on(client):
    """A mapper that runs the batches on a Dask cluster (one engine thread per task) and
    returns their results in order."""

    def mapper(fn, arglist):
        futures = [client.submit(fn, *args[:-1], 1, pure=False) for args in arglist]
        return client.gather(futures)

    return mapper


def cmd_design(args: Namespace) -> int:
    path = Path(args.config)
    cfg = _overrides(load_design(path), args)
    out_dir = cfg.output / f"design-{cfg.name}"
    check_output_folder(out_dir, KIND, overwrite=args.overwrite)
    spec = cfg.posterior.spec
    if not spec.is_file():
        raise ConfigError(
            f"{path}: posterior.spec: model spec {spec} not found (paths are relative to the "
            "config file; the default is models/default.yaml in the current folder)"
        )
    post = ensure_posterior(spec, refit=args.refit, quiet=args.quiet)
    if cfg.posterior.draws > post.draws.n_draws:
        raise ConfigError(
            f"{path}: posterior.draws: {cfg.posterior.draws} draws requested but {post.path} "
            f"has {post.draws.n_draws}; ask for at most {post.draws.n_draws}"
        )
    n_j = len(cfg.candidates)
    n_cyc = max(c.regimen.cycles for c in cfg.candidates)
    check_simulation_memory(  # the prior's engine runs, beside one truth's outcomes
        str(path),
        patients=cfg.population.patients,
        levels=max(len(c.regimen.levels()) for c in cfg.candidates),
        cycles=n_cyc,
        draws=cfg.posterior.draws,
        extra=cfg.trials * cfg.trial.max_patients * n_j * 4 * n_cyc,
    )
    n_prior = n_j * (2 if cfg.update.robust_weight > 0 else 1)
    bar = _Progress({"prior": n_prior, "trials": cfg.trials * len(cfg.truths)}, args.quiet)
    t0 = time.perf_counter()
    try:
        if args.dask is None:
            res = run_design(cfg, post.draws, progress=bar)
        else:
            with dask_client(args.dask, args.workers) as client:
                res = run_design(cfg, post.draws, progress=bar, mapper=_on(client))
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    manifest = {
        "lenasim_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_path": str(path),
        "config_hash": config_hash(path),
        "posterior": str(post.path),
        "posterior_hash": post.hash,
        "seed": cfg.seed,
        "wall_seconds": round(wall, 2),
        "seconds_by_stage": res.seconds,
    }
    note = (
        f"{post.path} ({min(cfg.posterior.draws, post.draws.n_draws)} draws as the in-trial prior)"
    )
    write_design(cfg, res, out_dir, manifest, overwrite=args.overwrite,
                 plots=not args.no_plots, posterior_note=note)  # fmt: skip
    if not args.quiet:
        sel = res.oc[res.oc.quantity == "p_select"]
        for truth, rows in sel.groupby("truth", sort=False):
            text = ", ".join(f"{r.candidate} {100 * r.value:.0f}%" for r in rows.itertuples())
            print(f"{truth}: P(select) {text}")
        print(f"wrote {out_dir} in {wall:.0f} s")
    return 0
