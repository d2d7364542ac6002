"""Loading the posterior: the direct (h5py) reader gives exactly what the xarray reader
gives, hands anything it does not decode to xarray, and staleness is still detected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from helpers import assert_leaves_unimported
from lenasim.core.errors import PosteriorError
from lenasim.core.hazard import EVENTS, SEVERITY, HazardDraws
from lenasim.model import posterior

REPO = Path(__file__).resolve().parents[2]
NC, SPEC = REPO / "models" / "default.nc", REPO / "models" / "default.yaml"


def xarray_load(path: Path) -> tuple[dict, HazardDraws]:
    """The reference: the whole posterior group decoded by xarray."""
    attrs, build = posterior._read_xarray(Path(path))
    return attrs, build()


def direct_load(path: Path) -> tuple[dict, HazardDraws]:
    attrs, arrays, coords = posterior._read_direct(Path(path))
    return attrs, posterior._draws_from_arrays(arrays, coords)


def assert_same_draws(a: HazardDraws, b: HazardDraws) -> None:
    assert a.terms == b.terms
    for field in ("intercept", "tau", "sigma"):
        x, y = getattr(a, field), getattr(b, field)
        assert list(x) == list(y)
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape
            assert x[k].tobytes() == y[k].tobytes(), (field, k)  # bit for bit
    assert list(a.coefs) == list(b.coefs)
    for k in a.coefs:
        assert list(a.coefs[k]) == list(b.coefs[k])
        for t in a.coefs[k]:
            assert a.coefs[k][t].tobytes() == b.coefs[k][t].tobytes(), (k, t)


def assert_same_attrs(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert type(a[k]) is type(b[k]), (k, type(a[k]), type(b[k]))
        assert np.array_equal(a[k], b[k]), k


def test_direct_reader_equals_xarray_on_the_shipped_posterior():
    attrs_x, draws_x = xarray_load(NC)
    attrs_d, draws_d = direct_load(NC)
    assert_same_attrs(attrs_d, attrs_x)
    assert_same_draws(draws_d, draws_x)
    assert draws_d.n_draws == 4000
    # and load_posterior takes the direct path with these results
    post = posterior.load_posterior(NC, SPEC)
    assert_same_draws(post.draws, draws_x)
    assert_same_attrs(post.attrs, attrs_x)
    assert post.hash == posterior.file_hash(NC)


@pytest.mark.parametrize("chains", [1, 3])
def test_direct_reader_equals_xarray_on_a_written_posterior(tmp_path, draws, chains):
    """Chain-major flattening: sample k of chain c is row c * n_draw + k, as with
    xarray's stack(sample=("chain", "draw"))."""
    from builders import make_draws

    d = make_draws(60, seed=3)
    ds = posterior.dataset_from_draws(d, chains=chains)
    ds.attrs.update(spec_hash="s", evidence_hash="e", converged=1, seed=np.int64(5),
                    pair=np.array([1.5, 2.5]), note="json {\"a\": 1}")  # fmt: skip
    path = tmp_path / "p.nc"
    ds.to_netcdf(path, group="posterior", engine="h5netcdf")
    attrs_d, draws_d = direct_load(path)
    attrs_x, draws_x = xarray_load(path)
    assert_same_attrs(attrs_d, attrs_x)
    assert_same_draws(draws_d, draws_x)
    assert_same_draws(draws_d, d)  # and both give back what was written


def _write(tmp_path: Path, draws: HazardDraws, encoding: dict | None = None, **attrs) -> Path:
    ds = posterior.dataset_from_draws(draws, chains=2)
    ds.attrs.update({"evidence_hash": "e", "spec_hash": "s", "converged": 1, **attrs})
    path = tmp_path / "p.nc"
    ds.to_netcdf(path, group="posterior", engine="h5netcdf", encoding=encoding)
    return path


@pytest.mark.parametrize(
    "encoding",
    [
        {"intercept": {"_FillValue": -1.0}},  # xarray masks -1.0 to NaN
        {"tau": {"scale_factor": 0.5, "dtype": "int16", "_FillValue": -99}},  # packed
        {"sev_intercept": {"dtype": "float32"}},  # another dtype: fine either way
    ],
    ids=["fill-value", "scale-factor", "float32"],
)
def test_other_encodings_read_as_xarray_reads_them(tmp_path, draws, encoding):
    d = draws.take(np.arange(40))
    d.intercept["flare"][3] = -1.0  # meets the fill value of the first case
    path = _write(tmp_path, d, encoding)
    attrs_x, draws_x = xarray_load(path)
    post = posterior.load_posterior(path, check=False)
    assert_same_draws(post.draws, draws_x)
    assert_same_attrs(post.attrs, attrs_x)
    if "_FillValue" in encoding.get("intercept", {}):
        assert np.isnan(post.draws.intercept["flare"][3])  # decoded, not the raw -1.0
    if "float32" not in str(encoding):
        with pytest.raises(posterior._Unsupported):
            posterior._read_direct(path)


def test_attributes_the_direct_reader_leaves_to_xarray(tmp_path, draws):
    path = _write(tmp_path, draws, trials=["a", "b"], raw=b"bytes")
    with pytest.raises(posterior._Unsupported, match="attribute"):
        posterior._read_direct(path)
    attrs_x, _ = xarray_load(path)
    assert_same_attrs(posterior.load_posterior(path, check=False).attrs, attrs_x)


def test_missing_variable_is_not_a_lenasim_posterior(tmp_path, draws):
    ds = posterior.dataset_from_draws(draws).drop_vars("sev_beta")
    ds.attrs.update(evidence_hash="e", spec_hash="s", converged=1)
    path = tmp_path / "p.nc"
    ds.to_netcdf(path, group="posterior", engine="h5netcdf")
    with pytest.raises(PosteriorError, match=r"not a lenasim posterior \(missing 'sev_beta'\)"):
        posterior.load_posterior(path, check=False)


def test_missing_label_is_not_a_lenasim_posterior(tmp_path, draws):
    ds = posterior.dataset_from_draws(draws)
    ds = ds.assign_coords(event=["flare", "tls", "neutro"])
    ds.attrs.update(evidence_hash="e", spec_hash="s", converged=1)
    path = tmp_path / "p.nc"
    ds.to_netcdf(path, group="posterior", engine="h5netcdf")
    with pytest.raises(PosteriorError, match="not a lenasim posterior"):
        posterior.load_posterior(path, check=False)
    with pytest.raises(KeyError):
        xarray_load(path)  # the xarray reader refuses it too


def test_not_a_netcdf_file(tmp_path):
    path = tmp_path / "p.nc"
    path.write_text("not HDF5")
    with pytest.raises(PosteriorError, match="cannot read the posterior"):
        posterior.load_posterior(path, check=False)
    xr.Dataset({"x": ("d", [1.0])}).to_netcdf(tmp_path / "empty.nc", engine="h5netcdf")
    with pytest.raises(PosteriorError, match="cannot read the posterior"):
        posterior.load_posterior(tmp_path / "empty.nc", check=False)  # no posterior group


# --- staleness ----------------------------------------------------------------------


def test_changed_spec_is_stale(posterior_workdir):
    spec = posterior_workdir / "models" / "default.yaml"
    posterior.load_posterior("models/default.nc", spec)  # up to date
    text = spec.read_text()
    assert "sigma: 1.5" in text
    spec.write_text(text.replace("sigma: 1.5", "sigma: 1.6", 1))
    with pytest.raises(PosteriorError, match="is stale: the model spec .* changed since the fit"):
        posterior.load_posterior("models/default.nc", spec)


def test_changed_spec_comment_is_not_stale(posterior_workdir):
    """The spec hash is of its meaning (validated content), not of its bytes."""
    spec = posterior_workdir / "models" / "default.yaml"
    spec.write_text(spec.read_text() + "\n# a comment\n")
    posterior.load_posterior("models/default.nc", spec)


def test_changed_evidence_is_stale(posterior_workdir, monkeypatch):
    import lenasim.evidence.table

    monkeypatch.setattr(lenasim.evidence.table, "evidence_hash", lambda: "f" * 64)
    with pytest.raises(PosteriorError, match="is stale: the evidence table changed since the fit"):
        posterior.load_posterior("models/default.nc", "models/default.yaml")


def test_replaced_posterior_file_is_read_afresh(posterior_workdir):
    """Nothing is cached between loads: a refit file gives its own draws and hash."""
    from builders import make_draws

    first = posterior.load_posterior("models/default.nc", "models/default.yaml")
    attrs = {k: first.attrs[k] for k in ("evidence_hash", "spec_hash", "converged")}
    posterior.write_posterior("models/default.nc", make_draws(30, seed=99), attrs)
    second = posterior.load_posterior("models/default.nc", "models/default.yaml")
    assert second.draws.n_draws == 30 and second.hash != first.hash
    assert_same_draws(second.draws, make_draws(30, seed=99))


def test_loading_the_shipped_posterior_imports_neither_xarray_nor_scipy_special():
    code = (
        "from lenasim.model.posterior import load_posterior\n"
        f"p = load_posterior({str(NC)!r}, {str(SPEC)!r})\n"
        "assert p.draws.n_draws == 4000\n"
    )
    assert_leaves_unimported(code, ("xarray", "h5netcdf", "scipy.special", "pymc", "pytensor"))


def test_hazard_sigmoid_is_scipy_expit():
    """The NumPy backend's sigmoid (scipy imported on first use) is expit, bit for bit."""
    from scipy.special import expit

    from lenasim.core.hazard import NUMPY

    x = np.linspace(-800, 800, 20001)
    assert NUMPY.sigmoid(x).tobytes() == expit(x).tobytes()
    assert NUMPY.sigmoid(0.3) == expit(0.3)


def test_severity_and_events_are_complete(tmp_path):
    """Every hazard the simulator needs is read (a guard for _draw_dims)."""
    _, draws = direct_load(NC)
    assert set(draws.intercept) == {*EVENTS, SEVERITY}
    assert set(draws.tau) == set(EVENTS) == set(draws.sigma)
