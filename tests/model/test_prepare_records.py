"""prepare and predict_rows take the evidence rows as records (evidence_rows, without
pandas, the run's mirrored trial) or as a DataFrame (fit, validate): the same arrays and
laws, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers import assert_leaves_unimported
from lenasim.evidence.table import evidence_rows, fitted_rows, load_arms, load_evidence
from lenasim.model.likelihood import prepare
from lenasim.model.posterior import load_posterior
from lenasim.model.predictive import predict_rows

MODELS = Path(__file__).resolve().parents[2] / "src" / "lenasim" / "models"


def _same_data(a, b):
    assert a.trials == b.trials and a.features.keys() == b.features.keys()
    for k in a.features:
        np.testing.assert_array_equal(a.features[k], b.features[k])
    for f in ("mask", "comp_event", "comp_severe", "comp_trial", "comp_patients_unit",
              "mixing", "row_unit", "events", "n", "row_patients", "z", "w"):  # fmt: skip
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype, f
        np.testing.assert_array_equal(x, y, err_msg=f)


def test_prepare_from_records_is_prepare_from_the_dataframe():
    """All fitted rows of the shipped table (every unit, pooled rows)."""
    recs = [r for r in evidence_rows() if r.in_fit]
    df = fitted_rows(load_evidence())
    assert len(recs) == len(df) and {r.unit for r in recs} == {"patients", "cycle_k", "cycles"}
    _same_data(prepare(recs, load_arms(), 21), prepare(df, load_arms(), 21))


def test_predict_rows_from_records_is_bit_for_bit():
    """A mirrored arm's rows (patients and cycles units) on 30 shipped draws, same seed."""
    draws = load_posterior(MODELS / "default.nc", MODELS / "default.yaml").draws
    draws = draws.take(np.arange(30))
    recs = [r for r in evidence_rows()
            if "chen_2011_amended" in r.arm_ids and r.outcome != "flare_grade2plus"]  # fmt: skip
    ev = load_evidence()
    df = ev[ev["row_id"].isin([r.row_id for r in recs])]

    def laws(rows):
        out = predict_rows(draws, rows, load_arms(), quadrature_nodes=21,
                           rng=np.random.default_rng(7))  # fmt: skip
        return [(law.pmf_table,) if law.discrete else (law.mu, law.sd) for law in out]

    a, b = laws(recs), laws(df)
    assert len(a) == len(recs) >= 4 and any(len(x) == 2 for x in a)  # a cycles row
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


def test_the_likelihood_and_predictive_modules_import_no_pandas():
    assert_leaves_unimported(
        "import lenasim.model.predictive, lenasim.model.likelihood, lenasim.model.given",
        ("pandas", "pyarrow"),
    )


def test_blocks_on_the_same_cells_share_their_hazard_bit_for_bit():
    """A mirrored arm's neutropenia rows in patients and in cycles count the same cells,
    as do another arm's flare rows of any grade and of grade >= 3: the later block reuses
    the earlier's hazard, and the rates are those computed block by block."""
    import dataclasses

    from lenasim.model.likelihood import params_from_draws, row_probabilities

    draws = load_posterior(MODELS / "default.nc", MODELS / "default.yaml").draws
    draws = draws.take(np.arange(64))
    for arm, expected in (("chen_2011_amended", [("neutropenia", False, "cycles")]),
                          ("ferrajoli_2011_lr", [("flare", True, "patients")])):  # fmt: skip
        recs = [r for r in evidence_rows() if arm in r.arm_ids and r.outcome != "flare_grade2plus"
                and r.unit != "qualitative"]  # fmt: skip
        data = prepare(recs, load_arms(), 21)
        shared = [b for b in data.blocks if b.same_cells_as is not None]
        assert [(b.event, b.severe, b.unit) for b in shared] == expected
        apart = dataclasses.replace(data)
        apart.__dict__["blocks"] = tuple(dataclasses.replace(b, same_cells_as=None)
                                         for b in data.blocks)  # fmt: skip
        params = params_from_draws(draws, len(data.trials))
        for a, b in zip(row_probabilities(params, data, draws.terms),
                        row_probabilities(params, apart, draws.terms), strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b)
    fitted = prepare(fitted_rows(load_evidence()), load_arms(), 21)  # the fit's blocks
    for b in fitted.blocks:
        if b.same_cells_as is not None:
            a = fitted.blocks[b.same_cells_as]
            assert a.event == b.event and (a.severe, a.unit) != (b.severe, b.unit)
