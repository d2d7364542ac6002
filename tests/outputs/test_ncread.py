"""lenasim.outputs.tables.netcdf_read reads the draws.nc that lenasim writes into the very
Dataset ``xr.load_dataset`` returns (variables and their order, values, dtypes, dims,
coordinates, indexes, attributes with their types, encodings), on simulated runs (light
and xarray, a population with characteristics, cycles nobody reaches) and written
datasets; files it does not know (written by xarray, attributes xarray decodes, another
writer, not HDF5) go to xarray, which decodes them as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from builders import make_draws, make_run_dataset
from lenasim.outputs.tables import netcdf as ncwrite
from lenasim.outputs.tables import netcdf_read

REPO = Path(__file__).resolve().parents[2]


def direct(path: Path) -> bool:
    """Whether the direct reader reads ``path`` itself (else it hands it to xarray)."""
    try:
        netcdf_read._read(path)
    except netcdf_read._Unsupported:
        return False
    return True


def same_mapping(a: dict, b: dict) -> bool:
    """Equal keys in the same order, equal values of the same types (NaN equals NaN)."""
    return list(a) == list(b) and all(
        type(a[k]) is type(b[k]) and repr(a[k]) == repr(b[k]) for k in a
    )


def assert_reads_as_xarray(path: Path) -> xr.Dataset:
    """``xr.load_dataset(path)`` (its default engine, as lenasim called it) and the
    direct reader give the same Dataset; h5netcdf's too (but for encodings)."""
    ours = netcdf_read.read_dataset(path)
    xr.testing.assert_identical(xr.load_dataset(path, engine="h5netcdf"), ours)
    ref = xr.load_dataset(path)
    xr.testing.assert_identical(ref, ours)
    assert list(ref.variables) == list(ours.variables)
    assert list(ref.dims) == list(ours.dims) and dict(ref.sizes) == dict(ours.sizes)
    assert list(ref.coords) == list(ours.coords)
    assert list(ref.data_vars) == list(ours.data_vars)
    assert same_mapping(ref.attrs, ours.attrs)
    assert ref.encoding == ours.encoding
    for name, var in ref.variables.items():
        got = ours.variables[name]
        assert type(var) is type(got) and var.dims == got.dims, name
        assert var.dtype == got.dtype, name
        assert same_mapping(var.attrs, got.attrs), name
        assert sorted(var.encoding) == sorted(got.encoding), name
        assert same_mapping(dict(sorted(var.encoding.items())),
                            dict(sorted(got.encoding.items()))), name  # fmt: skip
    for name, index in ref.indexes.items():
        assert index.equals(ours.indexes[name]) and index.dtype == ours.indexes[name].dtype
    return ours


def written(ds, path: Path) -> Path:
    ncwrite.write_dataset(ds, path)
    return path


def scenario(doc: Path | dict, **changes):
    """A config file's (or mapping's) scenario, 30 patients x 6 draws of the workdir-free
    synthetic draws (the scenario names the repo's spec)."""
    from lenasim.pipeline.run import scenario_from

    doc = yaml.safe_load(doc.read_text()) if isinstance(doc, Path) else doc
    doc["posterior"] = {"spec": "models/default.yaml", "draws": 6}
    doc["population"]["patients"] = 30
    doc.update(changes)
    return scenario_from(doc, "test config")


@pytest.mark.parametrize("light", [True, False])
def test_simulated_runs_read_as_xarray_reads_them(tmp_path, light):
    """The datasets `run` writes: light (RunDataset) and xarray's."""
    from lenasim.simulation.population import simulate_scenario

    sc = scenario(REPO / "configs" / "slow_escalation.yaml")
    index = np.array([0, 3, 7, 11, 20, 33])
    ds = simulate_scenario(sc, make_draws(40).take(index), posterior_index=index, light=light)
    path = written(ds, tmp_path / "draws.nc")
    assert direct(path)
    ours = assert_reads_as_xarray(path)
    assert ours["posterior_index"].values.tolist() == index.tolist()


def test_a_population_with_characteristics_and_cycles_nobody_reaches(tmp_path):
    """TLS near 100% in cycle 1 under "discontinue on TLS" (no patient starts cycle 2:
    NaN cells), on a population with characteristics (renal_origin)."""
    from lenasim.simulation.population import simulate_scenario

    doc = yaml.safe_load((REPO / "configs" / "patients" / "renal_origin.yaml").read_text())
    for regimen in [doc["regimen"], *(r["regimen"] for r in doc.get("renal_dosing", []))]:
        regimen["cycles"] = 3  # enough for cycles nobody reaches; the mixing costs per cycle
    sc = scenario(doc, rules={"on_tls": "discontinue"})
    assert sc.population.characteristics is not None
    draws = make_draws(6, seed=5, intercept={"tls": 9.0}, tau=0.3, sigma=0.3)
    ds = simulate_scenario(sc, draws, posterior_index=np.arange(6))
    path = written(ds, tmp_path / "draws.nc")
    assert direct(path)
    ours = assert_reads_as_xarray(path)
    per_cycle = ours["per_cycle"].values
    assert not np.isnan(per_cycle[:, :, 0]).any() and np.isnan(per_cycle[:, :, 1:]).all()


def run_like() -> xr.Dataset:
    """A run-shaped dataset (builders.make_run_dataset) with NaN cells, units, and
    string, integer, float and array attributes."""
    ds = make_run_dataset(n_draws=8, n_cycles=4, scenario="x", seed=3, n_patients=10,
                          posterior_index=np.arange(8, dtype=np.int64) * 2)  # fmt: skip
    ds["per_cycle"][0, :, 2:] = np.nan
    ds["per_cycle"].attrs.update(description="p", units="1", n=np.int32(4))
    ds["dose_mean_mg"].attrs["bounds_mg"] = np.array([2.5, 25.0])
    ds.attrs.update(ratio=0.25, sizes=np.array([1, 2, 3]), note="é ü")
    return ds


def test_written_datasets_read_as_xarray_reads_them(tmp_path):
    path = written(run_like(), tmp_path / "draws.nc")
    assert direct(path)
    assert_reads_as_xarray(path)


DECODED = ({"scale_factor": 0.5}, {"add_offset": 1.0}, {"missing_value": 2.5},
           {"units": "days since 2000-01-01"}, {"units": "hours"}, {"dtype": "bool"})  # fmt: skip


def small_run_like() -> xr.Dataset:
    """:func:`run_like` with two of its variables (NaN cells in one, array attributes on
    the other) and all its coordinates and global attributes: for the tests of files the
    direct reader leaves to xarray, whose every read and write costs per variable (~0.1 s
    of CPU per file of the whole dataset; issue 22.12)."""
    return run_like()[["per_cycle", "dose_mean_mg"]]


def test_attributes_xarray_decodes_go_to_xarray(tmp_path):
    """A variable attribute that xarray's CF decoding acts upon (or might: time units):
    the file is xarray's, which decodes it (values or dtype change; "hours" it leaves)."""
    plain = small_run_like()["dose_mean_mg"].values
    assert direct(written(small_run_like(), tmp_path / "plain.nc"))  # without the attribute
    for i, attrs in enumerate(DECODED):
        ds = small_run_like()
        ds["dose_mean_mg"].attrs.update(attrs)
        assert ncwrite.handles(ds)
        path = written(ds, tmp_path / f"draws{i}.nc")
        assert not direct(path), attrs
        got = assert_reads_as_xarray(path)["dose_mean_mg"].values
        changed = got.dtype != plain.dtype or not np.allclose(got, plain)
        assert changed == (attrs != {"units": "hours"}), attrs


def test_files_of_other_writers_go_to_xarray(tmp_path):
    ds = small_run_like()
    assert direct(written(ds, tmp_path / "ours.nc"))  # the same dataset, by lenasim
    by_xarray = tmp_path / "xarray.nc"
    ds.to_netcdf(by_xarray, engine="h5netcdf")
    assert not direct(by_xarray)
    assert_reads_as_xarray(by_xarray)

    import h5py

    other = written(ds, tmp_path / "other.nc")
    with h5py.File(other, "a") as f:
        f.attrs["_NCProperties"] = np.bytes_(b"version=2,netcdf=4.9.2,hdf5=1.14.3")
    assert not direct(other)
    assert_reads_as_xarray(other)


def test_a_file_that_is_not_netcdf_raises_as_xarray_does(tmp_path):
    path = tmp_path / "draws.nc"
    path.write_text("not a netCDF file\n")
    with pytest.raises(Exception) as ref:
        xr.load_dataset(path)
    with pytest.raises(type(ref.value)):
        netcdf_read.read_dataset(path)
