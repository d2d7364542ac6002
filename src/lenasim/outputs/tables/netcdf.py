"""Write a run's draws.nc with h5py directly, as xarray would write it.

``Dataset.to_netcdf`` (xarray through h5netcdf) spends ~0.12 s on a run's 2 MB of
draws, nearly all of it bookkeeping; :func:`write_dataset` writes the same netCDF-4
file in ~0.015 s: the same variables, values and attributes, dimensions as HDF5
dimension scales carrying netCDF-4's ``_Netcdf4Dimid`` and ``_Netcdf4Coordinates``, NaN
``_FillValue`` on floats, non-index coordinates named in the ``coordinates``
attribute, creation order tracked, so that xarray, h5netcdf and the netCDF-C library
(netCDF4-python, ncdump, R's ncdf4) read it as they read h5netcdf's file (the tests
compare both readers' views of both files).

It writes an ``xarray.Dataset`` or a run's
:class:`~lenasim.simulation.dataset.RunDataset` (the same variables by the same names).
It handles what lenasim's result datasets hold: float and integer variables, string
or numeric index coordinates for every dimension, non-index coordinates that some
data variable spans, string and numeric attributes, no encoding settings. Any other
dataset is written by xarray (:func:`handles` says which way a dataset goes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lenasim import __version__

__all__ = ["handles", "write_dataset"]

ENGINE = "h5netcdf"


def handles(ds: Any) -> bool:
    """Whether :func:`write_dataset` writes ``ds`` itself (else xarray does)."""
    if any(d not in ds.indexes or ds[d].ndim != 1 for d in ds.dims):
        return False
    names = set(ds.variables)
    non_index = [c for c in ds.coords if c not in ds.dims]
    for name, var in ds.variables.items():
        if var.encoding or not isinstance(name, str) or name.startswith("_") or " " in name:
            return False
        if var.ndim == 0:
            return False
        if "coordinates" in var.attrs or not _plain_attrs(var.attrs):
            return False
        kind = var.dtype.kind
        if kind not in "fiu" and not (name in ds.dims and _is_str(var.values)):
            return False
    for c in non_index:  # each must be named by some data variable's `coordinates`
        if not any(set(ds[c].dims) <= set(v.dims) for v in ds.data_vars.values()):
            return False
    return bool(names) and _plain_attrs(ds.attrs) and "coordinates" not in ds.attrs


def write_dataset(ds: Any, path: str | Path) -> None:
    """Write ``ds`` to ``path`` as netCDF-4 (h5py if :func:`handles`, else xarray)."""
    if not handles(ds):
        if hasattr(ds, "to_xarray"):  # a RunDataset (lenasim.simulation.dataset)
            ds = ds.to_xarray()
        ds.to_netcdf(path, engine=ENGINE)
        return
    import h5py

    dims = list(ds.dims)
    dim_id = {d: np.int32(i) for i, d in enumerate(dims)}
    non_index = [c for c in ds.coords if c not in ds.dims]
    with h5py.File(path, "w", track_order=True) as f:
        # Data variables first, then coordinates (h5netcdf's order); scales attached last.
        made = {}
        for name in [*ds.data_vars, *ds.coords]:
            var = ds[name].variable
            values = np.ascontiguousarray(var.values)
            is_float = values.dtype.kind == "f"
            if values.dtype.kind in "fiu":
                h = f.create_dataset(name, data=values, track_order=True,
                                     fillvalue=np.nan if is_float else None)  # fmt: skip
            else:
                h = f.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype(),
                                     track_order=True)  # fmt: skip
            if name in ds.dims:
                h.make_scale(name)
                h.attrs["_Netcdf4Dimid"] = dim_id[name]
            else:
                h.attrs["_Netcdf4Dimid"] = dim_id[var.dims[0]]
            h.attrs["_Netcdf4Coordinates"] = np.array([dim_id[d] for d in var.dims], np.int32)
            if is_float:
                h.attrs["_FillValue"] = np.array([np.nan], values.dtype)
            _put_attrs(h, var.attrs)
            if name in ds.data_vars:
                named = sorted(c for c in non_index if set(ds[c].dims) <= set(var.dims))
                if named:
                    h.attrs["coordinates"] = " ".join(named)
            made[name] = h
        for name, h in made.items():
            if name not in ds.dims:
                for i, d in enumerate(ds[name].dims):
                    h.dims[i].attach_scale(made[d])
        _put_attrs(f, ds.attrs)
        f.attrs["_NCProperties"] = np.bytes_(
            f"version=2,lenasim={__version__},hdf5={h5py.version.hdf5_version},h5py={h5py.__version__}"
        )


def _is_str(values: np.ndarray) -> bool:
    if values.dtype.kind == "U":
        return True
    return values.dtype.kind == "O" and all(isinstance(x, str) for x in values.ravel())


def _plain_attrs(attrs: dict) -> bool:
    for k, v in attrs.items():
        if not isinstance(k, str) or k.startswith("_") or k in ("DIMENSION_LIST", "REFERENCE_LIST",
                                                                 "CLASS", "NAME"):  # fmt: skip
            return False
        if isinstance(v, str):
            continue
        if isinstance(v, bool | np.bool_):
            return False
        if isinstance(v, int | float | np.integer | np.floating):
            continue
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.size and v.dtype.kind in "fiu":
            continue
        return False
    return True


def _put_attrs(h, attrs: dict) -> None:
    """As h5netcdf writes them: strings as strings, numbers as one-element arrays."""
    for k, v in attrs.items():
        h.attrs[k] = v if isinstance(v, str | np.ndarray) else np.atleast_1d(v)
