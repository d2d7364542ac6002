"""Counter-based random numbers: every number the engine uses is a function of
(draw key, patient, cycle, purpose), so common random numbers hold by construction.

The generator is Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers:
as easy as 1, 2, 3", SC 2011; the default of Random123, cuRAND and JAX): a 10-round
bijection of a 128-bit counter (four 32-bit words) under a 64-bit key (two words), which
passes TestU01's BigCrush for any sequence of counters. ``tests/test_streams.py`` checks it
against the known-answer vectors of Random123 and against a plain-Python transcription.

Keys. A scenario's seed gives the key ``SeedSequence(seed).generate_state(2, uint32)``
(NumPy's seeding hash); the posterior draw with index s gets the first two words of
Philox at counter ``(s mod 2**32, s div 2**32, 3, 0)`` under that key: distinct draws get
unrelated keys, at no cost per draw.

Counters ``(word0, word1, word2, 0)`` under a draw's key, one block of four 32-bit words:

============================  =============================================================
``(i, c, 0, 0)``              patient i, cycle c (0-based): the uniforms of flare, flare
                              severity, TLS and neutropenia, in that order
``(i, 0, 1, 0)``              patient i: words 0-2 give the frailty normals of flare, TLS
                              and neutropenia, word 3 the uniform of the elderly draw
``(0, 0, 2, 0)``              the draw: words 0-2 give the trial-effect normals of flare,
                              TLS and neutropenia
============================  =============================================================

A 32-bit word x becomes the uniform ``(x + 0.5) / 2**32``, in (0, 1) and never 0 or 1.
Its resolution, 2.3e-10, is the largest error it can make in a Bernoulli comparison
``u < p``: far below any Monte Carlo error here. A normal is the inverse normal CDF of
such a uniform, by Wichura's algorithm AS 241 (PPND16; Applied Statistics 37:477-484,
1988; the algorithm of R's ``qnorm``), accurate to about 1e-16 relative; the normals
reach +-6.3 standard deviations. Inverse-CDF normals (one word each, no rejection) keep
the counter layout fixed and need no trigonometry, so the engine's loops vectorise.

The functions below are compiled with numba and work on scalars (``philox``,
``to_uniform``, ``normal``: inlined into the engine's kernel) or fill arrays (the
others: for tests, the benchmark's reference loop and anyone who wants to reproduce a
number of the engine).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "CENTRAL", "PURPOSE_CYCLE", "PURPOSE_DRAW", "PURPOSE_PATIENT", "cycle_uniforms",
    "draw_keys", "normal", "normal_central", "normal_tail", "patient_draws", "philox",
    "scenario_key", "to_uniform", "trial_normals",
]  # fmt: skip

PURPOSE_CYCLE, PURPOSE_PATIENT, PURPOSE_DRAW, PURPOSE_KEY = 0, 1, 2, 3

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_SCALE = 2.0**-32
_HALF = 2**31
CENTRAL = 0.425  # AS 241's central range |p - 0.5| <= 0.425


@numba.njit(inline="always", nogil=True, cache=True)
def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the counter (c0, c1, c2, c3) under the key (k0, k1): four
    uint64 values below 2**32 (the words are carried in uint64 so that the 32 x 32-bit
    products are exact; LLVM compiles them to vector multiplies)."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK
    return c0, c1, c2, c3


@numba.njit(inline="always", nogil=True, cache=True)
def to_uniform(x):
    """A 32-bit word (as uint64) -> (x + 0.5) / 2**32, exactly. It goes through int32
    (x - 2**31 fits), whose conversion to double is one vector instruction on AVX2,
    where int64's is not."""
    return (np.float64(np.int32(np.int64(x) - _HALF)) + (_HALF + 0.5)) * _SCALE


@numba.njit(inline="always", nogil=True, cache=True)
def normal_central(q):
    """AS 241's central branch: the normal quantile of p = 0.5 + q for |q| <= 0.425."""
    r = 0.180625 - q * q
    num = (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r
                + 67265.770927008700853) * r + 45921.953931549871457) * r
              + 13731.693765509461125) * r + 1971.5909503065514427) * r
            + 133.14166789178437745) * r + 3.387132872796366608)  # fmt: skip
    den = (((((((r * 5226.495278852545925 + 28729.085735721942674) * r
                + 39307.89580009271061) * r + 21213.794301586595867) * r
              + 5394.1960214247511077) * r + 687.1870074920579083) * r
            + 42.313330701600911252) * r + 1.0)  # fmt: skip
    return q * num / den


@numba.njit(inline="always", nogil=True, cache=True)
def normal_tail(p):
    """AS 241's intermediate tail: the normal quantile of p for min(p, 1 - p) in
    [exp(-25), 0.075] (every uniform of :func:`to_uniform` outside the central range:
    its smallest is 2**-33 > exp(-25), so AS 241's far-tail branch is never needed)."""
    q = p - 0.5
    r = math.sqrt(-math.log(p if q < 0.0 else 1.0 - p)) - 1.6
    num = (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r
                + 0.24178072517745061177) * r + 1.27045825245236838258) * r
              + 3.64784832476320460504) * r + 5.7694972214606914055) * r
            + 4.6303378461565452959) * r + 1.42343711074968357734)  # fmt: skip
    den = (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r
                + 0.0151986665636164571966) * r + 0.14810397642748007459) * r
              + 0.68976733498510000455) * r + 1.6763848301838038494) * r
            + 2.05319162663775882187) * r + 1.0)  # fmt: skip
    v = num / den
    return -v if q < 0.0 else v


@numba.njit(inline="always", nogil=True, cache=True)
def normal(p):
    """The standard normal quantile of a uniform p from :func:`to_uniform` (AS 241)."""
    q = p - 0.5
    return normal_central(q) if abs(q) <= CENTRAL else normal_tail(p)


def scenario_key(seed: int) -> np.ndarray:
    """(2,) uint64: the Philox key of a scenario seed (NumPy's SeedSequence hash)."""
    return np.random.SeedSequence(int(seed)).generate_state(2, np.uint32).astype(np.uint64)


@numba.njit(nogil=True, cache=True)
def _derive_keys(root, index):
    out = np.empty((index.size, 2), np.uint64)
    mask, purpose, zero = np.uint64(0xFFFFFFFF), np.uint64(PURPOSE_KEY), np.uint64(0)
    for j in range(index.size):
        s = np.uint64(index[j])
        a, b, _, _ = philox(s & mask, s >> np.uint64(32), purpose, zero, root[0], root[1])
        out[j, 0] = a
        out[j, 1] = b
    return out


def draw_keys(seed: int, posterior_index: np.ndarray) -> np.ndarray:
    """(S, 2) uint64 Philox keys of the draws with these posterior indices."""
    idx = np.asarray(posterior_index, np.int64).reshape(-1)
    if idx.size and idx.min() < 0:
        raise ValueError("posterior indices must be >= 0")
    return _derive_keys(scenario_key(seed), idx.astype(np.uint64))


@numba.njit(nogil=True, cache=True)
def cycle_uniforms(key, patients, cycle):
    """(len(patients), 4) uniforms of flare, severity, TLS, neutropenia in ``cycle``
    (0-based) under ``key`` (2,) uint64."""
    out = np.empty((patients.size, 4))
    k0, k1, c1 = key[0], key[1], np.uint64(cycle)
    zero, purpose = np.uint64(0), np.uint64(PURPOSE_CYCLE)
    for j in range(patients.size):
        a, b, c, d = philox(np.uint64(patients[j]), c1, purpose, zero, k0, k1)
        out[j, 0] = to_uniform(a)
        out[j, 1] = to_uniform(b)
        out[j, 2] = to_uniform(c)
        out[j, 3] = to_uniform(d)
    return out


@numba.njit(nogil=True, cache=True)
def patient_draws(key, patients):
    """(len(patients), 4): the frailty normals of flare, TLS, neutropenia and the
    uniform of the elderly draw."""
    out = np.empty((patients.size, 4))
    purpose, zero = np.uint64(PURPOSE_PATIENT), np.uint64(0)
    for j in range(patients.size):
        a, b, c, d = philox(np.uint64(patients[j]), zero, purpose, zero, key[0], key[1])
        out[j, 0] = normal(to_uniform(a))
        out[j, 1] = normal(to_uniform(b))
        out[j, 2] = normal(to_uniform(c))
        out[j, 3] = to_uniform(d)
    return out


@numba.njit(nogil=True, cache=True)
def trial_normals(key):
    """(3,) trial-effect normals of flare, TLS, neutropenia (before scaling by tau)."""
    zero = np.uint64(0)
    a, b, c, _ = philox(zero, zero, np.uint64(PURPOSE_DRAW), zero, key[0], key[1])
    return np.array([normal(to_uniform(a)), normal(to_uniform(b)), normal(to_uniform(c))])
