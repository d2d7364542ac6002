"""The trials as they were given (issue 23 item 2): the spec options `dose: delivered`
and `cycles_at_risk: distributed`, their data file, and what they change in the
likelihood (and that the defaults change nothing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from builders import params_from_theta
from lenasim.core.errors import EvidenceError
from lenasim.core.hazard import EVENTS
from lenasim.evidence.given import load_as_given
from lenasim.evidence.table import fitted_rows, load_arms, load_evidence
from lenasim.model.fit import load_data
from lenasim.model.given import GroupArm, as_given, cycles_nodes
from lenasim.model.kernel import ThetaLayout, kernel_arrays, loglik_kernel
from lenasim.model.likelihood import arm_features, prepare, row_probabilities
from lenasim.model.spec import load_spec

SPEC = load_spec("models/default.yaml")
DELIVERED = SPEC.model_copy(update={"dose": "delivered"})
DISTRIBUTED = SPEC.model_copy(update={"cycles_at_risk": "distributed"})
BOTH = SPEC.model_copy(update={"dose": "delivered", "cycles_at_risk": "distributed"})


def _params(terms, n_trials, seed):
    """One draw of parameters (a leading draws axis of 1), slopes positive."""
    rng = np.random.default_rng(seed)
    one = lambda v: np.atleast_1d(np.asarray(v, float))  # noqa: E731
    blocks = (*EVENTS, "flare_severity")
    return {
        "intercept": {b: one(rng.normal(-1.5, 0.3)) for b in blocks},
        "beta": {b: {t: one(rng.uniform(0.2, 0.8)) for t in terms[b]} for b in blocks},
        "sigma": {ev: one(rng.uniform(0.5, 1.5)) for ev in EVENTS},
        "u": {ev: np.zeros((1, n_trials)) for ev in EVENTS},
    }


def test_the_data_file_is_consistent_with_the_arms_and_cites_every_number():
    arms = load_arms()
    given = load_as_given(arms=arms)
    assert set(given.delivered) == {"ferrajoli_2008", "blum_flavopiridol"}
    for arm_id, d in given.delivered.items():
        assert sum(g.n for g in d.groups) == arms[arm_id].n
        for g in d.groups:
            assert "seed 00" in g.source
    for c in given.cycles.values():
        assert c.source


def test_the_defaults_change_nothing_and_keep_the_shipped_posterior_current():
    rows, arms = fitted_rows(load_evidence()), load_arms()
    r2, a2 = as_given(rows, arms, SPEC)
    assert r2 is rows and a2 is arms
    explicit = SPEC.model_copy(update={"dose": "planned", "cycles_at_risk": "point"})
    assert explicit.hash() == SPEC.hash()
    assert DELIVERED.hash() != SPEC.hash() != DISTRIBUTED.hash()


def test_delivered_groups_cap_the_dose_from_their_cycle():
    """Ferrajoli 2008: planned 10 mg rising by 5 mg a cycle to 25 mg; the groups capped at
    5 mg from cycle 2, at 10 mg throughout, and the 3 who reached 25 mg as planned."""
    arm = load_arms()["ferrajoli_2008"]
    planned = arm_features(arm, 6)["log_dose"]
    np.testing.assert_allclose(np.exp(planned) * 10, [10, 15, 20, 25, 25, 25])
    low = arm_features(GroupArm(arm, "x~0", 11, 5.0, 2), 6)["log_dose"]
    np.testing.assert_allclose(np.exp(low) * 10, [10, 5, 5, 5, 5, 5])
    ten = arm_features(GroupArm(arm, "x~1", 30, 10.0, 1), 6)
    np.testing.assert_allclose(np.exp(ten["log_dose"]) * 10, 10)
    assert np.all(ten["rise"] == 0)
    same = arm_features(GroupArm(arm, "x~2", 3, None, 1), 6)["log_dose"]
    np.testing.assert_array_equal(same, planned)


def test_delivered_dose_lowers_ferrajolis_predicted_risk_and_only_the_reporting_arms():
    """With positive dose slopes, the delivered dose (median 10 mg) gives Ferrajoli 2008
    less neutropenia than the planned escalation to 25 mg; rows of arms without a
    delivered dose keep their rates exactly."""
    planned, delivered = load_data(SPEC), load_data(DELIVERED)
    params = _params(SPEC.terms_map(), len(planned.trials), 5)
    P0 = row_probabilities(params, planned, SPEC.terms_map())[0][0]
    P1 = row_probabilities(params, delivered, SPEC.terms_map())[0][0]
    ids = list(planned.rows["row_id"])
    i = ids.index("ferrajoli08_neutropenia")
    assert P1[i] < P0[i] - 0.01
    touched = planned.rows["trial"].isin(["ferrajoli_2008", "blum_flavopiridol"]).to_numpy()
    np.testing.assert_allclose(P1[~touched], P0[~touched], rtol=1e-12)


@pytest.mark.parametrize("basis", ["median", "mean", "planned", "assumed"])
def test_cycles_nodes_are_a_distribution_around_the_stated_value(basis):
    nodes = cycles_nodes(6.0, basis, None if basis != "planned" else 6)
    m = np.array([k for k, _ in nodes], float)
    w = np.array([v for _, v in nodes])
    assert w.sum() == pytest.approx(1.0) and np.all(m >= 1)
    assert 6 in m  # the middle node is the stated value (or the mean's median, rounded)
    if basis == "planned":
        assert m.max() == 6
    else:
        assert m.min() < 6 < m.max()
    ref = [k for k, _ in cycles_nodes(6.0, "assumed", None)]  # the widest: value unknown
    assert np.log(m.max() / m.min()) <= np.log(max(ref) / min(ref)) + 1e-12


def test_distributed_cycles_is_the_mixture_of_the_point_rows():
    """A distributed row's rate equals the weighted mean of the same row prepared at each
    node's cycles at risk (the oracle: the point likelihood, one m at a time)."""
    rows, arms = as_given(fitted_rows(load_evidence()), load_arms(), DISTRIBUTED)
    row = rows[rows["row_id"] == "ferrajoli08_neutropenia"]
    nodes = row["cycles_dist"].iloc[0]
    assert len(nodes) == 3
    terms = SPEC.terms_map()
    data = prepare(row, arms, SPEC.quadrature_nodes, SPEC.quadrature_rule)
    params = _params(terms, 1, 9)
    mixed = row_probabilities(params, data, terms)[0][0, 0]
    parts = []
    for m, w in nodes:
        point = row.drop(columns="cycles_dist").assign(cycles_at_risk=m)
        d = prepare(point, arms, SPEC.quadrature_nodes, SPEC.quadrature_rule)
        parts.append(w * row_probabilities(params, d, terms)[0][0, 0])
    assert mixed == pytest.approx(sum(parts), rel=1e-12)
    assert abs(mixed - parts[1] / nodes[1][1]) > 1e-3  # not the point value


def test_distributed_cycles_leave_other_units_at_their_point_value():
    rows, _ = as_given(fitted_rows(load_evidence()), load_arms(), DISTRIBUTED)
    assert rows.loc[rows["unit"] != "patients", "cycles_dist"].isna().all()
    got = rows.set_index("row_id")["cycles_dist"]
    assert got["andritsos08_tls"] is None  # the report's window: course 1
    assert got["chen11_neutropenia_patients"] is not None
    bad = rows[rows["row_id"] == "aue_neutropenia_cycles"].copy()
    bad["cycles_dist"] = [((2, 0.5), (6, 0.5))]
    with pytest.raises(ValueError, match="needs unit patients"):
        prepare(bad, load_arms(), 21)


def test_kernel_agrees_with_the_numpy_formulas_under_both_options():
    """The compiled kernel (the fit's likelihood) reads the options' components as the
    NumPy formulas do: its rows' rates equal row_probabilities'."""
    data = load_data(BOTH)
    terms = SPEC.terms_map()
    lay = ThetaLayout(terms, len(data.trials))
    rng = np.random.default_rng(2)
    theta = rng.normal(0.0, 0.5, lay.size)
    for ev in EVENTS:
        theta[lay.sigma(ev)] = rng.uniform(0.3, 2.0)
    _, _, p_row = loglik_kernel(theta, np.ones(len(data.rows)), data.events.astype(float),
                                *kernel_arrays(data, terms))  # fmt: skip
    params = params_from_theta(theta, lay, terms, len(data.trials))
    P, _ = row_probabilities(params, data, terms)
    np.testing.assert_allclose(p_row, np.clip(P[0], 1e-9, 1 - 1e-9), rtol=1e-10, atol=1e-14)


def _write(tmp_path, text):
    p = tmp_path / "as_given.yaml"
    p.write_text(text)
    return p


def test_groups_that_do_not_add_up_to_the_arm_are_refused_in_words(tmp_path):
    p = _write(tmp_path, (
        "delivered:\n  ferrajoli_2008:\n    note: a note of ten chars\n    groups:\n"
        "      - {n: 40, max_mg: 10, source: 'seed 002, a line'}\n"
    ))  # fmt: skip
    with pytest.raises(EvidenceError) as err:
        load_as_given(p, arms=load_arms())
    msg = str(err.value)
    assert str(p) in msg and "delivered.ferrajoli_2008.groups" in msg
    assert "40" in msg and "n = 44" in msg


def test_unknown_arms_and_fields_are_refused_in_words(tmp_path):
    p = _write(tmp_path, "cycles:\n  ferrajoli_2009: {basis: assumed, source: 'not a real arm'}\n")
    with pytest.raises(EvidenceError, match="cycles.ferrajoli_2009: no such arm"):
        load_as_given(p, arms=load_arms())
    p = _write(tmp_path, "cycles:\n  ferrajoli_2008: {basis: guessed, source: 'a basis unknown'}\n")
    with pytest.raises(EvidenceError, match="basis"):
        load_as_given(p)


def test_a_row_pooling_arms_with_different_bases_is_refused():
    rows, arms = fitted_rows(load_evidence()), load_arms()
    row = rows[rows["row_id"] == "aue_tls"].copy()
    row["arm_ids"] = [("aue_20mg", "ferrajoli_2008")]
    with pytest.raises(ValueError, match="differ in as_given"):
        as_given(pd.concat([row]), arms, DISTRIBUTED)


def test_a_spec_using_the_options_hashes_their_data(monkeypatch):
    """A posterior fitted with an option is stale when as_given.yaml changes."""
    import lenasim.model.spec as spec_mod

    before = DELIVERED.hash(), SPEC.hash()
    monkeypatch.setattr(spec_mod, "as_given_bytes", lambda: b"changed")
    assert DELIVERED.hash() != before[0]
    assert SPEC.hash() == before[1]
