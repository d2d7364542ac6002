"""Read the draws.nc that lenasim wrote, with h5py directly, into the Dataset that
``xr.load_dataset`` returns.

``xr.load_dataset`` (xarray through h5netcdf) spends ~12 ms on a run's draws.nc, most
of it h5netcdf's lookups of HDF5 objects and attributes, each opened several times;
`compare` reads every run it compares, the run report its own. :func:`read_dataset`
opens each object once with h5py's low-level API and reads only the attributes that
carry something, then builds the Dataset as xarray's CF decoding would, in ~3 ms.

It reads only the files that :func:`lenasim.outputs.tables.netcdf.write_dataset`
wrote itself (``_NCProperties`` names lenasim), whose layout it knows: one root group of
contiguous, unfiltered, fixed-size variables, numeric or variable-length strings;
every dimension a coordinate variable (an HDF5 dimension scale with its
``_Netcdf4Dimid``), every variable's dimensions in ``_Netcdf4Coordinates``; string and
numeric attributes; a NaN ``_FillValue`` on floats, non-index coordinates named in a
``coordinates`` attribute. Any attribute that xarray's decoding would act upon (scale,
offset, other fill values, time units, ...) or any other file (written by xarray, by an
older lenasim, or by anyone else) is read by ``xr.load_dataset``; the tests compare
both readers on written runs and on files of each refused kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_dataset"]

# HDF5 attributes that implement netCDF-4 itself (h5netcdf hides them).
_HIDDEN = frozenset({"REFERENCE_LIST", "CLASS", "DIMENSION_LIST", "NAME", "_Netcdf4Dimid",
                     "_Netcdf4Coordinates", "_nc3_strict", "_NCProperties"})  # fmt: skip
# Attributes that xarray's CF decoding would act upon (besides _FillValue, coordinates).
_DECODED = frozenset({"missing_value", "scale_factor", "add_offset", "_Unsigned", "dtype",
                      "_Encoding", "calendar", "bounds", "compress"})  # fmt: skip
_TIME_UNITS = frozenset({"days", "hours", "minutes", "seconds", "milliseconds", "microseconds",
                         "nanoseconds", "day", "hour", "minute", "second", "d", "h", "m", "s",
                         "ms", "us", "ns"})  # fmt: skip
# h5netcdf's encoding of a contiguous variable without filters (Variable.filters()).
_NO_FILTERS = {"zlib": False, "szip": False, "zstd": False, "bzip2": False, "blosc": False,
               "shuffle": False, "complevel": 0, "fletcher32": False}  # fmt: skip
_MARK = "lenasim="  # in _NCProperties of a file write_dataset wrote


class _Unsupported(Exception):
    """Not a file this reader knows (xarray reads it)."""


def read_dataset(path: str | Path) -> Any:
    """The xarray.Dataset of the netCDF-4 file ``path``, loaded in memory: the same
    variables in the same order, values, dtypes, coordinates, indexes, attributes and
    encodings as ``xr.load_dataset(path)`` (which reads any file this module does not
    know)."""
    import xarray as xr

    try:
        variables, coord_names, attrs = _read(path)
    except (_Unsupported, KeyError, OSError):  # not lenasim's layout, or not HDF5
        return xr.load_dataset(path)
    ds = xr.Dataset(variables, attrs=attrs)
    if coord_names:
        ds = ds.set_coords([c for c in variables if c in coord_names])
    ds.encoding = {"unlimited_dims": set(), "source": str(path)}
    return ds


def _read(path: str | Path) -> tuple[dict, set[str], dict]:
    """The decoded variables (in file order), the names of the non-index coordinates,
    and the global attributes."""
    import h5py
    import xarray as xr

    with h5py.File(path, "r") as f:
        gid = h5py.h5o.open(f.id, b"/")
        root, _ = _attr_names(gid)
        if "_NCProperties" not in root or _MARK.encode() not in _value(gid, "_NCProperties"):
            raise _Unsupported("not written by lenasim")
        glob = {k: _value(gid, k) for k in root if k not in _HIDDEN}
        if "coordinates" in glob or _DECODED & set(glob):
            raise _Unsupported("a global attribute xarray decodes")
        objects = {}
        for name in f:
            oid = h5py.h5o.open(f.id, name.encode())
            if not isinstance(oid, h5py.h5d.DatasetID):
                raise _Unsupported(f"{name}: not a variable")
            objects[name] = (oid, *_attr_names(oid))
        dim_of = {}  # dimension id -> name, from the coordinate variables
        for name, (oid, attrs, _) in objects.items():
            if "CLASS" in attrs:
                if _value(oid, "CLASS") != b"DIMENSION_SCALE" or len(oid.shape) != 1:
                    raise _Unsupported(f"{name}: not a coordinate variable")
                dim_of[int(_value(oid, "_Netcdf4Dimid"))] = name
        variables, coord_names, source = {}, set(), str(path)
        for name, (oid, attrs, cpl) in objects.items():
            ids = _value(oid, "_Netcdf4Coordinates")
            dims = tuple(dim_of[int(i)] for i in np.atleast_1d(ids))
            if len(dims) != len(oid.shape) or (name in dim_of.values() and dims != (name,)):
                raise _Unsupported(f"{name}: dimensions {dims}")
            data, dtype = _data(name, oid, cpl)
            if dtype is None:  # strings, decoded to a NumPy str array
                encoding = {"dtype": data.dtype}
            else:
                encoding = {"dtype": dtype, **_NO_FILTERS, "contiguous": True,
                            "chunksizes": None, "source": source, "original_shape": data.shape}  # fmt: skip
            plain = {}
            for k in attrs:
                if k in _HIDDEN:
                    continue
                value = _value(oid, k)
                if k == "_FillValue":
                    if data.dtype.kind != "f" or np.ndim(value) or not np.isnan(value):
                        raise _Unsupported(f"{name}: fill value {value!r}")
                    encoding[k] = value
                elif k == "coordinates":
                    named = value.split() if isinstance(value, str) else None
                    if not named or any(c not in objects for c in named):
                        raise _Unsupported(f"{name}: coordinates {value!r}")
                    coord_names.update(named)
                    encoding[k] = value
                elif k in _DECODED or (k == "units" and _time_like(value)):
                    raise _Unsupported(f"{name}: attribute {k}")
                else:
                    plain[k] = value
            variables[name] = xr.Variable(dims, data, plain, encoding, fastpath=True)
    return variables, coord_names, glob


def _attr_names(oid) -> tuple[list[str], Any]:
    """An object's attribute names in h5py's order (creation order if tracked, else
    by name), and its creation property list."""
    import h5py

    cpl = oid.get_create_plist()
    tracked = cpl.get_attr_creation_order() & h5py.h5p.CRT_ORDER_TRACKED
    names: list[bytes] = []
    h5py.h5a.iterate(oid, lambda name, *_: names.append(name),
                     index_type=h5py.h5.INDEX_CRT_ORDER if tracked else h5py.h5.INDEX_NAME)  # fmt: skip
    return [n.decode("utf-8", "surrogateescape") for n in names], cpl


def _value(oid, key: str) -> Any:
    """An attribute as h5netcdf and xarray return it: a str (a variable-length string), a
    numeric scalar, a numeric array (a one-element array becomes its element), or bytes
    (a fixed-length string: the netCDF-4 attributes read here). Anything else is left to
    xarray. (Types and shapes read at the low level: h5py's ``AttrID.dtype`` and
    ``.shape`` cost three times as much.)"""
    import h5py

    aid = h5py.h5a.open(oid, key.encode("utf-8", "surrogateescape"))
    htype, space = aid.get_type(), aid.get_space()
    if space.get_simple_extent_type() == h5py.h5s.NULL:
        raise _Unsupported(f"attribute {key}: empty")
    shape = space.get_simple_extent_dims()
    kind = htype.get_class()
    if kind in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        dtype = htype.dtype
        if dtype.isnative and dtype.metadata is None and len(shape) <= 1 and 0 not in shape:
            arr = np.empty(shape, dtype)
            aid.read(arr, mtype=htype)
            if arr.ndim == 0:
                return arr[()]
            return arr[0] if arr.size == 1 else arr
    elif kind == h5py.h5t.STRING and shape == ():
        if htype.is_variable_str():
            arr = np.empty((), object)
            aid.read(arr, mtype=_vlen_str(htype.get_cset()))
            return arr[()].decode("utf-8", "surrogateescape")
        if key in _HIDDEN:
            arr = np.empty((), f"S{htype.get_size()}")
            aid.read(arr, mtype=htype)
            return bytes(arr[()])
    raise _Unsupported(f"attribute {key}: HDF5 type class {kind}, shape {shape}")


def _vlen_str(cset: int) -> Any:
    """The memory type that reads a variable-length string of character set ``cset`` as
    bytes (as h5py reads it before decoding)."""
    import h5py

    if cset not in _VLEN_STR:
        encoding = "utf-8" if cset == h5py.h5t.CSET_UTF8 else "ascii"
        _VLEN_STR[cset] = h5py.h5t.py_create(h5py.string_dtype(encoding))
    return _VLEN_STR[cset]


_VLEN_STR: dict[int, Any] = {}


def _data(name: str, oid, dcpl) -> tuple[np.ndarray, Any]:
    """A variable's values and its encoding's dtype, as xarray decodes them: numbers as
    stored; variable-length strings as a NumPy str array (encoding dtype None: the
    array's own, as xarray leaves it)."""
    import h5py

    layout = dcpl.get_layout()
    space = oid.get_space()
    if (layout not in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT) or dcpl.get_nfilters()
            or space.get_simple_extent_dims(True) != oid.shape):  # fmt: skip
        raise _Unsupported(f"{name}: chunked, filtered or resizable")
    htype = oid.get_type()
    kind = htype.get_class()
    if kind in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        dtype = htype.dtype.newbyteorder("=")  # as netCDF4 and h5netcdf give it: float64
        if htype.dtype.isnative and dtype.metadata is None:
            arr = np.empty(oid.shape, dtype)
            oid.read(h5py.h5s.ALL, h5py.h5s.ALL, arr, mtype=htype)
            return arr, dtype
    elif kind == h5py.h5t.STRING and htype.is_variable_str():
        raw = np.empty(oid.shape, object)
        oid.read(h5py.h5s.ALL, h5py.h5s.ALL, raw, mtype=_vlen_str(htype.get_cset()))
        strings = np.empty(raw.size, dtype=object)
        strings[:] = [b.decode("utf-8") for b in raw.flat]
        # xarray's ObjectVLenStringCoder: astype(str), the encoding its new dtype alone
        return strings.reshape(oid.shape).astype(str), None
    raise _Unsupported(f"{name}: HDF5 type class {kind}")


def _time_like(units: Any) -> bool:
    """Units that xarray decodes to datetimes or timedeltas."""
    return not isinstance(units, str) or " since " in units or units.strip().lower() in _TIME_UNITS
