"""The posterior shipped in models/ must match the evidence and the spec it claims,
so that `run` on a fresh clone uses a fit of today's evidence (issue 3, item 8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lenasim.fit import gate
from lenasim.hazard import EVENTS
from lenasim.posterior import load_posterior, stale_reasons

REPO = Path(__file__).resolve().parents[1]
NC, SPEC = REPO / "models" / "default.nc", REPO / "models" / "default.yaml"


def test_shipped_posterior_is_not_stale():
    """Fails when evidence.csv, arms.yaml or models/default.yaml changed after the fit:
    refit with `python -m lenasim fit` and commit models/default.nc."""
    post = load_posterior(NC, SPEC, check=False)
    assert stale_reasons(post.attrs, SPEC) == []


def test_shipped_posterior_passed_the_diagnostics_gate():
    post = load_posterior(NC, SPEC)
    assert post.converged
    assert gate(post.diagnostics) == []
    assert post.draws.n_draws >= 4000
    for ev in EVENTS:
        assert np.all(post.draws.tau[ev] >= 0) and np.all(post.draws.sigma[ev] >= 0)
