"""The Pareto front and the ranking, on hand-made tables whose answers are worked out by
hand, and against a brute-force oracle written here (every pair compared)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lenasim.search.config import SearchConfig
from lenasim.search.pareto import pareto_front, rank_table


def brute_force_front(v: np.ndarray, senses: list[str]) -> np.ndarray:
    """Row i is on the front unless some row j is no worse everywhere and better somewhere."""
    sign = np.array([1 if s == "min" else -1 for s in senses])
    c = np.where(np.isnan(v), np.inf, v * sign)
    n = len(c)
    out = np.ones(n, bool)
    for i in range(n):
        for j in range(n):
            if j != i and all(c[j] <= c[i]) and any(c[j] < c[i]):
                out[i] = False
    return out


def test_front_on_a_hand_made_table():
    # (days to target: min, risk: min)
    table = np.array([
        [0, 0.20],    # A: fastest, riskiest: on the front
        [28, 0.10],   # B: on the front
        [28, 0.12],   # C: B is as fast and safer: dominated
        [56, 0.05],   # D: on the front
        [56, 0.05],   # E: equal to D: neither dominates the other, both on the front
        [84, 0.05],   # F: slower than D, same risk: dominated
        [140, 0.01],  # G: slowest, safest: on the front
        [np.nan, 0.001],  # H: never reaches the target (NaN = worst), safest: on the front
    ])  # fmt: skip
    front = pareto_front(table, ["min", "min"])
    assert front.tolist() == [True, True, False, True, True, False, True, True]


def test_front_with_a_max_objective():
    # (dose intensity: max, risk: min)
    table = np.array([[5.0, 0.1], [6.0, 0.1], [6.0, 0.2], [4.0, 0.05]])
    assert pareto_front(table, ["max", "min"]).tolist() == [False, True, False, True]


@pytest.mark.parametrize("seed", range(5))
def test_front_matches_brute_force_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    # few distinct values, so ties and equal rows are common
    v = rng.integers(0, 6, size=(60, 3)).astype(float)
    v[rng.random(v.shape) < 0.05] = np.nan
    senses = ["min", "max", "min"]
    np.testing.assert_array_equal(pareto_front(v, senses), brute_force_front(v, senses))


def test_front_refuses_bad_senses():
    with pytest.raises(ValueError, match="senses"):
        pareto_front(np.zeros((2, 2)), ["min", "low"])
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        pareto_front(np.zeros((2, 3)), ["min", "min"])


def _cfg(**kw) -> SearchConfig:
    return SearchConfig.model_validate({
        "name": "t", "seed": 1, "population": {"setting": "untreated"},
        "space": {"start_mg": 10, "target_mg": 10, "cycles": 12},
        "limits": {"tls": {"cycle": 1, "max": 0.02}}} | kw)  # fmt: skip


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["c1", "c2", "c3", "c4", "c5", "c6"],
        "days_to_target": [0, 28, 28, 56, 14, np.nan],
        "dose_intensity_mean": [10.0, 8.0, 9.0, 7.0, 9.5, 3.0],
        "share_at_target_mean": [0.9] * 6,
        "share_stopped_mean": [0.1] * 6,
        "risk_tls_c1_qcrit": [0.05, 0.015, 0.018, 0.01, 0.03, 0.001],
        "max_excess": [0.5, -0.1, -0.05, -0.2, 0.1, -0.25],
        "max_risk_ratio": [2.5, 0.75, 0.9, 0.5, 1.5, 0.05],
    })  # fmt: skip


def test_ranking_puts_feasible_first_by_objectives_then_closest_infeasible():
    out = rank_table(_table(), _cfg())
    # feasible: c2, c3 (28 days: tie broken by dose intensity, c3 higher), c4 (56), c6 (NaN
    # days: never reaches the target, last); infeasible: c5 (excess 0.1) before c1 (0.5).
    assert out["id"].tolist() == ["c3", "c2", "c4", "c6", "c5", "c1"]
    assert out["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert out["feasible"].tolist() == [True, True, True, True, False, False]
    # front of (days to target, TLS risk): c1 (0 d), c5 (14 d), c2 (28 d, safer than c3),
    # c4 (56 d), c6 (safest); c3 is dominated by c2.
    assert dict(zip(out["id"], out["pareto"])) == {
        "c1": True, "c5": True, "c2": True, "c3": False, "c4": True, "c6": True,
    }  # fmt: skip


def test_infeasible_with_equal_p_exceed_are_ordered_by_risk_over_the_limit():
    t = _table()
    t["max_excess"] = 0.75  # every schedule exceeds its limit in every draw
    out = rank_table(t, _cfg())
    assert not out["feasible"].any()
    assert out["id"].tolist() == ["c6", "c4", "c2", "c3", "c5", "c1"]  # by max_risk_ratio


def test_ranking_follows_the_objectives_order():
    out = rank_table(_table(), _cfg(objectives=["dose_intensity", "days_to_target"]))
    assert out["id"].tolist()[:4] == ["c3", "c2", "c4", "c6"]  # 9.0, 8.0, 7.0, 3.0 mg/day
    # dose intensity first: the front is taken over (dose intensity: max, risk)
    assert dict(zip(out["id"], out["pareto"]))["c3"]


def test_a_pass_inside_the_monte_carlo_noise_ranks_after_the_decided_ones():
    t = _table()
    t["undecided"] = [False, True, False, False, False, False]  # c2 passes within 2 MCSE
    out = rank_table(t, _cfg())
    assert out["id"].tolist() == ["c3", "c4", "c6", "c2", "c5", "c1"]
    assert out["feasible"].tolist()[:4] == [True] * 4
