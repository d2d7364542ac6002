"""Counter-based random numbers: every number the engine uses is a function of
(draw key, patient, cycle, purpose), so common random numbers hold by construction.

The generator is Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers:
as easy as 1, 2, 3", SC 2011; the default of Random123, cuRAND and JAX): a 10-round
bijection of a 128-bit counter (four 32-bit words) under a 64-bit key (two words), which
passes TestU01's BigCrush for any sequence of counters. ``tests/simulation/test_streams.py`` checks it
against the known-answer vectors of Random123 and against a plain-Python transcription.

Keys. A scenario's seed gives the key ``SeedSequence(seed).generate_state(2, uint32)``
(NumPy's seeding hash); the posterior draw with index s gets the first two words of
Philox at counter ``(s mod 2**32, s div 2**32, 3, 0)`` under that key: distinct draws get
unrelated keys, at no cost per draw.

Counters ``(word0, word1, word2, block)`` under a draw's key; each block gives four 32-bit
words, and a stream needing more than four numbers takes the next block. The numbers of
each stream are *slots* (slot j: block j // 4, word j % 4), laid out by :class:`Layout`
from the vocabulary (the one place that says which number serves what):

============================  =============================================================
``(i, c, 0, b)``              patient i, cycle c (0-based): one uniform per output event,
                              in the order of the outputs (shipped: flare, flare severity,
                              TLS, neutropenia: block 0)
``(i, 0, 1, b)``              patient i: the frailty normals of the events, in order, then
                              one uniform per patient covariate (shipped: flare, TLS,
                              neutropenia, the elderly draw: block 0)
``(0, 0, 2, b)``              the draw: the trial-effect normals of the events, in order
============================  =============================================================

The shipped vocabulary uses block 0 only, as before blocks existed, so its numbers did not
change. A vocabulary with more events or covariates shifts the slots after them (a fourth
event moves the elderly draw to slot 4): numbers are common across scenarios of one
vocabulary, not across vocabularies.

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

from dataclasses import dataclass

import numpy as np

from lenasim.core.errors import LenasimError
from lenasim.core.vocabulary import DOSE_COLUMNS, Vocabulary, active
from lenasim.simulation._native import ABI, lib

__all__ = [
    "PURPOSE_CYCLE", "PURPOSE_DRAW", "PURPOSE_KEY", "PURPOSE_PATIENT", "Layout",
    "cycle_uniforms", "draw_keys", "normal_quantile", "patient_draws", "philox",
    "scenario_key", "select_draws", "to_uniform", "trial_normals",
]  # fmt: skip

PURPOSE_CYCLE, PURPOSE_PATIENT, PURPOSE_DRAW, PURPOSE_KEY = 0, 1, 2, 3


def _blocks(n_slots: int) -> int:
    return (n_slots + 3) // 4


@dataclass(frozen=True)
class Layout:
    """Where every random number and every result of the engine sits, derived from a
    vocabulary (the only place: ``_engine.c`` receives :meth:`header` and checks it).

    ``events``: the hazards with a frailty and a trial effect; ``hazards``: the events,
    then the severity (the rows of the engine's hazard tables); ``outputs``: each event,
    then its grade >= 3 output if it has the severity; ``covariates``: the patient
    covariates. Slots: cycle uniform of output o = o; patient frailty of event e = e,
    uniform of covariate j = E + j; trial normal of event e = e. A result row (per draw
    and cycle) is p (O), sampled shares (O), cumulative (O), then the dose columns.
    """

    events: tuple[str, ...]
    hazards: tuple[str, ...]
    outputs: tuple[str, ...]
    covariates: tuple[str, ...]
    severity_base: int  # the output index of the event that has the severity

    @classmethod
    def of(cls, vocab: Vocabulary | None = None) -> Layout:
        v = active() if vocab is None else vocab
        outputs = v.outputs
        return cls(
            events=v.event_names,
            hazards=v.hazards,
            outputs=outputs,
            covariates=v.patient_terms,
            severity_base=outputs.index(v.severity.event),
        )

    # sizes and offsets
    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    @property
    def r_p(self) -> int:
        return 0

    @property
    def r_sampled(self) -> int:
        return self.n_outputs

    @property
    def r_cum(self) -> int:
        return 2 * self.n_outputs

    @property
    def r_dose(self) -> int:
        return 3 * self.n_outputs

    @property
    def n_res(self) -> int:
        return 3 * self.n_outputs + len(DOSE_COLUMNS)

    @property
    def cycle_blocks(self) -> int:
        return _blocks(self.n_outputs)

    @property
    def patient_blocks(self) -> int:
        return _blocks(len(self.events) + len(self.covariates))

    @property
    def trial_blocks(self) -> int:
        return _blocks(len(self.events))

    def hazard_row(self, output: str) -> int:
        """The hazard table row of an output event (its own, or the severity's)."""
        o = self.outputs.index(output)
        if o == self.severity_base + 1:
            return len(self.hazards) - 1
        return self.events.index(output)

    def header(self, n_strata: int) -> np.ndarray:
        """The layout as ``_engine.c`` reads it (its ``L_*`` enum)."""
        return np.array(
            [len(self.events), len(self.hazards), self.n_outputs, len(self.covariates),
             n_strata, self.r_p, self.r_sampled, self.r_cum, self.r_dose, self.n_res,
             self.cycle_blocks, self.patient_blocks, self.trial_blocks],
            np.int64,
        )  # fmt: skip

    def outputs_table(self, codes: dict[str, int]) -> np.ndarray:
        """(O, 3) int64: per output its hazard row, the output it is the severity of (-1)
        and its outcome code (``codes``: output -> 0 or the dose rule's action + 1)."""
        rows = []
        for o, name in enumerate(self.outputs):
            base = self.severity_base if o == self.severity_base + 1 else -1
            rows.append((self.hazard_row(name), base, int(codes.get(name, 0))))
        return np.array(rows, np.int64).reshape(-1, 3)

    def check(self) -> None:
        """That ``_engine.c`` can run this layout; else a sentence saying what exceeds it."""
        if self.n_outputs > ABI["max_outputs"]:
            raise LenasimError(
                f"the vocabulary has {self.n_outputs} output events "
                f"({', '.join(self.outputs)}); the compiled engine takes at most "
                f"{ABI['max_outputs']} (MAX_OUTPUTS in _engine.c)"
            )

    def check_draws(self, draws) -> None:
        """That parameter draws have exactly this layout's hazards; else a sentence naming
        the difference."""
        got = tuple(draws.terms)
        missing = [h for h in self.hazards if h not in got]
        extra = [h for h in got if h not in self.hazards]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lack {', '.join(missing)}")
            if extra:
                parts.append(f"have {', '.join(extra)}, which it does not declare")
            raise LenasimError(
                f"the parameter draws do not match the vocabulary: the vocabulary's hazards "
                f"are {', '.join(self.hazards)}, and the draws " + " and ".join(parts) + " (a "
                "posterior fitted under another vocabulary? refit it, or simulate under "
                "the vocabulary it was fitted with)"
            )
        for k in self.events:
            for name, table in (("tau", draws.tau), ("sigma", draws.sigma)):
                if k not in table:
                    raise LenasimError(
                        f"the parameter draws have no {name} for the event {k} of the vocabulary"
                    )

    def slot(self, stream: str, name: str) -> int:
        """The slot of a number: ``("cycle", output)``, ``("frailty", event)``,
        ``("covariate", name)`` or ``("trial", event)``."""
        if stream == "cycle":
            return self.outputs.index(name)
        if stream in ("frailty", "trial"):
            return self.events.index(name)
        if stream == "covariate":
            return len(self.events) + self.covariates.index(name)
        raise ValueError(f"unknown stream {stream!r}")


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


def _block_uniforms(key, c0, c1: int, c2: int, blocks: int) -> np.ndarray:
    """(len(c0), 4 * blocks) uniforms of the blocks 0..blocks-1 at counters (c0, c1, c2, b)."""
    out = np.empty((blocks, c0.size, 4))
    k = _key(key)
    for b in range(blocks):
        lib.lenasim_block_uniforms(k, c0, c0.size, int(c1), int(c2), b, out[b])
    return out.transpose(1, 0, 2).reshape(c0.size, 4 * blocks)


def cycle_uniforms(key, patients, cycle: int, layout: Layout | None = None) -> np.ndarray:
    """(len(patients), outputs) uniforms of each output event in ``cycle`` (0-based) under
    ``key`` (shipped: flare, severity, TLS, neutropenia)."""
    lay = Layout.of() if layout is None else layout
    pat = _index(patients, "patients")
    cyc = int(_index([cycle], "cycle")[0])
    return _block_uniforms(key, pat, cyc, PURPOSE_CYCLE, lay.cycle_blocks)[:, : lay.n_outputs]


def patient_draws(key, patients, layout: Layout | None = None) -> np.ndarray:
    """(len(patients), events + covariates): the frailty normals of the events, then the
    uniforms of the patient covariates (shipped: flare, TLS, neutropenia, elderly)."""
    lay = Layout.of() if layout is None else layout
    pat = _index(patients, "patients")
    n_ev = len(lay.events)
    u = _block_uniforms(key, pat, 0, PURPOSE_PATIENT, lay.patient_blocks)
    u = u[:, : n_ev + len(lay.covariates)].copy()
    u[:, :n_ev] = normal_quantile(u[:, :n_ev])
    return u


def trial_normals(key, layout: Layout | None = None) -> np.ndarray:
    """(events,) trial-effect normals (before scaling by tau)."""
    lay = Layout.of() if layout is None else layout
    u = _block_uniforms(key, np.zeros(1, np.int64), 0, PURPOSE_DRAW, lay.trial_blocks)
    return normal_quantile(u[0, : len(lay.events)])


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
