"""A run's dataset (draws.nc: draw x event x cycle) as the command line holds it: a
:class:`RunDataset` of NumPy arrays with their dimension names and coordinates, and the
few label-based operations the run's outputs use (``ds[var]``, ``.sel``, ``.transpose``,
``.values``, ``sizes``, ``attrs``), in the names and meanings of xarray's, so that the
same output code reads a run in memory and a ``draws.nc`` read back by xarray.

It imports NumPy alone: ``python -m lenasim run`` imports it before forking the process
that draws the run's figures (:mod:`lenasim.pipeline.plots`), which unpickles it with
nothing more. The engine builds it (:func:`lenasim.simulation.results.dataset`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["DataArray", "RunDataset", "Variable"]


class Variable:
    """An array with named dimensions and attributes (``xarray.Variable``'s fields)."""

    encoding: Mapping[str, Any] = {}

    def __init__(self, dims: tuple[str, ...], values: np.ndarray, attrs: dict | None = None):
        self.dims = tuple(dims)
        self.values = np.asarray(values)
        if self.values.ndim != len(self.dims):
            raise ValueError(f"dims {self.dims} do not match an array of shape {self.values.shape}")
        self.attrs = {} if attrs is None else attrs

    @property
    def ndim(self) -> int:
        return self.values.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape


class DataArray:
    """One variable of a :class:`RunDataset` with the coordinates on its dimensions:
    ``values``, ``dims``, ``attrs``, ``sel`` by label, ``transpose``, ``da[coord]``."""

    def __init__(self, variable: Variable, coords: dict[str, Variable]) -> None:
        self.variable = variable
        self._coords = coords

    values = property(lambda self: self.variable.values)
    dims = property(lambda self: self.variable.dims)
    attrs = property(lambda self: self.variable.attrs)
    ndim = property(lambda self: self.variable.ndim)
    dtype = property(lambda self: self.variable.dtype)
    shape = property(lambda self: self.variable.shape)
    coords = property(lambda self: self._coords)

    @property
    def sizes(self) -> dict[str, int]:
        return dict(zip(self.dims, self.values.shape, strict=True))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.values, dtype=dtype)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, name: str) -> DataArray:
        if not isinstance(name, str) or name not in self._coords:
            raise KeyError(f"{name!r} is not a coordinate of this array")
        var = self._coords[name]
        return DataArray(
            var, {c: v for c, v in self._coords.items() if set(v.dims) <= set(var.dims)}
        )

    def sel(self, **indexers: Any) -> DataArray:
        """Select by coordinate label: a scalar drops the dimension, a list or array keeps
        it (in the order given), a slice keeps the labels from start to stop inclusive."""
        values, dims, coords = self.values, list(self.dims), dict(self._coords)
        for dim, label in indexers.items():
            if dim not in dims:
                raise ValueError(f"{dim!r} is not a dimension of this array ({dims})")
            index = np.asarray(coords[dim].values)
            pos = _positions(index, label, dim)
            axis = dims.index(dim)
            values = np.take(values, pos, axis=axis)
            for c, v in list(coords.items()):
                if dim in v.dims:
                    if np.ndim(pos) == 0:
                        del coords[c]
                    else:
                        coords[c] = Variable(v.dims, np.take(v.values, pos, axis=v.dims.index(dim)),
                                             v.attrs)  # fmt: skip
            if np.ndim(pos) == 0:
                dims.pop(axis)
        return DataArray(Variable(tuple(dims), values, self.attrs), coords)

    def transpose(self, *dims: Any) -> DataArray:
        """The array with its dimensions in the order given (``...``: the others, in order)."""
        named = [d for d in dims if d is not Ellipsis]
        missing = [d for d in named if d not in self.dims]
        if missing:
            raise ValueError(f"{missing} are not dimensions of this array ({self.dims})")
        rest = [d for d in self.dims if d not in named]
        if Ellipsis in dims:
            i = dims.index(Ellipsis)
            order = [*named[:i], *rest, *named[i:]]
        elif rest:
            raise ValueError(f"transpose needs every dimension of {self.dims}")
        else:
            order = named
        axes = [self.dims.index(d) for d in order]
        return DataArray(Variable(tuple(order), np.transpose(self.values, axes), self.attrs),
                         self._coords)  # fmt: skip


def _positions(index: np.ndarray, label: Any, dim: str) -> Any:
    """The positions in ``index`` of a label, of labels (a list or array), or of a slice of
    labels (inclusive, in a sorted index)."""
    if isinstance(label, slice):
        lo = 0 if label.start is None else int(np.searchsorted(index, label.start, "left"))
        hi = len(index) if label.stop is None else int(np.searchsorted(index, label.stop, "right"))
        return np.arange(lo, hi)
    where = {v: i for i, v in enumerate(index.tolist())}
    labels = np.asarray(label)
    try:
        if labels.ndim == 0:
            return where[labels.item()]
        return np.array([where[v] for v in labels.tolist()], dtype=np.intp)
    except KeyError as err:
        raise KeyError(f"{err.args[0]!r} is not a label of {dim!r}") from None


class RunDataset:
    """A run's draws (see the module docstring): data variables and coordinates, each a
    :class:`Variable`, in the order draws.nc holds them, and the run's attributes."""

    def __init__(self, data_vars: dict[str, Variable], coords: dict[str, Variable],
                 attrs: dict | None = None) -> None:  # fmt: skip
        self._data = dict(data_vars)
        self._coords = dict(coords)
        self.attrs = {} if attrs is None else attrs
        sizes: dict[str, int] = {}
        for var in [*self._coords.values(), *self._data.values()]:
            for d, n in zip(var.dims, var.shape, strict=True):
                if sizes.setdefault(d, n) != n:
                    raise ValueError(f"dimension {d!r} has sizes {sizes[d]} and {n}")
        self.sizes = {d: sizes[d] for d in self._coords if d in sizes}
        self.sizes.update({d: n for d, n in sizes.items() if d not in self.sizes})

    @property
    def dims(self) -> dict[str, int]:
        return self.sizes

    @property
    def data_vars(self) -> dict[str, DataArray]:
        return {name: self[name] for name in self._data}

    @property
    def coords(self) -> dict[str, DataArray]:
        return {name: self[name] for name in self._coords}

    @property
    def variables(self) -> dict[str, Variable]:
        return {**self._data, **self._coords}

    @property
    def indexes(self) -> dict[str, np.ndarray]:
        """The index coordinates (one per dimension that has one)."""
        return {d: self._coords[d].values for d in self.sizes if d in self._coords}

    def __contains__(self, name: object) -> bool:
        return name in self._data or name in self._coords

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __getitem__(self, name: str) -> DataArray:
        var = self._data.get(name, self._coords.get(name))
        if var is None:
            raise KeyError(f"{name!r} is not a variable of the run's dataset")
        coords = {c: v for c, v in self._coords.items() if set(v.dims) <= set(var.dims)}
        return DataArray(var, coords)

    def to_xarray(self) -> Any:
        """The same dataset as an ``xarray.Dataset`` (imports xarray)."""
        import xarray as xr

        coords = {}
        for name, v in self._coords.items():
            coords[name] = v.values.tolist() if name == "event" else v.values
            if v.dims != (name,):
                coords[name] = (v.dims, v.values)
        ds = xr.Dataset({n: (v.dims, v.values) for n, v in self._data.items()}, coords=coords)
        for name, v in self._data.items():
            ds[name].attrs.update(v.attrs)
        ds.attrs.update(self.attrs)
        return ds
