"""The engine's counter-based random numbers (lenasim.simulation.streams).

- Philox4x32-10 against the known-answer vectors of Random123 (kat_vectors, the
  reference implementation's own test file) and a plain-Python transcription of the
  algorithm (Salmon et al. 2011, fig. 2) on random counters and keys.
- The inverse normal CDF (AS 241) against scipy.special.ndtri over the whole range of
  uniforms the engine can produce.
- Distributions: with n independent draws, a sample mean has standard error
  sigma / sqrt(n); we allow 5 standard errors (a correct generator fails one check with
  probability < 1e-6). The Kolmogorov-Smirnov checks use the same level (p > 1e-6).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from lenasim.simulation import streams

MASK = 0xFFFFFFFF


def philox_python(ctr: tuple[int, ...], key: tuple[int, int]) -> tuple[int, ...]:
    """Philox4x32-10 as in the paper, with Python integers."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + 0x9E3779B9) & MASK
            k1 = (k1 + 0xBB67AE85) & MASK
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK, (p0 >> 32) ^ c3 ^ k1, p0 & MASK
    return c0, c1, c2, c3


def philox_c(ctr, key) -> tuple[int, ...]:
    return tuple(int(x) for x in streams.philox(ctr, key))


# Random123's kat_vectors: philox4x32 10 <counter> <key> <expected output>.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((MASK,) * 4, (MASK, MASK), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    assert philox_python(ctr, key) == expected
    assert philox_c(ctr, key) == expected


def test_philox_matches_the_plain_transcription():
    rng = np.random.default_rng(0)
    for _ in range(200):
        ctr = tuple(int(x) for x in rng.integers(0, 2**32, 4))
        key = tuple(int(x) for x in rng.integers(0, 2**32, 2))
        assert philox_c(ctr, key) == philox_python(ctr, key)


def test_cycle_uniforms_are_the_philox_words():
    key = streams.draw_keys(7, [3])[0]
    patients = np.array([0, 1, 999, 2**31 + 5])
    got = streams.cycle_uniforms(key, patients, 4)
    for j, i in enumerate(patients):
        words = philox_python((int(i), 4, streams.PURPOSE_CYCLE, 0), (int(key[0]), int(key[1])))
        np.testing.assert_array_equal(got[j], (np.array(words) + 0.5) / 2**32)


def test_uniforms_stay_inside_the_open_interval():
    u = streams.to_uniform([0, 1, 2**31, MASK])
    assert u[0] == 2.0**-33 and u[-1] == 1 - 2.0**-33
    assert np.all((u > 0) & (u < 1))


def test_normal_quantile_matches_scipy_everywhere_the_engine_can_go():
    lo = 2.0**-33  # the smallest uniform
    p = np.concatenate([
        np.linspace(lo, 1 - lo, 400_001),
        np.geomspace(lo, 0.075, 20_001),
        1 - np.geomspace(lo, 0.075, 20_001),
        [0.075, 0.925, 0.5 - 0.425, 0.5 + 0.425, 0.5],
    ])  # fmt: skip
    z, ref = streams.normal_quantile(p), special.ndtri(p)
    # Both are accurate to a few units in the last place: relative 2e-15 (absolute near 0).
    err = np.abs(z - ref) / np.maximum(np.abs(ref), 1.0)
    assert err.max() < 2e-15, (err.max(), p[err.argmax()])
    assert z.min() == pytest.approx(special.ndtri(lo), rel=1e-14)  # about -6.3


def test_patient_normals_and_elderly_uniforms_are_distributed_as_claimed():
    key = streams.draw_keys(1, [0])[0]
    n = 200_000
    d = streams.patient_draws(key, np.arange(n))
    z, u = d[:, :3], d[:, 3]
    se = 5 / np.sqrt(n)
    assert np.all(np.abs(z.mean(axis=0)) < se)
    assert np.all(np.abs(z.var(axis=0) - 1) < 5 * np.sqrt(2 / n))
    assert abs(u.mean() - 0.5) < se * np.sqrt(1 / 12)
    for k in range(3):
        assert stats.kstest(z[:, k], "norm").pvalue > 1e-6
    assert stats.kstest(u, "uniform").pvalue > 1e-6
    # The four numbers of a patient are uncorrelated (|r| < 5 / sqrt(n)).
    r = np.corrcoef(d.T)
    assert np.all(np.abs(r[np.triu_indices(4, 1)]) < se)


def test_cycle_uniforms_are_uniform_and_uncorrelated_across_cycles_and_events():
    key = streams.draw_keys(2, [5])[0]
    n = 100_000
    u = np.stack([streams.cycle_uniforms(key, np.arange(n), c) for c in range(3)], axis=1)
    flat = u.reshape(n, -1)  # 12 columns: 3 cycles x 4 events
    se = 5 / np.sqrt(n)
    assert np.all(np.abs(flat.mean(axis=0) - 0.5) < se * np.sqrt(1 / 12))
    r = np.corrcoef(flat.T)
    assert np.all(np.abs(r[np.triu_indices(12, 1)]) < se)
    assert stats.kstest(flat.ravel(), "uniform").pvalue > 1e-6


def test_numbers_belong_to_the_patient_not_to_the_cohort():
    """Common random numbers: patient i's numbers do not depend on who else is simulated."""
    key = streams.draw_keys(3, [9])[0]
    small, large = np.arange(10), np.arange(1000)
    np.testing.assert_array_equal(
        streams.patient_draws(key, small), streams.patient_draws(key, large)[:10]
    )
    np.testing.assert_array_equal(
        streams.cycle_uniforms(key, small, 2), streams.cycle_uniforms(key, large, 2)[:10]
    )


def test_draw_keys():
    a = streams.draw_keys(20261123, np.arange(1000))
    assert a.dtype == np.uint64 and a.shape == (1000, 2)
    assert len({tuple(k) for k in a}) == 1000  # distinct
    assert np.all(a < 2**32)
    np.testing.assert_array_equal(streams.draw_keys(20261123, [5, 2]), a[[5, 2]])
    assert not np.array_equal(streams.draw_keys(20261124, np.arange(1000)), a)
    big = streams.draw_keys(1, [2**40 + 3, 3])
    assert tuple(big[0]) != tuple(big[1])  # the high word of the index counts
    with pytest.raises(ValueError, match=">= 0"):
        streams.draw_keys(1, [-1])


@pytest.mark.parametrize("n", [1, 3, 4, 7, 1000, 1001])
def test_vector_and_scalar_paths_give_the_same_uniforms(n):
    """The engine draws a pass's uniforms four patients at a time where the CPU has AVX2;
    it must give the scalar code's numbers exactly, the last few patients included."""
    from lenasim.simulation._native import lib

    key = streams.draw_keys(11, [4])[0]
    fast, slow = np.empty((4, n)), np.empty((4, n))
    lib.lenasim_pass_uniforms(n, 5, streams.PURPOSE_CYCLE, 0, key, 0, fast)
    lib.lenasim_pass_uniforms(n, 5, streams.PURPOSE_CYCLE, 0, key, 1, slow)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(slow.T, streams.cycle_uniforms(key, np.arange(n), 5))


def test_a_library_built_from_another_source_is_refused(tmp_path):
    from lenasim.core.errors import LenasimError
    from lenasim.simulation import _native

    assert _native.lib.lenasim_source_hash().decode() == _native.source_hash()
    edited = tmp_path / "_engine.c"
    edited.write_bytes(_native._SOURCE.read_bytes() + b"\n/* edited */\n")
    with pytest.raises(LenasimError, match="rebuild with `python -m pip install -e .`"):
        _native._load(edited)
