"""The posterior a run or a search simulates over: loaded once per spec, fitted first only
when asked (``--refit``), with the draws requested checked against those available."""

from __future__ import annotations

import sys
from pathlib import Path

from lenasim.core.errors import ConfigError, PosteriorError
from lenasim.model.posterior import load_posterior
from lenasim.model.row_predictions import write_store
from lenasim.model.spec import posterior_path

__all__ = ["ensure_posterior", "posterior_for", "xarray_without_dask"]


def ensure_posterior(spec_path: str | Path, *, refit: bool = False, quiet: bool = False):
    """The spec's fitted posterior. A missing or stale one is an error that names the
    reason and the fit command; with ``refit`` it is fitted first (this imports PyMC and
    takes minutes, so it happens only when asked)."""

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
        write_store(post, spec_path)  # the rows' new-trial predictions, as `fit` stores them
    if not post.converged:
        print(
            f"lenasim: warning: {nc} was saved with --allow-unconverged; its diagnostics "
            "failed the gate, treat results as provisional",
            file=sys.stderr,
        )
    return post


def posterior_for(source: str | Path, spec: Path, draws: int, *, refit: bool = False,
                  quiet: bool = False, cache: dict | None = None):  # fmt: skip
    """The posterior of a config's ``posterior.spec`` (from ``cache`` when loaded before),
    with ``draws`` checked against the draws it holds; errors name the config file."""
    if "xarray" in sys.modules:  # before the posterior's netCDF is opened (if by xarray)
        xarray_without_dask()
    if not spec.is_file():
        raise ConfigError(
            f"{source}: posterior.spec: model spec {spec} not found (a path written in "
            "a config is relative to the config file's folder; without one, the model "
            "shipped with lenasim is used)"
        )
    key = spec.resolve()
    cache = {} if cache is None else cache
    if key not in cache:
        try:
            cache[key] = ensure_posterior(spec, refit=refit, quiet=quiet)
        except PosteriorError as err:
            raise PosteriorError(f"{source}: posterior.spec: {err}") from err
    post = cache[key]
    available = post.draws.n_draws
    if draws > available:
        raise ConfigError(
            f"{source}: posterior.draws: {draws} draws requested but the posterior "
            f"{post.path} has {available}; ask for at most {available}"
        )
    return post


def xarray_without_dask() -> None:
    """Keep Dask off the run path. xarray imports ``dask.array`` (about 0.35 s, more on a
    busy machine) the first time it asks whether an array is a Dask array, if Dask is
    installed. While this process has not imported Dask, no array can be one: say so in
    xarray's cache of duck-array modules and its Dask-collection check, once (the check
    defers to xarray's own as soon as Dask is imported). A process that imported Dask (a search on
    a cluster) is left as it is; if xarray's internals change, nothing is done."""
    if "dask" in sys.modules:
        return
    try:
        from packaging.version import Version
        from xarray.namedarray import pycompat
    except ImportError:
        return
    from xarray.namedarray import utils

    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    kind = getattr(pycompat, "DuckArrayModule", None)
    if isinstance(cache, dict) and kind is not None and "dask" not in cache:
        absent = object.__new__(kind)
        absent.module, absent.version, absent.type, absent.available = (
            None, Version("0.0.0"), (), False
        )  # fmt: skip
        cache["dask"] = absent
    check = getattr(utils, "is_dask_collection", None)
    if callable(check) and not getattr(check, "lenasim_lazy", False):

        def is_dask_collection(x, _check=check):  # what xarray asks of every array
            return "dask" in sys.modules and _check(x)

        is_dask_collection.lenasim_lazy = True
        utils.is_dask_collection = is_dask_collection
