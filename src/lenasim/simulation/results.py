"""The engine's results: the compiled kernel's result rows (their columns are laid out by
:class:`lenasim.simulation.streams.Layout`) gathered per variable, and the dataset of a
run (draws.nc: draw x event x cycle) with each variable's description.

The dataset is a :class:`RunDataset`: NumPy arrays with their dimension names and
coordinates, and the few label-based operations the run's outputs use (``ds[var]``,
``.sel``, ``.transpose``, ``.values``, ``sizes``, ``attrs``), in the names and meanings of
xarray's, so that the same output code reads a run in memory and a ``draws.nc`` read back
by xarray. It imports nothing beyond NumPy (xarray and pandas cost ~0.4 s of a 1 s run);
:meth:`RunDataset.to_xarray` gives the ``xarray.Dataset`` that callers doing arithmetic
on it (a population mixed from groups, a search, the explorer) get from
:func:`dataset`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from lenasim.core.regimen import Schedule, nominal_features
from lenasim.core.vocabulary import DOSE_COLUMNS, OUTPUT_EVENTS
from lenasim.simulation.streams import Layout

__all__ = ["DOSE_VARS", "DataArray", "Results", "RunDataset", "Variable", "dataset"]

DOSE_VARS = DOSE_COLUMNS  # the per-cycle dose outputs, in the order of the tables
EVENT_VARS = ("per_cycle", "per_cycle_sampled", "cumulative")


class Results:
    """The outputs of a run of ``n_draws`` draws over ``n_cycles`` cycles, filled chunk by
    chunk from the kernel's result rows (:meth:`store`)."""

    def __init__(self, lay: Layout, n_draws: int, n_cycles: int) -> None:
        self.lay = lay
        self.out = {v: np.full((n_draws, lay.n_outputs, n_cycles), np.nan) for v in EVENT_VARS}
        for v in DOSE_VARS:
            self.out[v] = np.full((n_draws, n_cycles), np.nan)

    def store(self, j0: int, j1: int, res: np.ndarray) -> None:
        """The result rows ``res`` (j1 - j0, C, lay.n_res) of draws j0..j1."""
        lay, n_out = self.lay, self.lay.n_outputs
        for v, col in (("per_cycle", lay.r_p), ("per_cycle_sampled", lay.r_sampled),
                       ("cumulative", lay.r_cum)):  # fmt: skip
            self.out[v][j0:j1] = res[:, :, col : col + n_out].transpose(0, 2, 1)
        for i, v in enumerate(DOSE_VARS):
            self.out[v][j0:j1] = res[:, :, lay.r_dose + i]


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


DOC = {
    "per_cycle": ("probability of the event in the cycle for a patient who starts it "
                  "(Rao-Blackwellised: mean of p over the patients starting the cycle)"),
    "per_cycle_sampled": "share of the patients starting the cycle who had the event (sampled)",
    "cumulative": ("probability of at least one event by the end of the cycle, of all "
                   "patients (Rao-Blackwellised)"),
    "dose_mean_mg": ("mean daily dose on the days on drug (mg/day), mean over patients "
                     "starting the cycle (0 in cycles without lenalidomide)"),
    "dose_intensity": "mg delivered per day of the cycle, mean over patients starting it",
    "planned_intensity": "nominal mg per day of the cycle under the regimen (no events)",
    "share_on": "share of all patients who start the cycle",
    "share_at_target": "share of the patients starting the cycle whose dose reaches the target",
    "share_held": "share of the patients starting the cycle held or reduced in it",
    "share_reduced": "share of the patients starting the cycle reduced one level after it",
    "share_stopped": "share of all patients discontinued by the end of the cycle",
}  # fmt: skip
UNITS = {"dose_mean_mg": "mg/day", "dose_intensity": "mg/day", "planned_intensity": "mg/day"}


def dataset(
    out: dict[str, np.ndarray],
    schedule: Schedule,
    keys: np.ndarray,
    name: str,
    seed: int,
    n_patients: int,
    population_effect: str,
    events: tuple[str, ...] = OUTPUT_EVENTS,
    *,
    light: bool = False,
) -> Any:
    """Assemble draws.nc. Dims: draw, event, cycle (1-based). An ``xarray.Dataset``, or
    with ``light`` the :class:`RunDataset` it is made from (no xarray imported)."""
    n_cyc = schedule.n_cycles
    coords = {
        "draw": Variable(("draw",), np.arange(keys.size)),
        "event": Variable(("event",), np.array(list(events))),
        "cycle": Variable(("cycle",), np.arange(1, n_cyc + 1)),
        "posterior_index": Variable(("draw",), keys.astype(np.int64)),
    }
    data = {}
    for v in EVENT_VARS:
        data[v] = Variable(("draw", "event", "cycle"), out[v])
    for v in DOSE_VARS:
        data[v] = Variable(("draw", "cycle"), out[v])
    data["planned_intensity"] = Variable(
        ("cycle",), np.asarray(nominal_features(schedule)["intensity"], float)
    )
    for v, var in data.items():
        var.attrs = {"description": DOC[v], **({"units": UNITS[v]} if v in UNITS else {})}
    attrs = {"scenario": name, "seed": int(seed), "n_patients": int(n_patients),
             "population_effect": population_effect}  # fmt: skip
    ds = RunDataset(data, coords, attrs)
    return ds if light else ds.to_xarray()
