"""`python -m lenasim run`: the command over the run pipeline (:mod:`lenasim.pipeline.run`):
configs -> posterior -> simulation -> results/<name>/, the tables printed.

With a fitted posterior in place this imports neither PyMC nor PyTensor.
"""

from __future__ import annotations

import time
from argparse import Namespace

from lenasim.pipeline import run as pipeline
from lenasim.pipeline.plots import PlotChild, can_fork, take_early

__all__ = ["cmd_run"]


def cmd_run(args: Namespace) -> int:
    """Handler of `python -m lenasim run` (see cli.py for the options)."""
    t0 = time.perf_counter()
    early = take_early()  # forked by `python -m lenasim` before the command line's imports
    try:
        jobs = pipeline.prepare_jobs(args.configs, patients=args.patients, draws=args.draws,
                                     results=args.results, overwrite=bool(args.overwrite))  # fmt: skip
    except BaseException:
        if early is not None:
            early.close()
        raise
    if early is not None and args.no_plots:
        early.close()
        early = None
    # the figures: drawn by a child forked before (or now), which imports matplotlib while
    # this process loads the posterior and simulates (lenasim.pipeline.plots)
    child = early or (PlotChild(runs=len(jobs)) if not args.no_plots and can_fork() else None)
    try:
        posts = pipeline.load_posteriors(jobs, quiet=args.quiet,
                                         refit=bool(getattr(args, "refit", False)))  # fmt: skip
        t_load = time.perf_counter() - t0
        for job in jobs:
            post = posts[job.scenario.posterior.spec.resolve()]
            res = pipeline.run_job(job, post, overwrite=args.overwrite, plots=not args.no_plots,
                                   quiet=args.quiet, t_load=t_load, plot_child=child)  # fmt: skip
            print(pipeline.terminal_text(job, res))
            print()
    finally:
        if child is not None:
            child.close()
    if len(jobs) > 1:
        pipeline.compare_jobs(jobs, overwrite=args.overwrite, quiet=args.quiet,
                              plots=not args.no_plots)  # fmt: skip
    return 0
