"""outputs/judgements/caveats.py: the prior-posterior overlap computed on sorted samples
gives NumPy's numbers bit for bit (np.quantile's edges, np.histogram's counts), so
caveats.json does not change with the faster computation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lenasim.outputs.judgements.caveats import overlap, sorted_quantile


def numpy_overlap(a, b, bins: int = 40) -> float:
    """The overlap as np.quantile and np.histogram compute it (the definition)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    edges = np.unique(np.quantile(np.concatenate([a, b]), np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:
        return 1.0
    ha = np.histogram(a, edges)[0] / a.size
    hb = np.histogram(b, edges)[0] / b.size
    return float(np.minimum(ha, hb).sum())


SAMPLES = st.lists(st.floats(-1e6, 1e6) | st.sampled_from([0.0, 1.0, -2.5]), min_size=1,
                   max_size=300)  # fmt: skip


@settings(max_examples=75, deadline=None)  # a quarter; the slow twin below: 300 (issue 22.12)
@given(SAMPLES, SAMPLES)
def test_overlap_is_numpys_bit_for_bit(a, b):
    assert overlap(np.array(a), np.array(b)) == numpy_overlap(a, b)


@settings(max_examples=300, deadline=None)
@pytest.mark.slow  # the fast test on 300 examples (1.2 s of CPU; issue 22.12)
@given(SAMPLES, SAMPLES)
def test_overlap_is_numpys_bit_for_bit_300_examples(a, b):
    test_overlap_is_numpys_bit_for_bit.hypothesis.inner_test(a, b)


def test_overlap_of_posterior_like_draws_and_quantiles_of_any_size():
    rng = np.random.default_rng(5)
    for n, m in ((4000, 4000), (1000, 250), (3, 7), (1, 1)):
        a, b = rng.standard_t(3, size=n) * 2, rng.normal(0.4, 0.6, size=m)
        assert overlap(a, b) == numpy_overlap(a, b)
        assert overlap(np.round(a, 1), np.round(b, 1)) == numpy_overlap(np.round(a, 1),
                                                                        np.round(b, 1))  # fmt: skip
    for n in (1, 2, 5, 41, 1000, 4001):
        x = np.sort(rng.lognormal(size=n))
        q = np.linspace(0.0, 1.0, 41)
        np.testing.assert_array_equal(sorted_quantile(x, q), np.quantile(x, q))
    assert overlap(np.ones(5), np.ones(3)) == 1.0
    assert overlap(np.zeros(50), np.ones(50)) == 0.0
