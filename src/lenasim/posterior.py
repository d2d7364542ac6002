"""The fitted posterior on disk: netCDF (ArviZ InferenceData layout) with its
provenance in the attributes, read back with xarray only so that `run` imports
neither PyMC nor ArviZ.

Variables of the ``posterior`` group (dims chain, draw, ...):
``intercept`` (event), ``beta_<event>`` (<event>_term), ``tau`` (event), ``sigma``
(event), ``sev_intercept``, ``sev_beta`` (flare_severity_term), and ``u`` (trial, event).
Attributes: ``spec`` (JSON), ``spec_hash``, ``evidence_hash``, ``lenasim_version``,
``seed``, ``sampler`` (JSON), ``diagnostics`` (JSON), ``converged`` (0/1), ``created``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenasim.errors import PosteriorError
from lenasim.hazard import EVENTS, SEVERITY, HazardDraws

ENGINE = "h5netcdf"


@dataclass(frozen=True)
class Posterior:
    """A loaded posterior: flattened draws (chain-major) and provenance."""

    draws: HazardDraws
    attrs: dict
    path: Path
    hash: str

    @property
    def converged(self) -> bool:
        return bool(int(self.attrs.get("converged", 0)))

    @property
    def diagnostics(self) -> dict:
        return json.loads(self.attrs.get("diagnostics", "{}"))


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def draws_from_dataset(post) -> HazardDraws:
    """HazardDraws from an xarray posterior Dataset (dims chain, draw, ...)."""
    stacked = post.stack(sample=("chain", "draw"))

    def vec(name: str, **sel) -> np.ndarray:
        return np.asarray(stacked[name].sel(**sel).values, dtype=float).reshape(-1)

    terms: dict[str, tuple[str, ...]] = {}
    intercept, coefs, tau, sigma = {}, {}, {}, {}
    for ev in EVENTS:
        dim = f"{ev}_term"
        terms[ev] = tuple(str(t) for t in post[f"beta_{ev}"].coords[dim].values)
        intercept[ev] = vec("intercept", event=ev)
        coefs[ev] = {t: vec(f"beta_{ev}", **{dim: t}) for t in terms[ev]}
        tau[ev] = vec("tau", event=ev)
        sigma[ev] = vec("sigma", event=ev)
    dim = f"{SEVERITY}_term"
    terms[SEVERITY] = tuple(str(t) for t in post["sev_beta"].coords[dim].values)
    intercept[SEVERITY] = vec("sev_intercept")
    coefs[SEVERITY] = {t: vec("sev_beta", **{dim: t}) for t in terms[SEVERITY]}
    return HazardDraws(terms=terms, intercept=intercept, coefs=coefs, tau=tau, sigma=sigma)


def dataset_from_draws(draws: HazardDraws, chains: int = 1):
    """The inverse of :func:`draws_from_dataset` (for synthetic posteriors in tests)."""
    import xarray as xr

    s = draws.n_draws
    if s % chains:
        raise ValueError(f"{s} draws do not split into {chains} chains")

    def shp(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, float).reshape(chains, s // chains, *np.shape(a)[1:])

    data = {
        "intercept": (("chain", "draw", "event"), shp(np.stack([draws.intercept[e] for e in EVENTS], -1))),
        "tau": (("chain", "draw", "event"), shp(np.stack([draws.tau[e] for e in EVENTS], -1))),
        "sigma": (("chain", "draw", "event"), shp(np.stack([draws.sigma[e] for e in EVENTS], -1))),
        "sev_intercept": (("chain", "draw"), shp(draws.intercept[SEVERITY])),
    }
    coords = {"chain": np.arange(chains), "draw": np.arange(s // chains), "event": list(EVENTS)}
    for ev in (*EVENTS, SEVERITY):
        name = "sev_beta" if ev == SEVERITY else f"beta_{ev}"
        dim = f"{ev}_term"
        terms = list(draws.terms[ev])
        arr = np.stack([draws.coefs[ev][t] for t in terms], -1) if terms else np.zeros((s, 0))
        data[name] = (("chain", "draw", dim), shp(arr))
        coords[dim] = terms
    return xr.Dataset(data, coords=coords)


def write_posterior(path: str | Path, draws: HazardDraws, attrs: dict) -> Path:
    """Write a minimal posterior file (the posterior group only), atomically."""
    path = Path(path)
    ds = dataset_from_draws(draws)
    ds.attrs.update({k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in attrs.items()})
    tmp = path.with_name(path.name + ".tmp")
    ds.to_netcdf(tmp, group="posterior", engine=ENGINE)
    tmp.replace(path)
    return path


def stale_reasons(attrs: dict, spec_path: str | Path | None) -> list[str]:
    """Why a posterior no longer matches the evidence and spec it claims (empty if it does)."""
    from lenasim.evidence import evidence_hash

    reasons = []
    if attrs.get("evidence_hash") != evidence_hash():
        reasons.append("the evidence table changed since the fit")
    if spec_path is not None:
        from lenasim.spec import load_spec

        if attrs.get("spec_hash") != load_spec(spec_path).hash():
            reasons.append(f"the model spec {spec_path} changed since the fit")
    return reasons


def load_posterior(
    nc_path: str | Path, spec_path: str | Path | None = None, *, check: bool = True
) -> Posterior:
    """Load a fitted posterior; with ``check``, refuse one that is stale.

    Raises
    ------
    PosteriorError
        If the file is missing or unreadable, or (with ``check``) if the evidence or
        the spec changed since the fit.
    """
    import xarray as xr

    nc_path = Path(nc_path)
    if not nc_path.exists():
        spec = spec_path or nc_path.with_suffix(".yaml")
        raise PosteriorError(
            f"{nc_path}: posterior not found; fit it with `python -m lenasim fit {spec}`"
        )
    try:
        with xr.open_dataset(nc_path, group="posterior", engine=ENGINE) as ds:
            ds = ds.load()
    except Exception as err:  # noqa: BLE001 - any read failure is the same user problem
        raise PosteriorError(f"{nc_path}: cannot read the posterior ({err}); refit it") from err
    attrs = dict(ds.attrs)
    if check:
        reasons = stale_reasons(attrs, spec_path)
        if reasons:
            spec = spec_path or nc_path.with_suffix(".yaml")
            raise PosteriorError(
                f"{nc_path} is stale: {'; '.join(reasons)}. "
                f"Refit with `python -m lenasim fit {spec}`"
            )
    try:
        draws = draws_from_dataset(ds)
    except KeyError as err:
        raise PosteriorError(f"{nc_path}: not a lenasim posterior (missing {err})") from err
    return Posterior(draws=draws, attrs=attrs, path=nc_path, hash=file_hash(nc_path))


def ensure_posterior(spec_path: str | Path, quiet: bool = False) -> Posterior:
    """The spec's posterior, fitted first (with a message) if it is missing or stale."""
    from lenasim.spec import posterior_path

    nc = posterior_path(spec_path)
    try:
        post = load_posterior(nc, spec_path)
    except PosteriorError as err:
        if not Path(spec_path).exists():
            raise
        print(f"lenasim: {err}\nlenasim: fitting {spec_path} now (this takes a few minutes)...",
              file=sys.stderr)
        from lenasim.fit import fit_spec

        fit_spec(spec_path, quiet=quiet)
        post = load_posterior(nc, spec_path)
    if not post.converged:
        print(f"lenasim: warning: {nc} was saved with --allow-unconverged; its diagnostics "
              "failed the gate, treat results as provisional", file=sys.stderr)
    return post
