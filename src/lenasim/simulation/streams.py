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

The computations are in C (``_engine.c``, shared with the engine's kernel); the
functions below expose them on arrays, for the tests, the benchmark's reference loop and
anyone who wants to reproduce a number of the engine.

Which posterior draws a run simulates is fixed by the seed too (:func:`select_draws`),
so that scenarios with the same seed and posterior meet the same draws.
"""

from __future__ import annotations

import numpy as np

from lenasim.simulation._native import lib

__all__ = [
    "PURPOSE_CYCLE", "PURPOSE_DRAW", "PURPOSE_KEY", "PURPOSE_PATIENT", "cycle_uniforms",
    "draw_keys", "normal_quantile", "patient_draws", "philox", "scenario_key", "select_draws",
    "to_uniform", "trial_normals",
]  # fmt: skip

PURPOSE_CYCLE, PURPOSE_PATIENT, PURPOSE_DRAW, PURPOSE_KEY = 0, 1, 2, 3


def _key(key: np.ndarray) -> np.ndarray:
    key = np.ascontiguousarray(key, np.uint64)
    if key.shape != (2,):
        raise ValueError(f"a key is 2 words, got shape {key.shape}")
    return key


def _index(values, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(values, np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= 2**32):
        raise ValueError(f"{name} must be in [0, 2**32)")
    return arr


def philox(counter, key) -> np.ndarray:
    """Philox4x32-10 of one counter (4 words) under one key (2 words): 4 uint32 words."""
    out = np.empty(4, np.uint32)
    lib.lenasim_philox(np.asarray(counter, np.uint32), np.asarray(key, np.uint32), out)
    return out


def scenario_key(seed: int) -> np.ndarray:
    """(2,) uint64: the Philox key of a scenario seed (NumPy's SeedSequence hash)."""
    return np.random.SeedSequence(int(seed)).generate_state(2, np.uint32).astype(np.uint64)


def draw_keys(seed: int, posterior_index) -> np.ndarray:
    """(S, 2) uint64 Philox keys of the draws with these posterior indices."""
    idx = np.asarray(posterior_index, np.int64).reshape(-1)
    if idx.size and idx.min() < 0:
        raise ValueError("posterior indices must be >= 0")
    out = np.empty((idx.size, 2), np.uint64)
    lib.lenasim_derive_keys(scenario_key(seed), idx.astype(np.uint64), idx.size, out)
    return out


def cycle_uniforms(key, patients, cycle: int) -> np.ndarray:
    """(len(patients), 4) uniforms of flare, severity, TLS, neutropenia in ``cycle``
    (0-based) under ``key``."""
    pat = _index(patients, "patients")
    out = np.empty((pat.size, 4))
    lib.lenasim_cycle_uniforms(_key(key), pat, pat.size, int(_index([cycle], "cycle")[0]), out)
    return out


def patient_draws(key, patients) -> np.ndarray:
    """(len(patients), 4): the frailty normals of flare, TLS, neutropenia and the
    uniform of the elderly draw."""
    pat = _index(patients, "patients")
    out = np.empty((pat.size, 4))
    lib.lenasim_patient_draws(_key(key), pat, pat.size, out)
    return out


def trial_normals(key) -> np.ndarray:
    """(3,) trial-effect normals of flare, TLS, neutropenia (before scaling by tau)."""
    out = np.empty(3)
    lib.lenasim_trial_normals(_key(key), out)
    return out


def to_uniform(words) -> np.ndarray:
    """32-bit words -> the engine's uniforms (x + 0.5) / 2**32."""
    x = np.ascontiguousarray(words, np.uint64).reshape(-1)
    if x.size and x.max() >= 2**32:
        raise ValueError("words must be below 2**32")
    out = np.empty(x.size)
    lib.lenasim_to_uniform(x, x.size, out)
    return out


def normal_quantile(p) -> np.ndarray:
    """The engine's normal quantile (AS 241) of uniforms p in [2**-33, 1 - 2**-33]."""
    p = np.ascontiguousarray(p, np.float64)
    out = np.empty_like(p)
    lib.lenasim_normal_quantile(p.reshape(-1), p.size, out.reshape(-1))
    return out


def select_draws(n_available: int, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` of ``n_available`` posterior samples: evenly spaced (chain-major
    order, so every chain contributes), with an offset fixed by the seed."""
    if not 1 <= n <= n_available:
        raise ValueError(f"cannot take {n} of {n_available} draws")
    offset = np.random.default_rng([seed, 0x5E1EC7]).random()
    return np.floor((np.arange(n) + offset) * (n_available / n)).astype(np.int64)
