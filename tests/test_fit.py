"""The diagnostics gate of `lenasim fit` (issue 3: R-hat <= 1.01, ESS >= 400, no
divergences; anything else fails the fit unless --allow-unconverged)."""

from __future__ import annotations

from lenasim.model.fit import format_diagnostics, gate

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
