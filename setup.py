"""The build of the engine's compiled core, src/lenasim/simulation/_engine.c (plain C, loaded
with ctypes by lenasim.simulation._native); everything else is in pyproject.toml. A C
compiler is needed to install lenasim (gcc or clang). The build embeds a hash of the source, so that a
library built from an older _engine.c is refused rather than silently used."""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "src/lenasim/simulation/_engine.c"
HASH = hashlib.sha256(Path(__file__).with_name("src").joinpath("lenasim", "simulation", "_engine.c").read_bytes())

setup(
    ext_modules=[
        Extension(
            "lenasim.simulation._engine",
            sources=[SOURCE],
            define_macros=[("LENASIM_SOURCE_HASH", f'"{HASH.hexdigest()[:16]}"')],
            extra_compile_args=["-O3", "-fopenmp-simd"],
            libraries=["m"],
        )
    ]
)
