"""core.hazard.linear_predictor_rows: the linear predictor of repeated feature rows computed
once per distinct row gives the bits of computing every row (what a population of patient
profiles relies on: its state tables repeat every row once per profile)."""

from __future__ import annotations

import numpy as np

from lenasim.core.hazard import linear_predictor, linear_predictor_rows


def _case(seed: int, n_distinct: int, repeats: int, terms: tuple[str, ...]):
    rng = np.random.default_rng(seed)
    distinct = {t: rng.normal(size=n_distinct) for t in terms}
    order = rng.permutation(np.repeat(np.arange(n_distinct), repeats))
    features = {t: v[order] for t, v in distinct.items()}
    features["profile"] = np.arange(order.size) % 7  # another column, not a term: ignored
    s = 33
    a = rng.normal(size=s)
    coefs = {t: rng.normal(size=s) for t in terms}
    return a, coefs, features


def test_the_same_bits_as_every_row_computed():
    for seed, terms in enumerate([("x",), ("x", "y", "z"), ("log_dose", "first", "elderly")]):
        a, coefs, features = _case(seed, 40, 9, terms)
        every = linear_predictor(a[:, None], {t: c[:, None] for t, c in coefs.items()},
                                 features, terms)  # fmt: skip
        once = linear_predictor_rows(a, coefs, features, terms)
        assert once.shape == every.shape == (33, 360)
        assert np.array_equal(once, every)  # bit for bit, not approximately


def test_rows_that_differ_in_one_term_stay_apart():
    a, coefs = np.array([0.5, -1.0]), {"x": np.array([2.0, 3.0]), "y": np.array([1.0, -1.0])}
    features = {"x": np.array([1.0, 1.0, 1.0]), "y": np.array([0.0, 1e-300, 0.0])}
    got = linear_predictor_rows(a, coefs, features, ("x", "y"))
    want = a[:, None] + coefs["x"][:, None] * features["x"] + coefs["y"][:, None] * features["y"]
    assert np.array_equal(got, want)


def test_an_intercept_alone():
    got = linear_predictor_rows(np.array([1.0, 2.0]), {}, {"x": np.zeros(4)}, ())
    assert np.array_equal(np.broadcast_to(got, (2, 4)), np.array([[1.0] * 4, [2.0] * 4]))
