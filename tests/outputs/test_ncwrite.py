"""lenasim.outputs.tables.netcdf writes draws.nc as xarray (through h5netcdf) writes it: xarray and the
netCDF-C library (netCDF4-python) read the same dimensions, variables, values and
attributes from both files; datasets it does not handle go to xarray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from builders import make_run_dataset
from lenasim.outputs.tables import netcdf as ncwrite


def run_like(n_draws: int = 30, n_cycles: int = 5) -> xr.Dataset:
    """A dataset shaped as simulate's (builders.make_run_dataset), with NaN where nobody
    started a cycle, descriptions, units and a float attribute."""
    ds = make_run_dataset(n_draws=n_draws, n_cycles=n_cycles, scenario="slow_escalation",
                          seed=20261123, n_patients=1000,
                          posterior_index=4 * np.arange(n_draws, dtype=np.int64))  # fmt: skip
    ds["per_cycle"][0, :, 3:] = np.nan
    ds["per_cycle"].attrs["description"] = "p per cycle"
    ds["dose_mean_mg"].attrs["description"] = "mean dose"
    ds.attrs["ratio"] = 0.25
    return ds


def small_run_like() -> xr.Dataset:
    """:func:`run_like` with two of its variables (NaN cells in one, a description on the
    other) and all its coordinates, which ncwrite handles: for the tests of what a change
    to it does, xarray writing each variable ~15 ms (issue 22.12)."""
    ds = run_like()[["per_cycle", "dose_mean_mg"]]
    assert ncwrite.handles(ds) and "posterior_index" in ds.coords
    return ds


def netcdf_c_view(path: Path) -> tuple:
    """What the netCDF-C library reads: dimensions, variables (dims, dtype, attributes,
    values) and global attributes."""
    netCDF4 = pytest.importorskip("netCDF4")
    with netCDF4.Dataset(path) as nc:
        dims = {k: len(v) for k, v in nc.dimensions.items()}
        variables = {}
        for k, v in nc.variables.items():
            values = v[...]
            values = list(values) if v.dtype is str else np.ma.filled(values, np.nan).tolist()
            attrs = repr({a: np.asarray(v.getncattr(a)).tolist() for a in v.ncattrs()})  # NaN fill
            variables[k] = (v.dimensions, str(v.dtype), attrs, repr(values))
        glob = {a: np.asarray(nc.getncattr(a)).tolist() for a in nc.ncattrs()}
        return dims, variables, glob, nc.data_model


def both(tmp_path: Path, ds: xr.Dataset) -> tuple[Path, Path]:
    ref, ours = tmp_path / "xarray.nc", tmp_path / "ncwrite.nc"
    ds.to_netcdf(ref, engine="h5netcdf")
    ncwrite.write_dataset(ds, ours)
    return ref, ours


def test_same_file_for_xarray_and_netcdf_c(tmp_path):
    ds = run_like()
    assert ncwrite.handles(ds)
    ref, ours = both(tmp_path, ds)
    a, b = xr.load_dataset(ref), xr.load_dataset(ours)
    xr.testing.assert_identical(a, b)
    assert list(a.data_vars) == list(b.data_vars) and list(a.coords) == list(b.coords)
    assert a["event"].dtype == b["event"].dtype
    va, vb = netcdf_c_view(ref), netcdf_c_view(ours)
    assert va[0] == vb[0] and va[3] == vb[3] == "NETCDF4"
    assert va[1] == vb[1]  # every variable: dims, dtype, attributes, values
    assert [k for k in va[1] if k in ds.data_vars] == [k for k in vb[1] if k in ds.data_vars]
    assert {k: v for k, v in va[2].items() if k != "_NCProperties"} == vb[2]


def test_the_run_dataset_round_trips(tmp_path, posterior_workdir):
    """A real simulated dataset, written as `run` writes draws.nc."""
    from lenasim.model.posterior import load_posterior
    from lenasim.simulation.engine import simulate_scenario
    from lenasim.simulation.scenario import load_scenario

    repo = Path(__file__).resolve().parents[2]
    sc = load_scenario(repo / "configs" / "slow_escalation.yaml")
    post = load_posterior("models/default.nc", "models/default.yaml")
    idx = np.arange(0, 60, 3)
    ds = simulate_scenario(sc, post.draws.take(idx), n_patients=50, posterior_index=idx)
    assert ncwrite.handles(ds)
    ref, ours = both(tmp_path, ds)
    xr.testing.assert_identical(xr.load_dataset(ref), xr.load_dataset(ours))
    xr.testing.assert_identical(xr.load_dataset(ours), ds)
    assert netcdf_c_view(ref)[1] == netcdf_c_view(ours)[1]


@pytest.mark.parametrize(
    "change",
    [
        lambda ds: ds.assign(flag=("draw", np.ones(ds.sizes["draw"], bool))),  # bool variable
        lambda ds: ds.assign(total=((), 1.0)),  # scalar variable
        lambda ds: ds.drop_vars("cycle"),  # a dimension without coordinate
        lambda ds: ds.assign_attrs(flag=True),  # bool attribute
        lambda ds: ds.assign_attrs(names=["a", "b"]),  # list attribute
        lambda ds: xr.Dataset({"x": ("d", np.arange(3.0))}, coords={"d": [0, 1, 2]}).assign(
            s=("d", np.array(["a", "b", "c"], object))
        ),  # string data variable
    ],
    ids=["bool-var", "scalar", "no-coord", "bool-attr", "list-attr", "str-var"],
)
def test_other_datasets_are_written_by_xarray(tmp_path, change):
    ds = change(small_run_like())
    assert not ncwrite.handles(ds)
    ref = tmp_path / "ref.nc"
    try:
        ds.to_netcdf(ref, engine="h5netcdf")
    except Exception as err:  # noqa: BLE001 - xarray refuses it: so must ncwrite
        with pytest.raises(type(err)):
            ncwrite.write_dataset(ds, tmp_path / "ours.nc")
        return
    ncwrite.write_dataset(ds, tmp_path / "ours.nc")
    xr.testing.assert_identical(xr.load_dataset(ref), xr.load_dataset(tmp_path / "ours.nc"))


def test_a_dataset_read_from_disk_keeps_its_encoding(tmp_path):
    """Loaded datasets carry encoding (dtype, fill value, chunks): xarray writes those."""
    path = tmp_path / "a.nc"
    small_run_like().to_netcdf(path, engine="h5netcdf",
                               encoding={"per_cycle": {"dtype": "float32"}})  # fmt: skip
    loaded = xr.load_dataset(path)
    assert not ncwrite.handles(loaded)
    ncwrite.write_dataset(loaded, tmp_path / "b.nc")
    assert xr.load_dataset(tmp_path / "b.nc")["per_cycle"].encoding["dtype"] == np.float32


def test_same_netcdf4_bookkeeping_as_h5netcdf(tmp_path):
    """The HDF5 attributes netCDF-4 relies on (dimension ids, coordinates lists,
    dimension scales, fill values) are those h5netcdf writes, dataset by dataset."""
    import h5py

    ref, ours = both(tmp_path, run_like())

    def layout(path: Path) -> dict:
        out = {}
        with h5py.File(path, "r") as f:
            for name, h in f.items():
                attrs = {}
                for k in h.attrs:
                    v = h.attrs[k]
                    attrs[k] = len(v) if k in ("DIMENSION_LIST", "REFERENCE_LIST") else repr(v)
                out[name] = (h.dtype.str, h.shape, repr(h.fillvalue), attrs)
        return out

    assert layout(ref) == layout(ours)
