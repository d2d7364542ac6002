"""The diagnostics gate of `lenasim fit` (issue 3: R-hat <= 1.01, ESS >= 400, no
divergences; anything else fails the fit unless --allow-unconverged)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_draws
from lenasim.model.fit import format_diagnostics, gate


def _benchmark_module(name: str):
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).parents[2] / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOOD = {
    "max_rhat": 1.004,
    "max_rhat_at": "u",
    "min_ess_bulk": 802.0,
    "min_ess_bulk_at": "intercept",
    "min_ess_tail": 905.0,
    "min_ess_tail_at": "tau",
    "divergences": 0,
    "chains": 4,
    "draws": 1000,
}


def test_gate_passes_a_converged_fit():
    assert gate(GOOD) == []
    assert format_diagnostics(GOOD, []).endswith("PASS")


def test_gate_names_every_failure():
    bad = GOOD | {"max_rhat": 1.02, "min_ess_bulk": 399.0, "min_ess_tail": 120.0, "divergences": 3}
    fails = gate(bad)
    assert len(fails) == 4
    assert any("R-hat 1.020 > 1.01 (u)" in f for f in fails)
    assert any("bulk ESS 399 < 400" in f for f in fails)
    assert any("tail ESS 120 < 400 (tau)" in f for f in fails)
    assert any("3 divergent" in f for f in fails)
    assert "FAIL" in format_diagnostics(bad, fails)


def test_gate_fails_on_nan_diagnostics():
    """A NaN R-hat (e.g. a stuck chain) must not pass silently."""
    assert gate(GOOD | {"max_rhat": float("nan")})


def test_compact_likelihood_equals_the_masked_grid_definition():
    """row_probabilities (hazard on the counted cycles only, grouped in blocks) against the
    earlier masked-grid implementation (benchmarks/legacy_likelihood.py, an independent
    transcription of the module docstring's formulas) on the fitted evidence, 64 random
    parameter draws with frailty and trial effects: the same rates to rounding, and the
    same Var(S) for the components of ``cycles`` rows."""
    legacy = _benchmark_module("legacy_likelihood").row_probabilities
    from lenasim.core.hazard import EVENTS
    from lenasim.model.fit import load_data
    from lenasim.model.likelihood import params_from_draws, row_probabilities
    from lenasim.model.spec import load_spec

    spec = load_spec("models/default.yaml")
    data = load_data(spec)
    rng = np.random.default_rng(5)
    draws = make_draws(64, seed=5, spread=1.0, terms=spec.terms_map(), sigma=1.5)
    u = rng.normal(0, 0.8, size=(64, len(data.trials), len(EVENTS)))
    params = params_from_draws(draws, len(data.trials), u)
    P, var_s = row_probabilities(params, data, spec.terms_map())
    P_ref, var_ref = legacy(params, data, spec.terms_map())
    assert np.ptp(P_ref) > 0.5  # rates across the range, not a degenerate check
    np.testing.assert_allclose(P, P_ref, rtol=0, atol=1e-13)
    used = data.mixing[data.cycles].any(axis=0)  # components of cycles rows
    assert used.any()
    np.testing.assert_allclose(var_s[:, used], var_ref[:, used], rtol=1e-12)
    np.testing.assert_array_equal(var_s[:, ~used], 0.0)


# ------------------------------------------------------------------ fitting a tiny table

TINY_ROWS = ["ck06_a_flare", "ck06_b_flare", "ck06_a_tls", "ck06_pooled_neutropenia",
             "aue_flare_c1", "aue_neutropenia_cycles", "blum_tls"]  # fmt: skip


def _tiny_spec(tmp_path: Path):
    """A reduced model (dose and first-exposure terms, 5 nodes, short chains) written to
    ``tmp_path/models/tiny.yaml``, and seven real evidence rows of four trials (every unit)."""
    import yaml

    from lenasim.evidence.table import fitted_rows, load_evidence

    d = yaml.safe_load(Path("models/default.yaml").read_text())
    d |= {"name": "tiny", "quadrature_nodes": 5}
    d["events"] = {"flare": {"terms": ["log_dose", "first"]}, "tls": {"terms": ["log_dose"]},
                   "neutropenia": {"terms": ["log_dose"]}}  # fmt: skip
    d["severity"] = {"terms": ["log_dose"]}
    d["sampler"] |= {"draws": 100, "tune": 100, "chains": 2}
    (tmp_path / "models").mkdir(exist_ok=True)
    path = tmp_path / "models" / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    rows = fitted_rows(load_evidence())
    rows = rows[rows["row_id"].isin(TINY_ROWS)].reset_index(drop=True)
    assert len(rows) == len(TINY_ROWS)
    return path, rows


@pytest.fixture(scope="module")
def tiny_fitter(tmp_path_factory):
    from lenasim.model.fit import Fitter, load_data
    from lenasim.model.spec import load_spec

    path, rows = _tiny_spec(tmp_path_factory.mktemp("tiny"))
    spec = load_spec(path)
    return Fitter(spec, load_data(spec, rows)).compile()


@pytest.mark.slow  # a real NUTS fit (README: slow tests)
def test_fit_smoke_on_a_tiny_table(tmp_path):
    """`fit` end to end on seven rows: a posterior file with its provenance, diagnostics
    computed, the prior group from the model's own prior; no plots (they have their own
    tests)."""
    import arviz as az

    from lenasim.model.fit import fit_spec

    path, rows = _tiny_spec(tmp_path)
    out = tmp_path / "tiny.nc"
    res = fit_spec(path, rows=rows, out=out, plots=False, quiet=True, allow_unconverged=True)
    assert res.path == out and out.exists()
    idata = az.from_netcdf(str(out), engine="h5netcdf")
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 100
    assert "p_row" in idata.posterior and "prior" in idata.groups()
    assert json.loads(idata.posterior.attrs["trials"]) == sorted(set(rows["trial"]))
    assert set(res.diagnostics) >= {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences"}
    assert res.failures == gate(res.diagnostics)


@pytest.mark.slow  # a real NUTS fit (README: slow tests)
def test_same_seed_same_draws_other_seed_other_draws(tiny_fitter):
    """Reproducibility (issue 13, item 5): the same compiled model, settings and seed give
    bit-identical draws (nutpie's chains each have their own seeded stream, whatever the
    thread scheduling); another seed gives other draws; row weights change the posterior."""
    a = tiny_fitter.sample(seed=3).idata.posterior
    b = tiny_fitter.sample(seed=3).idata.posterior
    c = tiny_fitter.sample(seed=4).idata.posterior
    for name in ("intercept", "beta_flare", "tau", "sigma", "u", "p_row"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert not np.array_equal(a["intercept"].values, c["intercept"].values)
    w = np.ones(len(tiny_fitter.data.rows))
    w[0] = 0.0
    d = tiny_fitter.sample(seed=3, weights=w).idata.posterior
    assert not np.array_equal(a["intercept"].values, d["intercept"].values)
