"""Risk limits: the definition (core.limits) and their evaluation on draws (outputs.limits),
checked on hand-made datasets whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pydantic import ValidationError

from lenasim.core.limits import DEFAULT_LIMITS, RiskLimit, RiskLimits
from lenasim.outputs.judgements.limits import (
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


# ---------------------------------------------------------------- issue 22: limits that do
# not claim more than they know


def test_the_default_tls_limit_cannot_be_passed_by_moving_the_risk_later():
    """A schedule whose TLS risk is low in cycle 1 but high at a later escalation step
    passed the old cycle-1 limit; the default limit bounds every cycle of the horizon."""
    s, c = 400, 8
    rng = np.random.default_rng(5)
    pc = np.full((s, 4, c), 0.001)
    pc[:, 2, 0] = rng.uniform(0.0, 0.015, s)  # cycle 1: below 2% in every draw
    late = pc.copy()
    late[:, 2, 4] = rng.uniform(0.01, 0.2, s)  # cycle 5: the step where the risk moved
    old = RiskLimits.model_validate({"tls": {"cycle": 1, "max": 0.02}})
    assert evaluate_limits(dataset(late), old).iloc[0]["acceptable"]  # the gamed limit
    row = evaluate_limits(dataset(late), DEFAULT_LIMITS).set_index("event").loc["tls"]
    assert not row["acceptable"] and row["decided"]
    assert row["peak_cycle"] == 5 and (row["first_cycle"], row["cycle"]) == (1, c)
    # the same risk in cycle 1 instead gives the same verdict: where it sits does not matter
    early = pc.copy()
    early[:, 2, 0] = late[:, 2, 4]
    again = evaluate_limits(dataset(early), DEFAULT_LIMITS).set_index("event").loc["tls"]
    assert again["p_exceed"] == row["p_exceed"]
    np.testing.assert_allclose(
        risk_draws(dataset(late), "tls", RiskLimit(each_cycle=True, max=0.02)),
        late[:, 2, :].max(axis=1),
    )
    assert DEFAULT_LIMITS.events["tls"].describe("tls", 12) == (
        "Tumor lysis syndrome in each of cycles 1-12 <= 2%"
    )


def test_each_cycle_and_cumulative_exclude_each_other():
    with pytest.raises(ValidationError, match="either"):
        RiskLimit(cumulative=True, each_cycle=True, max=0.1)


def test_the_critical_quantile_decides_as_p_exceed_does():
    """OncoBayes2's critical quantile: P(risk > max) <= 0.25 exactly when the risk's 75%
    quantile (of the draws, without interpolation) is at most max, for every max."""
    rng = np.random.default_rng(2)
    pc = np.zeros((1001, 4, 1))
    pc[:, 2, 0] = rng.beta(1, 30, 1001)
    cuts = np.quantile(pc[:, 2, 0], np.linspace(0.6, 0.9, 31))
    for cut in [*cuts, *pc[::50, 2, 0]]:
        r = evaluate_limits(dataset(pc), RiskLimits.model_validate({"tls": {"max": cut}})).iloc[0]
        assert r["acceptable"] == (r["q_critical"] <= cut)
        assert r["q50"] < r["mean"]  # skewed: the median is shown beside the mean


@pytest.mark.parametrize("repeat", [1, 5])
def test_probability_mcse_matches_the_spread_of_repeated_estimates(repeat):
    """The MCSE of P(exceed) is the standard deviation of its estimate over repeated runs:
    for independent draws (repeat 1) and for draws correlated in runs of 5 (as thinned
    chains can be, repeat 5: the binomial error is then too small by sqrt(5) and batch
    means must catch it). 400 replicates: the SD of the estimates is known to about
    +/-3.5% (1/sqrt(2 x 399)); the mean MCSE is compared within 20% (batch means with 20
    batches is itself uncertain by about 1/sqrt(2 x 19) = 16% per replicate, averaged)."""
    from lenasim.outputs.tables.summaries import probability_mcse

    rng = np.random.default_rng(7)
    n, p = 1000, 0.3
    est, se = [], []
    for _ in range(400):
        hits = np.repeat(rng.random(n // repeat) < p, repeat).astype(float)
        est.append(hits.mean())
        se.append(probability_mcse(hits))
    assert np.mean(se) == pytest.approx(np.std(est, ddof=1), rel=0.2)


def test_a_verdict_within_two_mcse_of_its_threshold_is_undecided():
    from lenasim.outputs.judgements.decision import limits_table

    s = 200
    pc = np.zeros((s, 4, 1))
    pc[:, 2, 0] = np.where(np.arange(s) < 52, 0.05, 0.0)  # P(exceed) = 0.26, MCSE ~0.03
    lim = RiskLimits.model_validate({"tls": {"max": 0.02}})
    row = limits_table(dataset(pc), lim).iloc[0]
    assert row["p_exceed"] == pytest.approx(0.26) and not row["acceptable"]
    assert not row["decided"] and row["verdict"] == "undecided: run more draws"
    pc[:, 2, 0] = np.where(np.arange(s) < 100, 0.05, 0.0)  # P = 0.5: clear of 0.25
    row = limits_table(dataset(pc), lim).iloc[0]
    assert row["decided"] and row["verdict"] == "not acceptable"


def test_a_per_cycle_limit_is_over_the_draws_that_define_it():
    pc = np.full((10, 4, 2), 0.01)
    pc[:4, 2, 1] = np.nan  # 4 draws: nobody starts cycle 2
    pc[4:, 2, 1] = [0.5, 0.5, 0.5, 0.0, 0.0, 0.0]
    row = evaluate_limits(dataset(pc), RiskLimits.model_validate(
        {"tls": {"cycle": 2, "max": 0.1}})).iloc[0]  # fmt: skip
    assert row["n_draws"] == 6 and row["p_exceed"] == pytest.approx(0.5)
