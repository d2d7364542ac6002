"""`python -m lenasim search CONFIG`: the command over the search pipeline
(:mod:`lenasim.pipeline.search`): many candidate schedules on common random numbers, kept
within risk limits, ranked, written to results/search-<name>/."""

from __future__ import annotations

from argparse import Namespace

from lenasim.pipeline import search as pipeline

__all__ = ["cmd_search"]


def cmd_search(args: Namespace) -> int:
    """Handler of `python -m lenasim search` (see cli.py for the options)."""
    opts = pipeline.SearchOptions(
        patients=args.patients, draws=args.draws, results=args.results, top=args.top,
        dask=args.dask, workers=args.workers, batch_size=args.batch_size, yes=bool(args.yes),
        overwrite=bool(args.overwrite), plots=not args.no_plots, quiet=bool(args.quiet),
        refit=bool(getattr(args, "refit", False)),
    )  # fmt: skip
    cfg, table = pipeline.run_search(args.config, opts)
    if not args.quiet:
        print(pipeline.summary_text(table, cfg))
    return 0
