"""The fitted posterior on disk: netCDF (ArviZ InferenceData layout) with its
provenance in the attributes, read back without PyMC or ArviZ.

:func:`load_posterior` reads the few variables the simulator needs straight from the
HDF5 file with h5py (a few tens of ms) instead of decoding the whole group with
xarray (several hundred ms with its import). The direct reader handles exactly what
lenasim and ArviZ write: float variables whose only encoding is a NaN ``_FillValue``,
string coordinates, dimensions (chain, draw, ...) named by netCDF-4 dimension scales,
string and numeric attributes. Anything else (scale factors, other fill values,
unusual dimensions or attributes) is read by xarray, so both paths give the same
draws and attributes.

Variables of the ``posterior`` group (dims chain, draw, ...):
``intercept`` (event), ``beta_<event>`` (<event>_term), ``tau`` (event), ``sigma``
(event), ``sev_intercept``, ``sev_beta`` (flare_severity_term), and ``u`` (trial, event).
Attributes: ``spec`` (JSON), ``spec_hash``, ``evidence_hash``, ``lenasim_version``,
``seed``, ``sampler`` (JSON), ``diagnostics`` (JSON), ``converged`` (0/1), ``created``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenasim.core.errors import PosteriorError
from lenasim.core.hazard import HazardDraws
from lenasim.core.manifest import sha256_file as file_hash  # the posterior file's hash
from lenasim.core.vocabulary import active
from lenasim.core.writers import replace_file
from lenasim.evidence import table as evidence_table
from lenasim.model.spec import load_spec, patient_data_path

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


def link_of(attrs: dict) -> str:
    """The fit's per-cycle link (``logit`` unless the stored spec says otherwise)."""
    try:
        spec = json.loads(attrs.get("spec") or "{}")
    except (TypeError, ValueError):
        return "logit"
    return str(spec.get("link", "logit"))


def trial_df_of(attrs: dict) -> float | None:
    """Degrees of freedom of the fit's Student-t trial effects (None: normal), from the
    spec stored with the posterior."""
    try:
        spec = json.loads(attrs.get("spec") or "{}")
    except (TypeError, ValueError):
        return None
    if spec.get("trial_effects") == "student_t":
        return float(spec.get("trial_effects_df", 5.0))
    return None


def draws_from_dataset(post) -> HazardDraws:
    """HazardDraws from an xarray posterior Dataset (dims chain, draw, ...)."""
    # The direct reader (_draws_from_arrays) mirrors this function; keep them in step.
    stacked = post.stack(sample=("chain", "draw"))

    def vec(name: str, **sel) -> np.ndarray:
        return np.asarray(stacked[name].sel(**sel).values, dtype=float).reshape(-1)

    terms: dict[str, tuple[str, ...]] = {}
    intercept, coefs, tau, sigma = {}, {}, {}, {}
    for ev in (str(e) for e in post["event"].values):  # the events the posterior was fitted on
        dim = f"{ev}_term"
        terms[ev] = tuple(str(t) for t in post[f"beta_{ev}"].coords[dim].values)
        intercept[ev] = vec("intercept", event=ev)
        coefs[ev] = {t: vec(f"beta_{ev}", **{dim: t}) for t in terms[ev]}
        tau[ev] = vec("tau", event=ev)
        sigma[ev] = vec("sigma", event=ev)
    sev = active().severity.name
    dim = f"{sev}_term"
    terms[sev] = tuple(str(t) for t in post["sev_beta"].coords[dim].values)
    intercept[sev] = vec("sev_intercept")
    coefs[sev] = {t: vec("sev_beta", **{dim: t}) for t in terms[sev]}
    return HazardDraws(terms=terms, intercept=intercept, coefs=coefs, tau=tau, sigma=sigma)


def dataset_from_draws(draws: HazardDraws, chains: int = 1):
    """The inverse of :func:`draws_from_dataset` (for synthetic posteriors in tests)."""
    import xarray as xr

    s = draws.n_draws
    if s % chains:
        raise ValueError(f"{s} draws do not split into {chains} chains")

    def shp(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, float).reshape(chains, s // chains, *np.shape(a)[1:])

    events, sev = active().event_names, active().severity.name  # as the fit writes them
    data = {
        "intercept": (
            ("chain", "draw", "event"),
            shp(np.stack([draws.intercept[e] for e in events], -1)),
        ),
        "tau": (("chain", "draw", "event"), shp(np.stack([draws.tau[e] for e in events], -1))),
        "sigma": (("chain", "draw", "event"), shp(np.stack([draws.sigma[e] for e in events], -1))),
        "sev_intercept": (("chain", "draw"), shp(draws.intercept[sev])),
    }
    coords = {"chain": np.arange(chains), "draw": np.arange(s // chains), "event": list(events)}
    for ev in (*events, sev):
        name = "sev_beta" if ev == sev else f"beta_{ev}"
        dim = f"{ev}_term"
        terms = list(draws.terms[ev])
        arr = np.stack([draws.coefs[ev][t] for t in terms], -1) if terms else np.zeros((s, 0))
        data[name] = (("chain", "draw", dim), shp(arr))
        coords[dim] = terms
    return xr.Dataset(data, coords=coords)


def write_posterior(
    path: str | Path, draws: HazardDraws, attrs: dict, *, prior: HazardDraws | None = None
) -> Path:
    """Write a minimal posterior file (the posterior group, and the prior group when
    ``prior`` is given), atomically."""
    path = Path(path)
    ds = dataset_from_draws(draws)
    ds.attrs.update({k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in attrs.items()})

    def write(tmp: Path) -> None:
        ds.to_netcdf(tmp, group="posterior", engine=ENGINE)
        if prior is not None:
            dataset_from_draws(prior).to_netcdf(tmp, group="prior", mode="a", engine=ENGINE)

    return replace_file(path, write)


def load_group_draws(nc_path: str | Path, group: str) -> HazardDraws | None:
    """The parameter draws of one group of a posterior file (``posterior`` or ``prior``),
    read as :func:`load_posterior` reads the posterior (h5py, no ArviZ); None when the
    file has no such group.

    Raises
    ------
    PosteriorError
        If the group exists but is unreadable or lacks the model's parameters.
    """
    import h5py

    nc_path = Path(nc_path)
    try:
        with h5py.File(nc_path, "r") as f:
            if group not in f:
                return None
        try:
            _, arrays, coords = _read_direct(nc_path, group)
            return _draws_from_arrays(arrays, coords)
        except _Unsupported:
            return _read_xarray(nc_path, group)[1]()
    except (OSError, KeyError, ValueError) as err:
        raise PosteriorError(f"{nc_path}: cannot read its {group} draws ({err})") from err


def stale_reasons(attrs: dict, spec_path: str | Path | None) -> list[str]:
    """Why a posterior no longer matches the evidence and spec it claims (empty if it does)."""
    reasons = []
    if attrs.get("evidence_hash") != evidence_table.evidence_hash():
        reasons.append("the evidence table changed since the fit")
    if spec_path is not None:
        spec = load_spec(spec_path)
        if attrs.get("spec_hash") != spec.hash():
            reasons.append(f"the model spec {spec_path} changed since the fit")
        reasons += _patient_data_reasons(attrs, spec, spec_path)
    return reasons


def _patient_data_reasons(attrs: dict, spec, spec_path) -> list[str]:
    """The spec's patient-cycle CSV changed (or is gone) since the fit."""
    path = patient_data_path(spec, spec_path)
    if path is None or "patient_data_hash" not in attrs:
        return []
    if not path.is_file():
        return [f"the patient-level data {path} is missing"]
    if file_hash(path) != attrs["patient_data_hash"]:
        return [f"the patient-level data {path} changed since the fit"]
    return []


# --- direct reader (h5py) ---------------------------------------------------------


def _draw_dims() -> dict[str, tuple[str, ...]]:
    """Variables of the posterior group that the simulator needs, and their dims after
    (chain, draw), for the events and the severity of the active vocabulary."""
    vocab = active()
    return {
        "intercept": ("event",),
        "tau": ("event",),
        "sigma": ("event",),
        "sev_intercept": (),
        "sev_beta": (f"{vocab.severity.name}_term",),
        **{f"beta_{ev}": (f"{ev}_term",) for ev in vocab.event_names},
    }


# HDF5 attributes that implement netCDF-4 itself (h5netcdf hides them too).
_HIDDEN_ATTRS = frozenset({"REFERENCE_LIST", "CLASS", "DIMENSION_LIST", "NAME", "_Netcdf4Dimid",
                           "_Netcdf4Coordinates", "_nc3_strict", "_NCProperties"})  # fmt: skip


class _Unsupported(Exception):
    """The file uses a netCDF feature the direct reader does not decode (use xarray)."""


def _read_direct(
    nc_path: Path, group_name: str = "posterior"
) -> tuple[dict, dict[str, np.ndarray], dict[str, list[str]]]:
    """Attributes, needed variables (chain, draw, ...) and their string coordinates of
    the posterior group (or another group of the same layout), read with h5py. Raises :class:`_Unsupported` for anything
    whose decoding xarray could do differently (see the module docstring). Needed
    variables that are absent are left out (the caller reports them)."""
    import h5py

    with h5py.File(nc_path, "r") as f:
        group = f[group_name]
        if not isinstance(group, h5py.Group):
            raise _Unsupported(f"{group_name} is not a group")
        attrs = {k: _attr_value(group.attrs, k) for k in group.attrs if k not in _HIDDEN_ATTRS}
        arrays: dict[str, np.ndarray] = {}
        coords: dict[str, list[str]] = {}
        for name, tail in _draw_dims().items():
            var = group.get(name)
            if var is None:
                continue
            if not isinstance(var, h5py.Dataset) or var.dtype.kind != "f":
                raise _Unsupported(f"{name}: not a float variable")
            _check_plain(var, allow_fill=True)
            dims = _dims(f, var)
            if dims != ("chain", "draw", *tail):
                raise _Unsupported(f"{name}: dims {dims}")
            arrays[name] = var[()]
            for dim in tail:
                if dim not in coords:
                    coords[dim] = _string_coord(group, dim)
    return attrs, arrays, coords


def _dims(f, var) -> tuple[str, ...]:
    """Dimension names of a netCDF-4 variable, from its dimension scales (their paths by
    ``h5r.get_name``: half the time of opening each scale as a Dataset for its name)."""
    import h5py

    refs = var.attrs.get("DIMENSION_LIST")
    if refs is None or len(refs) != var.ndim:
        raise _Unsupported(f"{var.name}: no dimension scales")
    names = (h5py.h5r.get_name(r[0], f.id) for r in refs)
    return tuple(n.decode().rsplit("/", 1)[-1] for n in names)


def _check_plain(var, *, allow_fill: bool) -> None:
    """Refuse any attribute xarray would decode (only a NaN _FillValue is a no-op)."""
    for k in var.attrs:
        if k in _HIDDEN_ATTRS:
            continue
        if allow_fill and k == "_FillValue":
            fill = np.asarray(var.attrs[k])
            if fill.size == 1 and np.isnan(fill).all():
                continue
        raise _Unsupported(f"{var.name}: attribute {k}")


def _string_coord(group, dim: str) -> list[str]:
    """A dimension's coordinate labels, which must be unique strings."""
    import h5py

    var = group.get(dim)
    if not isinstance(var, h5py.Dataset) or h5py.check_string_dtype(var.dtype) is None:
        raise _Unsupported(f"{dim}: not a string coordinate")
    if str(var.attrs.get("NAME", b"")).find("not a netCDF variable") >= 0:
        raise _Unsupported(f"{dim}: dimension without a coordinate variable")
    _check_plain(var, allow_fill=False)
    labels = [str(x) for x in var.asstr()[()].tolist()]
    if len(set(labels)) != len(labels):
        raise _Unsupported(f"{dim}: repeated labels")
    return labels


def _attr_value(attrs, key: str):
    """A group attribute as h5netcdf and xarray return it: str, numeric scalar, or
    numeric array (a one-element array becomes its element). Bytes, string arrays and
    empty attributes, which h5netcdf and xarray decode in their own ways, are left to
    xarray."""
    value = attrs[key]
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.ndim == 1:
        return value[0] if value.size == 1 else value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value
    raise _Unsupported(f"attribute {key}: {type(value).__name__}")


def _draws_from_arrays(arrays: dict[str, np.ndarray], coords: dict[str, list[str]]) -> HazardDraws:
    """:func:`draws_from_dataset` on the direct reader's arrays (chain-major samples)."""

    def vec(name: str, dim: str | None = None, label: str | None = None) -> np.ndarray:
        a = arrays[name]
        if dim is not None:
            a = a[:, :, coords[dim].index(label)] if label in coords[dim] else _missing(dim, label)
        return np.asarray(a, dtype=float).reshape(-1)

    for name in _draw_dims():
        if name not in arrays:
            raise KeyError(name)
    terms: dict[str, tuple[str, ...]] = {}
    intercept, coefs, tau, sigma = {}, {}, {}, {}
    for ev in coords["event"]:  # the events the posterior was fitted on
        dim = f"{ev}_term"
        terms[ev] = tuple(coords[dim])
        intercept[ev] = vec("intercept", "event", ev)
        coefs[ev] = {t: vec(f"beta_{ev}", dim, t) for t in terms[ev]}
        tau[ev] = vec("tau", "event", ev)
        sigma[ev] = vec("sigma", "event", ev)
    sev = active().severity.name
    dim = f"{sev}_term"
    terms[sev] = tuple(coords[dim])
    intercept[sev] = vec("sev_intercept")
    coefs[sev] = {t: vec("sev_beta", dim, t) for t in terms[sev]}
    return HazardDraws(terms=terms, intercept=intercept, coefs=coefs, tau=tau, sigma=sigma)


def _missing(dim: str, label: str):
    raise KeyError(f"{label!r} in {dim}")


def _read_xarray(nc_path: Path, group: str = "posterior"):
    """Attributes and a draws builder, with xarray (the general reader)."""
    import xarray as xr

    with xr.open_dataset(nc_path, group=group, engine=ENGINE) as ds:
        ds = ds.load()
    return dict(ds.attrs), lambda: draws_from_dataset(ds)


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
    nc_path = Path(nc_path)
    if not nc_path.exists():
        spec = spec_path or nc_path.with_suffix(".yaml")
        raise PosteriorError(
            f"{nc_path}: posterior not found; fit it with `python -m lenasim fit {spec}`"
        )
    try:
        try:
            attrs, arrays, coords = _read_direct(nc_path)
            build = lambda: _draws_from_arrays(arrays, coords)  # noqa: E731
        except _Unsupported:
            attrs, build = _read_xarray(nc_path)
    except Exception as err:  # noqa: BLE001 - any read failure is the same user problem
        raise PosteriorError(f"{nc_path}: cannot read the posterior ({err}); refit it") from err
    if check:
        reasons = stale_reasons(attrs, spec_path)
        if reasons:
            spec = spec_path or nc_path.with_suffix(".yaml")
            raise PosteriorError(
                f"{nc_path} is stale: {'; '.join(reasons)}. "
                f"Refit with `python -m lenasim fit {spec}`"
            )
    try:
        draws = build()
    except KeyError as err:
        raise PosteriorError(f"{nc_path}: not a lenasim posterior (missing {err})") from err
    draws = dataclasses.replace(draws, trial_df=trial_df_of(attrs), link=link_of(attrs))
    return Posterior(draws=draws, attrs=attrs, path=nc_path, hash=file_hash(nc_path))
