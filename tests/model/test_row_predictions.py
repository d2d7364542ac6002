"""The stored new-trial predictions of the evidence rows (lenasim.model.row_predictions):
the shipped store is current and holds what a fresh computation gives; a trial's numbers do
not depend on which other trials are predicted; a run reads the store only under its key,
and computes the same numbers without it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from lenasim.evidence.table import evidence_hash
from lenasim.model import predictive
from lenasim.model.posterior import load_posterior
from lenasim.model.row_predictions import (
    EFFECTS_PER_DRAW,
    QUANTILES,
    STORE_VERSION,
    countable_rows,
    predict_trials,
    row_quantiles,
    store_path,
    write_store,
)
from lenasim.model.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "src" / "lenasim" / "models" / "default.yaml"
# Two trials quick to predict from 4,000 draws (~0.1 and ~0.3 s of CPU), the second with
# a 'cycles' row (a continuous law: the tolerance of _same).
CHEAP = ("andritsos_2008", "aue_2010")


@pytest.fixture(scope="module")
def shipped():
    return load_posterior(SPEC.with_suffix(".nc"), SPEC)


def _stored_rows() -> dict[str, list[float]]:
    return json.loads(store_path(SPEC).read_text())["rows"]


def _same(a, b) -> bool:
    """Counts equal; a continuous law's quantiles (bisection to 1e-9 of its range) to 1e-7:
    OpenBLAS may round a product by one ulp differently with another thread count."""
    return all(x == pytest.approx(y, rel=1e-7, abs=1e-9) for x, y in zip(a, b, strict=True))


def test_the_shipped_store_is_keyed_to_the_shipped_posterior_and_evidence(shipped):
    doc = json.loads(store_path(SPEC).read_text())
    spec = load_spec(SPEC)
    assert doc["key"] == {
        "version": STORE_VERSION,
        "posterior_sha256": shipped.hash,
        "evidence_sha256": evidence_hash(),
        "quadrature_nodes": spec.quadrature_nodes,
        "quadrature_rule": spec.quadrature_rule,
        "effects_per_draw": EFFECTS_PER_DRAW,
        "seed": doc["key"]["seed"],
    }
    assert EFFECTS_PER_DRAW == predictive.EFFECTS_PER_DRAW  # as validation predicts rows
    assert set(doc["rows"]) == {r.row_id for r in countable_rows()}
    assert all(len(v) == len(QUANTILES) and v == sorted(v) for v in doc["rows"].values())


def test_the_shipped_store_holds_a_fresh_computation(shipped):
    """Recomputed now for two cheap trials (all of them: the slow twin below)."""
    fresh = predict_trials(shipped, load_spec(SPEC), CHEAP)
    assert {r.row_id for r in countable_rows() if r.trial in CHEAP} == set(fresh)
    stored = _stored_rows()
    bad = {k: (v, stored[k]) for k, v in fresh.items() if not _same(v, stored[k])}
    assert not bad


@pytest.mark.slow  # every trial from 4,000 draws: ~5 s
def test_the_whole_shipped_store_holds_a_fresh_computation(shipped, tmp_path):
    spec = tmp_path / "default.yaml"
    shutil.copy(SPEC, spec)
    written = json.loads(write_store(shipped, spec).read_text())
    stored = json.loads(store_path(SPEC).read_text())
    assert written["key"] == stored["key"] and set(written["rows"]) == set(stored["rows"])
    bad = [k for k, v in written["rows"].items() if not _same(v, stored["rows"][k])]
    assert not bad


def test_a_trials_numbers_do_not_depend_on_the_other_trials(shipped):
    """Each trial has its own random stream: predicted alone or with another, the same."""
    spec = load_spec(SPEC)
    small = shipped.draws.take(list(range(200)))
    post = SimpleNamespace(draws=small, hash="200 draws")
    alone = predict_trials(post, spec, CHEAP[:1])
    both = predict_trials(post, spec, CHEAP)
    assert alone and all(both[k] == v for k, v in alone.items())
    assert set(both) > set(alone)


def test_a_run_reads_the_store_only_under_its_key(shipped, tmp_path):
    """Shipped posterior: read from the store. Another posterior (another hash), or the
    store's key changed: computed, and for the shipped draws the same numbers."""
    rows = [r for r in countable_rows() if r.trial == CHEAP[0]]
    got, stored = row_quantiles(shipped, SPEC, rows)
    assert stored
    other = SimpleNamespace(draws=shipped.draws, hash="not the shipped file")
    again, stored_again = row_quantiles(other, SPEC, rows)
    assert not stored_again
    assert all(_same(got[k], again[k]) for k in got)

    spec = tmp_path / "default.yaml"
    shutil.copy(SPEC, spec)
    store_path(spec).parent.mkdir()
    doc = json.loads(store_path(SPEC).read_text())
    doc["rows"] = {k: [0.0, 0.0, 0.0] for k in doc["rows"]}  # wrong numbers, right key
    store_path(spec).write_text(json.dumps(doc))
    assert row_quantiles(shipped, spec, rows) == ({r.row_id: (0.0, 0.0, 0.0) for r in rows}, True)
    doc["key"]["version"] = STORE_VERSION + 1  # a stale store: computed again
    store_path(spec).write_text(json.dumps(doc))
    fresh, from_store = row_quantiles(shipped, spec, rows)
    assert not from_store and fresh == again
    store_path(spec).write_text("{not json")  # a broken store: computed, not an error
    assert row_quantiles(shipped, spec, rows) == (fresh, False)


def test_fit_stores_the_predictions_of_the_posterior_it_wrote(tmp_path, monkeypatch):
    """`lenasim fit` (its sampling stubbed: a synthetic posterior of 20 draws written as
    fit_spec writes one) stores the countable rows' predictions under the new posterior's
    key (the rows of one trial here, to keep the test short: the shipped store's test
    checks that every countable row is stored), and the mirrored trial then reads them."""
    import lenasim.commands.fit as command
    import lenasim.model.row_predictions as store
    from conftest import make_draws
    from lenasim.cli import main
    from lenasim.model.posterior import write_posterior

    (tmp_path / "models").mkdir()
    spec = tmp_path / "models" / "default.yaml"
    shutil.copy(SPEC, spec)
    attrs = {"evidence_hash": evidence_hash(), "spec_hash": load_spec(spec).hash(), "converged": 1}

    def fake_fit_spec(path, **kw):
        write_posterior(Path(path).with_suffix(".nc"), make_draws(20), attrs)

    one_trial = [r for r in countable_rows() if r.trial == CHEAP[0]]
    monkeypatch.setattr(store, "countable_rows", lambda rows=None: one_trial)
    monkeypatch.setattr(command, "fit_spec", fake_fit_spec)
    assert main(["fit", str(spec), "--quiet"]) == 0
    post = load_posterior(spec.with_suffix(".nc"), spec)
    doc = json.loads(store_path(spec).read_text())
    assert doc["key"]["posterior_sha256"] == post.hash
    assert set(doc["rows"]) == {r.row_id for r in one_trial}
    got, from_store = row_quantiles(post, spec, one_trial)
    assert from_store and got == predict_trials(post, load_spec(spec), CHEAP[:1])
