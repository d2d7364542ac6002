"""A run's manifest.json: the resolved config, the hashes of its inputs (config, evidence,
posterior, the draws simulated), library versions and wall times (:func:`write_manifest`
of a :class:`lenasim.pipeline.run.RunResult`, called by
:func:`lenasim.pipeline.run.write_run`)."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lenasim import __version__
from lenasim.evidence.table import evidence_hash
from lenasim.simulation.scenario import config_hash

__all__ = ["version_of", "write_manifest"]


@functools.cache
def version_of(module: str) -> str:
    """The version of a module the run used (or, if it was not imported, of its
    installed distribution), without importing it."""
    mod = sys.modules.get(module)
    if mod is not None and isinstance(getattr(mod, "__version__", None), str):
        return mod.__version__
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def _config_hash(res: Any, config_file: Path | None) -> str:
    if config_file is not None and Path(config_file).is_file():
        return config_hash(config_file)
    text = json.dumps(res.scenario.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def write_manifest(
    res: Any,
    config_file: Path | None,
    out: Path,
    walls: dict,
    config_shown: Path | None = None,
) -> None:
    """manifest.json: the resolved config, the hashes of its inputs, versions and times
    (``config_shown``: where the config will be, if it is not where it is read now)."""

    sc, post, index = res.scenario, res.posterior, res.index
    manifest = {
        "lenasim_result": "run",  # what lets --overwrite replace this folder (writers.py)
        "name": sc.name,
        "config_file": str(config_shown or config_file) if config_file is not None else None,
        "config": sc.model_dump(mode="json"),
        "regimen_text": sc.regimen_text(),
        "hashes": {
            "config": _config_hash(res, config_file),
            "evidence": evidence_hash(),
            "posterior": post.hash,
            "posterior_index": hashlib.sha256(index.astype("<i8").tobytes()).hexdigest(),
        },
        "posterior": {
            "path": str(post.path),
            "converged": bool(post.converged),
            "n_draws_available": int(post.draws.n_draws),
        },
        "posterior_attrs": {k: _jsonable(v) for k, v in post.attrs.items() if k != "spec"},
        "seed": sc.seed,
        "n_patients": sc.population.patients,
        "n_draws": int(index.size),
        "population_effect": sc.population_effect,
        "versions": {
            "lenasim": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": version_of("scipy"),
            "pandas": version_of("pandas"),
            "xarray": version_of("xarray"),
        },
        "wall_seconds": {k: round(v, 3) for k, v in walls.items()},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _jsonable(v):
    """Posterior attrs as JSON values (numpy scalars -> Python; JSON strings parsed)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v
