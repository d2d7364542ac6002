"""Every countable evidence row predicted as a new trial would report it, from all of a
posterior's draws: computed once per posterior and stored beside it.

A run that ``mirrors`` an arm shows the arm's reported figures beside the model's
prediction of them (:mod:`lenasim.outputs.judgements.mirror`). That prediction belongs to
the posterior and the evidence table, not to the scenario: the arm's own protocol, n,
setting and partners, every posterior draw repeated :data:`EFFECTS_PER_DRAW` times with
a new between-trial effect u ~ N(0, tau) per copy (rows of one trial share it), the
frailty integrated out and the reporting noise of the row's unit
(:func:`lenasim.model.predictive.predict_rows`). Each trial's effects come from a random
stream of its own (:func:`trial_stream`), so a trial's rows get the same numbers whether
one trial or all of them are predicted.

Computing them takes ~0.6 s of CPU per trial with the shipped posterior's 4,000 draws
(16,000 copies; ~4.4 s for the table's 13 trials), more than the rest of a run's
judgement. ``lenasim fit``, ``lenasim plots`` and ``run --refit`` therefore store them,
in ``<spec folder>/<spec name>/row_predictions.json`` beside the posterior's plots (the
shipped model's file ships with the package), under a key of everything they depend on:
the posterior file's and the evidence table's sha256, the frailty quadrature, the effects
per draw, the streams' seed and :data:`STORE_VERSION` (raise it when the predictive
formulas change; tests/model/test_row_predictions.py recomputes the shipped file and
fails if it differs). A run reads the stored quantiles when the key matches, and
computes the mirrored arms' trials itself otherwise (the same numbers: a store removed,
stale, or a posterior written by other means). Reading a posterior never writes the
store: the model's folder may be an installed, read-only package.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lenasim.core.hazard import OUTCOME_EVENT
from lenasim.core.writers import replace_file
from lenasim.evidence.table import EvidenceRow, evidence_hash, evidence_rows, load_arms
from lenasim.model.spec import load_spec, plots_dir

__all__ = [
    "EFFECTS_PER_DRAW",
    "QUANTILES",
    "STORE_VERSION",
    "countable_rows",
    "predict_trials",
    "row_quantiles",
    "store_path",
    "write_store",
]

STORE_VERSION = 1
STORE_SEED = 0x3199
EFFECTS_PER_DRAW = 4  # lenasim.model.predictive.EFFECTS_PER_DRAW, as validation uses
QUANTILES = (0.05, 0.5, 0.95)  # the central 90% interval and the median


def countable_rows(rows: Sequence[EvidenceRow] | None = None) -> list[EvidenceRow]:
    """The rows the model can predict: an outcome it has, and a count (not words only)."""
    rows = evidence_rows() if rows is None else rows
    return [r for r in rows if r.outcome in OUTCOME_EVENT and r.unit != "qualitative"]


def trial_stream(trial: str) -> np.random.Generator:
    """The random stream of one trial's new-trial effects (its name's CRC-32 beside
    :data:`STORE_SEED`): the same whichever other trials are predicted."""
    return np.random.default_rng([STORE_SEED, zlib.crc32(trial.encode())])


def store_path(spec_path: str | Path) -> Path:
    """models/default.yaml -> models/default/row_predictions.json."""
    return plots_dir(spec_path) / "row_predictions.json"


def _key(post, spec) -> dict:
    return {
        "version": STORE_VERSION,
        "posterior_sha256": post.hash,
        "evidence_sha256": evidence_hash(),
        "quadrature_nodes": int(spec.quadrature_nodes),
        "quadrature_rule": str(spec.quadrature_rule),
        "effects_per_draw": EFFECTS_PER_DRAW,
        "seed": STORE_SEED,
    }


def predict_trials(
    post, spec, trials: Sequence[str], *, progress=None
) -> dict[str, tuple[float, ...]]:
    """row_id -> its predictive law's :data:`QUANTILES` (as counts), for every countable
    row of ``trials``, from every draw of ``post`` (a :class:`~lenasim.model.posterior.
    Posterior`); ``spec`` its :class:`~lenasim.model.spec.ModelSpec`. ``progress``: called
    with each trial's name before it is predicted, or None."""
    # the likelihood's NumPy stack: a run whose mirrored arms are in the store needs none
    from lenasim.model.predictive import predict_rows

    by_trial: dict[str, list[EvidenceRow]] = defaultdict(list)
    for r in countable_rows():
        by_trial[r.trial].append(r)
    arms = load_arms()
    out: dict[str, tuple[float, ...]] = {}
    for trial in sorted(set(trials)):
        rows = by_trial.get(trial, [])
        if not rows:
            continue
        if progress is not None:
            progress(trial)
        laws = predict_rows(post.draws, rows, arms, quadrature_nodes=spec.quadrature_nodes,
                            quadrature_rule=spec.quadrature_rule, rng=trial_stream(trial),
                            effects_per_draw=EFFECTS_PER_DRAW)  # fmt: skip
        for r, law in zip(rows, laws, strict=True):
            out[r.row_id] = tuple(float(law.quantile(q)) for q in QUANTILES)
    return out


def write_store(post, spec_path: str | Path, *, progress=None) -> Path:
    """Predict every countable row of the evidence table from ``post`` and store the
    quantiles under their key (:func:`store_path`); returns the file written.
    ``progress``: called with each trial's name before it is predicted, or None."""
    spec = load_spec(spec_path)
    trials = {r.trial for r in countable_rows()}
    rows = predict_trials(post, spec, trials, progress=progress)
    what = (
        "lenasim: each countable evidence row's posterior predictive quantiles "
        f"{list(QUANTILES)} as a new trial would report it (counts of patients, or of "
        "cycles for unit 'cycles'), from every posterior draw (lenasim.model.row_predictions)"
    )
    body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(list(v))}" for k, v in sorted(rows.items()))
    head = f'{{\n "what": {json.dumps(what)},\n "key": {json.dumps(_key(post, spec))},\n'
    text = f'{head} "rows": {{\n{body}\n }}\n}}\n'  # one row per line
    path = store_path(spec_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, lambda tmp: tmp.write_text(text))
    return path


def _stored(post, spec, spec_path: str | Path) -> dict[str, list[float]] | None:
    """The store's rows when its key matches ``post`` and ``spec``, else None."""
    try:
        doc = json.loads(store_path(spec_path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("key") != _key(post, spec):
        return None
    rows = doc.get("rows")
    return rows if isinstance(rows, dict) else None


def row_quantiles(
    post, spec_path: str | Path, rows: Sequence[EvidenceRow]
) -> tuple[dict[str, tuple[float, ...]], bool]:
    """row_id -> :data:`QUANTILES` of each of ``rows`` (countable rows), and whether they
    were read from the store (else computed now, for the rows' trials)."""
    spec = load_spec(spec_path)
    stored = _stored(post, spec, spec_path)
    if stored is not None and all(r.row_id in stored for r in rows):
        return {r.row_id: tuple(float(x) for x in stored[r.row_id]) for r in rows}, True
    computed = predict_trials(post, spec, [r.trial for r in rows])
    return {r.row_id: computed[r.row_id] for r in rows}, False
