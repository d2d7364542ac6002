"""The engine's compiled core (``_engine.c``), loaded with ctypes.

The shared library is built by ``pip install`` (setup.py); loading it costs ~1 ms, and
its functions release the GIL, so the engine's threads run in parallel. Every array
argument is checked by ctypes for dtype and C order. A library built from an older
``_engine.c`` than the one beside it is refused (the build embeds the source's hash):
after editing ``_engine.c``, run ``pip install -e .`` again.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
from pathlib import Path

import numpy as np
from numpy.ctypeslib import ndpointer

from lenasim.core.errors import LenasimError
from lenasim.core.vocabulary import DOSE_COLUMNS

_HERE = Path(__file__).parent
_SOURCE = _HERE / "_engine.c"


def source_hash(path: Path = _SOURCE) -> str:
    """The hash that the build embeds (setup.py): sha256 of the C source, 16 hex digits."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _find() -> Path:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = _HERE / f"_engine{suffix}"
        if path.is_file():
            return path
    raise LenasimError(
        f"lenasim's compiled engine (_engine*.so) is missing from {_HERE}: install lenasim "
        "with `python -m pip install -e .` from the repository (a C compiler is needed)"
    )


def _load(source: Path = _SOURCE) -> ctypes.CDLL:
    path = _find()
    lib = ctypes.CDLL(str(path))
    lib.lenasim_source_hash.restype = ctypes.c_char_p
    built = lib.lenasim_source_hash().decode()
    if source.is_file() and built != source_hash(source):
        raise LenasimError(
            f"{path.name} was built from another version of {source.name} (source hash "
            f"{built}, the file's is {source_hash(source)}): rebuild with "
            "`python -m pip install -e .`"
        )
    f64, i64, u64, u32 = (ndpointer(t, flags="C_CONTIGUOUS") for t in
                          (np.float64, np.int64, np.uint64, np.uint32))  # fmt: skip
    c_i64 = ctypes.c_int64
    signatures = {
        "lenasim_philox": [u32, u32, u32],
        "lenasim_derive_keys": [u64, u64, c_i64, u64],
        "lenasim_block_uniforms": [u64, i64, c_i64, c_i64, c_i64, c_i64, f64],
        "lenasim_abi": [i64],
        "lenasim_to_uniform": [u64, c_i64, f64],
        "lenasim_pass_uniforms": [c_i64, c_i64, c_i64, c_i64, u64, c_i64, f64],
        "lenasim_normal_quantile": [f64, c_i64, f64],
        "lenasim_take_last": [f64, c_i64, c_i64, i64, c_i64, f64, c_i64, c_i64],
        # the layout (header, outputs, covariates, thresholds: streams.Layout); sizes
        # (draws, patients, cycles, states); keys, tau, sigma, hazard; tables (next
        # state, reduce stops, dose, start); new trial; scratch (float, int, next
        # table); results
        "lenasim_simulate": [i64, i64, i64, f64]
        + [c_i64] * 4
        + [u64, f64, f64, f64]
        + [i64, i64, f64, i64]
        + [c_i64]
        + [f64, i64, f64]
        + [f64],
    }
    # lenasim_simulate and the cumulative-exposure term's coefficients, carry table,
    # reference exposure and scratch row
    signatures["lenasim_simulate_carry"] = signatures["lenasim_simulate"] + [
        f64,
        f64,
        ctypes.c_double,
        f64,
    ]
    for name, args in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = None
    lib.lenasim_simulate.restype = ctypes.c_int64
    lib.lenasim_simulate_carry.restype = ctypes.c_int64
    return lib


# What the Python side assumes of _engine.c's layout (its enums L_*, O_*, C_* and N_DOSE),
# checked at load: a library of another layout is refused with the differences named.
_EXPECTED_ABI = {"version": 2, "layout_fields": 13, "output_fields": 3, "covariate_fields": 3,
                 "dose_columns": len(DOSE_COLUMNS)}  # fmt: skip


def _abi(lib: ctypes.CDLL) -> dict[str, int]:
    out = np.zeros(6, np.int64)
    lib.lenasim_abi(out)
    got = dict(zip((*_EXPECTED_ABI, "max_outputs"), (int(x) for x in out)))
    bad = [f"{k} {got[k]} (expected {v})" for k, v in _EXPECTED_ABI.items() if got[k] != v]
    if bad:
        raise LenasimError(
            f"the compiled engine's layout does not match lenasim.simulation.streams: "
            f"{'; '.join(bad)}: rebuild it from this version's _engine.c"
        )
    return got


lib = _load()
ABI = _abi(lib)
