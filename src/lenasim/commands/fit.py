"""`python -m lenasim fit` and `python -m lenasim plots`: fit a model spec, redraw its posterior plots."""

from __future__ import annotations

from lenasim.core.interrupts import handle_interrupts
from lenasim.core.shipped import refuse_writing_installed_model
from lenasim.model.fit import fit_spec, load_data
from lenasim.model.posterior import load_posterior
from lenasim.model.row_predictions import store_path, write_store
from lenasim.model.spec import load_spec, plots_dir, posterior_path


def cmd_fit(args) -> int:
    # nutpie and PyMC return the draws so far on Ctrl-C; the guard records the signal
    # (SIGTERM too) so that fit_spec saves nothing after it (model/fit.py).
    with handle_interrupts():
        _fit(args)
    return 0  # a failing gate without --allow-unconverged raised in _fit


def _fit(args) -> None:
    fit_spec(
        args.spec,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
        backend=args.sampler,
        allow_unconverged=args.allow_unconverged,
        quiet=args.quiet,
        plots=not args.no_plots,
        patients=getattr(args, "patients", None),
        evidence=not getattr(args, "no_evidence", False),
    )
    _store_row_predictions(args.spec, quiet=args.quiet)


def _store_row_predictions(spec, *, quiet: bool, post=None) -> None:
    """Every countable evidence row predicted from the saved posterior (``post``, loaded
    here if None), stored beside it (lenasim.model.row_predictions: what a run's mirrored
    trial reads)."""
    post = load_posterior(posterior_path(spec), spec) if post is None else post
    say = None if quiet else (lambda trial: print(f"predicting {trial}'s rows", flush=True))
    path = write_store(post, spec, progress=say)
    if not quiet:
        print(path)


def cmd_plots(args) -> int:
    """Redraw the posterior plots from the saved posterior, without refitting, and store
    its row predictions again (models/<spec>/row_predictions.json)."""
    refuse_writing_installed_model(args.spec, "plots")  # before importing ArviZ (~1.4 s)
    import arviz as az

    from lenasim.model.plots import posterior_plots

    path = posterior_path(args.spec)
    post = load_posterior(path, args.spec)  # refuses a missing or stale posterior, plainly
    spec = load_spec(args.spec)
    idata = az.from_netcdf(str(path), engine="h5netcdf")
    written = posterior_plots(idata, load_data(spec), spec, plots_dir(args.spec))
    for p in written:
        print(p)
    _store_row_predictions(args.spec, quiet=True, post=post)
    print(store_path(args.spec))
    return 0
