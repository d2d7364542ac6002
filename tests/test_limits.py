"""Risk limits: the definition (core.limits) and their evaluation on draws (outputs.limits),
checked on hand-made datasets whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pydantic import ValidationError

from lenasim.core.limits import DEFAULT_LIMITS, RiskLimit, RiskLimits
from lenasim.outputs.limits import (
    evaluate_limits,
    interval_probabilities,
    paired_safer,
    risk_draws,
)

EVENTS = ["flare", "flare_grade3plus", "tls", "neutropenia"]


def dataset(per_cycle: np.ndarray, cumulative: np.ndarray | None = None) -> xr.Dataset:
    """per_cycle: (draw, event, cycle)."""
    s, e, c = per_cycle.shape
    cum = 1 - np.cumprod(1 - per_cycle, axis=2) if cumulative is None else cumulative
    coords = {"draw": np.arange(s), "event": EVENTS, "cycle": np.arange(1, c + 1)}
    dims = ("draw", "event", "cycle")
    return xr.Dataset({"per_cycle": (dims, per_cycle), "cumulative": (dims, cum)}, coords=coords)


def test_short_form_and_defaults():
    lim = RiskLimits.model_validate({"tls": {"cycle": 1, "max": 0.02}, "max_probability": 0.1})
    assert lim.max_probability == 0.1 and lim.items()[0][0] == "tls"
    assert [e for e, _ in DEFAULT_LIMITS.items()] == ["flare_grade3plus", "tls"]
    assert DEFAULT_LIMITS.max_probability == 0.25


@pytest.mark.parametrize(
    "bad",
    [{"tsl": {"max": 0.02}}, {"tls": {"max": 1.5}}, {"tls": {"max": 0.02, "cycles": 1}},
     {"tls": {"max": 0.02}, "max_probability": 0}],
)  # fmt: skip
def test_bad_limits_are_refused(bad):
    with pytest.raises(ValidationError):
        RiskLimits.model_validate(bad)


def test_p_exceed_and_verdict_match_the_share_of_draws_above():
    # 100 draws of cycle-1 TLS risk 0.00, 0.001, ..., 0.099: 79 are above 0.02 (0.021..0.099).
    s = 100
    pc = np.zeros((s, 4, 3))
    pc[:, 2, 0] = np.arange(s) / 1000
    ds = dataset(pc)
    out = evaluate_limits(ds, RiskLimits.model_validate({"tls": {"cycle": 1, "max": 0.02}}))
    row = out.iloc[0]
    assert row["p_exceed"] == pytest.approx(0.79)
    assert not row["acceptable"]
    out = evaluate_limits(ds, RiskLimits.model_validate({"tls": {"max": 0.08}}))
    assert out.iloc[0]["p_exceed"] == pytest.approx(0.19) and out.iloc[0]["acceptable"]


def test_cumulative_limit_reads_the_last_cycle_by_default():
    pc = np.full((10, 4, 4), 0.01)
    ds = dataset(pc)
    lim = RiskLimit(cumulative=True, max=0.05)
    np.testing.assert_allclose(risk_draws(ds, "tls", lim), 1 - 0.99**4)
    assert (
        "by the end of cycle 4"
        in evaluate_limits(ds, RiskLimits(events={"tls": lim})).iloc[0]["limit"]
    )
    with pytest.raises(ValueError, match="cycle 9"):
        risk_draws(ds, "tls", RiskLimit(cycle=9, max=0.1))


def test_interval_probabilities_sum_to_one_and_place_draws():
    pc = np.zeros((4, 4, 1))
    pc[:, 0, 0] = [0.1, 0.2, 0.5, 1.0]  # flare: bands 0-16, 16-33, 33-100
    out = interval_probabilities(dataset(pc))
    flare = out[out["event"] == "flare"]["probability"].tolist()
    assert flare == [0.25, 0.25, 0.5]
    for _, g in out.groupby("event"):
        assert g["probability"].sum() == pytest.approx(1.0)


def test_paired_safer_counts_draws_and_says_identical():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 0.1, size=(200, 4, 1))
    b = a.copy()
    b[:150, 2, 0] *= 0.5  # lower TLS risk in 150 of 200 draws, equal in 50
    lim = RiskLimits.model_validate({"tls": {"max": 0.02}, "flare": {"max": 0.5}})
    out = paired_safer(dataset(a), dataset(b), lim).set_index("event")
    assert out.loc["tls", "p_safer"] == pytest.approx(150 / 200 + 0.5 * 50 / 200)
    assert not out.loc["tls", "identical"]
    assert out.loc["flare", "identical"] and out.loc["flare", "p_safer"] == 0.5
