"""The run's light dataset (lenasim.simulation.results.RunDataset, issue 22.11): the engine's
``light=True`` result holds the same numbers, names, coordinates and attributes as the
xarray.Dataset it returns by default, and its label-based operations (``sel``,
``transpose``, ``da[coord]``) select what xarray's select. xarray is the oracle: each
operation is compared with xarray's on the same data, with a draw count, events and
cycles chosen so that a swapped or shifted axis changes the values."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import xarray as xr

from builders import make_draws
from lenasim.core.regimen import Escalation, Regimen
from lenasim.simulation.engine import simulate
from lenasim.simulation.results import RunDataset
from lenasim.simulation.scenario import Population, Rules

SLOW = Regimen(
    cycle_days=28, days_on=(1, 21), start_mg=2.5, target_mg=10, cycles=6,
    escalation=Escalation(levels_mg=[2.5, 5, 10], every=1, unit="cycles"),
)  # fmt: skip


def _both() -> tuple[RunDataset, xr.Dataset]:
    draws = make_draws(7)
    kw = dict(n_patients=60, seed=3, posterior_index=np.arange(10, 17), name="x")
    pop, rules = Population(setting="untreated"), Rules(on_tls="discontinue")
    light = simulate(SLOW.expand(), pop, rules, draws, light=True, **kw)
    full = simulate(SLOW.expand(), pop, rules, draws, **kw)
    return light, full


def test_light_dataset_is_the_xarray_one():
    light, full = _both()
    assert isinstance(light, RunDataset) and isinstance(full, xr.Dataset)
    assert list(light.data_vars) == list(full.data_vars)
    assert list(light.coords) == list(full.coords)
    assert list(light.dims) == list(full.dims)
    assert dict(light.sizes) == dict(full.sizes)
    assert light.attrs == full.attrs
    for name in [*full.data_vars, *full.coords]:
        assert light[name].dims == full[name].dims, name
        np.testing.assert_array_equal(light[name].values, full[name].values)
        assert light[name].values.dtype == full[name].values.dtype, name
        assert light[name].attrs == full[name].attrs, name
    xr.testing.assert_identical(light.to_xarray(), full)
    assert "planned_intensity" in light and "posterior_index" in light.coords
    assert "nothing" not in light


@pytest.mark.parametrize(
    "sel",
    [
        {"event": "tls"},
        {"event": "flare", "cycle": 3},
        {"cycle": slice(2, 4)},
        {"event": "neutropenia", "cycle": slice(None, 2)},
        {"cycle": np.array([5, 1, 3])},
        {"draw": 4},
    ],
)
def test_sel_and_transpose_select_what_xarray_selects(sel):
    light, full = _both()
    a, b = light["per_cycle"].sel(**sel), full["per_cycle"].sel(**sel)
    assert a.dims == b.dims
    np.testing.assert_array_equal(a.values, b.values)
    for dims in (tuple(reversed(b.dims)), (..., b.dims[0])):
        np.testing.assert_array_equal(a.transpose(*dims).values, b.transpose(*dims).values)
        assert a.transpose(*dims).dims == b.transpose(*dims).dims
    for c in ("cycle", "draw", "posterior_index"):
        if c in b.coords and b[c].ndim == 1:
            np.testing.assert_array_equal(a[c].values, b[c].values)


def test_bad_labels_and_dims_are_errors():
    light, _ = _both()
    with pytest.raises(KeyError, match="'nope' is not a label of 'event'"):
        light["per_cycle"].sel(event="nope")
    with pytest.raises(ValueError, match="not a dimension"):
        light["dose_intensity"].sel(event="tls")
    with pytest.raises(KeyError):
        light["nothing"]


def test_light_dataset_pickles_without_xarray():
    light, _ = _both()
    back = pickle.loads(pickle.dumps(light))
    np.testing.assert_array_equal(back["cumulative"].values, light["cumulative"].values)
    assert back.attrs == light.attrs
