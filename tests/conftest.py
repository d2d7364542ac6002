"""Shared fixtures: a synthetic posterior (builders.make_draws), in memory or written to
disk with lenasim.model.posterior.write_posterior when a test needs a file."""

from __future__ import annotations

import pytest

from builders import make_draws
from lenasim.core.hazard import HazardDraws


@pytest.fixture
def draws() -> HazardDraws:
    return make_draws()


@pytest.fixture
def posterior_workdir(tmp_path, monkeypatch):
    """A working folder with models/default.yaml (the repo's spec), a synthetic,
    up-to-date posterior models/default.nc of 60 draws and a copy of the shipped configs
    (configs/*.yaml); the cwd is set to it.

    Returns the folder. The configs refer to ../models/default.yaml and ../results,
    relative to themselves: this folder's.
    ``lenasim.model.fit`` is replaced by a stub that refuses to fit, so a test that reaches a
    missing or stale posterior fails fast instead of fitting (and PyMC is never loaded).
    Never call ``monkeypatch.undo()`` in a test using this fixture (it would leave the
    folder); use ``pytest.MonkeyPatch.context()``.
    """
    import shutil
    import sys
    import types
    from pathlib import Path

    from lenasim.core.errors import PosteriorError

    def fit_spec(*args, **kwargs):
        raise PosteriorError("fitting is disabled in the tests (tests/conftest.py)")

    stub = types.ModuleType("lenasim.model.fit")
    stub.fit_spec = fit_spec
    monkeypatch.setitem(sys.modules, "lenasim.model.fit", stub)

    from lenasim.evidence.table import evidence_hash
    from lenasim.model.posterior import write_posterior
    from lenasim.model.spec import load_spec

    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "configs", tmp_path / "configs")  # their paths: ../models, ../results
    (tmp_path / "models").mkdir()
    spec = tmp_path / "models" / "default.yaml"
    shutil.copy(repo / "models" / "default.yaml", spec)
    attrs = {
        "evidence_hash": evidence_hash(),
        "spec_hash": load_spec(spec).hash(),
        "converged": 1,
        "created": "synthetic (tests/conftest.py)",
    }
    write_posterior(tmp_path / "models" / "default.nc", make_draws(60, seed=11), attrs)
    monkeypatch.chdir(tmp_path)
    return tmp_path
