"""Shared fixtures: a synthetic posterior (HazardDraws with known parameters), written to
disk with lenasim.model.posterior.write_posterior when a test needs a file."""

from __future__ import annotations

import numpy as np
import pytest

from lenasim.core.hazard import EVENTS, SEVERITY, TERMS, HazardDraws

# The terms of the default model spec (models/default.yaml), so synthetic posteriors
# exercise the same covariates as the real one.
DEFAULT_TERMS: dict[str, tuple[str, ...]] = {
    "flare": ("log_dose", "first", "rise", "log_cycle", "untreated", "anti_cd20", "chemo", "cdk_inhibitor"),
    "tls": ("log_dose", "first", "rise", "untreated", "consolidation", "anti_cd20", "chemo", "cdk_inhibitor"),
    "neutropenia": ("log_dose", "log_frac_on", "log_cycle", "untreated", "consolidation", "elderly",
                    "anti_cd20", "chemo", "cdk_inhibitor"),
    SEVERITY: ("log_dose", "steroid"),
}  # fmt: skip


def make_draws(
    n_draws: int = 40,
    *,
    seed: int = 7,
    intercept: dict[str, float] | None = None,
    coef: dict[str, dict[str, float]] | None = None,
    tau: float | None = 0.4,
    sigma: float | None = 0.6,
    spread: float = 0.3,
    terms: dict[str, tuple[str, ...]] | None = None,
) -> HazardDraws:
    """Synthetic parameter draws: plausible centres with a ``spread`` across draws.

    ``intercept`` / ``coef`` override the centres; ``tau`` / ``sigma`` set the trial and
    frailty SDs (the same for every draw); ``spread=0`` makes every draw identical.
    """
    rng = np.random.default_rng(seed)
    terms = dict(DEFAULT_TERMS if terms is None else terms)
    centre_a = {"flare": -1.0, "tls": -3.5, "neutropenia": -1.2, SEVERITY: -1.5}
    centre_a.update(intercept or {})
    centre_b = {t: 0.0 for t in TERMS} | {
        "log_dose": 0.5,
        "first": 1.0,
        "rise": 0.5,
        "log_cycle": -0.3,
    }
    out_a, out_c, out_tau, out_sigma = {}, {}, {}, {}
    for ev in (*EVENTS, SEVERITY):
        out_a[ev] = centre_a[ev] + spread * rng.standard_normal(n_draws)
        cb = centre_b | (coef or {}).get(ev, {})
        out_c[ev] = {t: cb[t] + spread * rng.standard_normal(n_draws) for t in terms[ev]}
        if ev != SEVERITY:
            out_tau[ev] = np.full(n_draws, 0.0 if tau is None else tau)
            out_sigma[ev] = np.full(n_draws, 0.0 if sigma is None else sigma)
    return HazardDraws(terms=terms, intercept=out_a, coefs=out_c, tau=out_tau, sigma=out_sigma)


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
