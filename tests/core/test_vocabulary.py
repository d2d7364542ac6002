"""The vocabulary: the covariate encoding by hand, the fit and the engine encoding a
patient alike, titles, and the dose columns in the engine's order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from builders import Arm, make_draws
from lenasim.core.regimen import Regimen
from lenasim.core.vocabulary import (
    COVARIATE_TERMS,
    DOSE_COLUMNS,
    FITTED_OUTCOMES,
    OUTCOME_EVENT,
    OUTCOMES,
    OUTPUT_EVENTS,
    covariate_features,
    event_title,
)
from lenasim.model.likelihood import arm_features
from lenasim.simulation.engine import simulate
from lenasim.simulation.scenario import Population, Rules
from lenasim.simulation.tables import state_table


def test_covariate_features_by_hand():
    """Consolidation with chemo-immunotherapy and steroid prophylaxis, for an elderly
    patient in the first cycle and a younger one in a later cycle."""
    got = covariate_features("consolidation", ["chemo", "anti_cd20"], True,
                             elderly=[1, 0], first=[1.0, 0.0])  # fmt: skip
    want = {
        "untreated": [0, 0], "consolidation": [1, 1], "elderly": [1, 0],
        "anti_cd20": [1, 1], "chemo": [1, 1], "cdk_inhibitor": [0, 0], "steroid": [1, 0],
    }  # fmt: skip
    assert list(got) == list(COVARIATE_TERMS)
    for term, values in want.items():
        assert got[term].dtype == np.float64
        np.testing.assert_array_equal(got[term], values, err_msg=term)


def test_relapsed_single_agent_is_the_reference():
    got = covariate_features("relapsed", (), False, elderly=0, first=np.ones((2, 3)))
    assert all(v.shape == (2, 3) and not v.any() for v in got.values())
    untreated = covariate_features("untreated", ["cdk_inhibitor"], False, elderly=0, first=1)
    assert {t for t, v in untreated.items() if v == 1} == {"untreated", "cdk_inhibitor"}


@pytest.mark.parametrize(
    ("setting", "classes", "message"),
    [("relapse", (), "unknown setting 'relapse'"), ("relapsed", ("anti-CD20",), "anti-CD20")],
)
def test_unknown_setting_or_partner_class_is_refused(setting, classes, message):
    with pytest.raises(ValueError, match=message):
        covariate_features(setting, classes, False, elderly=0, first=1)


REGIMEN = Regimen(cycle_days=28, days_on=(1, 21), start_mg=5, cycles=2)
CASES = list(
    itertools.product(
        ["relapsed", "untreated", "consolidation"],
        [(), ("anti_cd20",), ("chemo", "cdk_inhibitor")],
        [False, True],  # steroid prophylaxis
        [0, 1],  # elderly
    )
)


@pytest.mark.parametrize(("setting", "classes", "steroid", "elderly"), CASES)
def test_the_fit_and_the_engine_encode_a_patient_alike(setting, classes, steroid, elderly):
    """A trial arm in the fit and the same patients in the simulator get the same
    covariate features in cycles 1 and 2 (steroid only in cycle 1)."""
    arm = Arm(20, REGIMEN, setting=setting, elderly=bool(elderly), partner_classes=classes,
              steroid_prophylaxis=steroid)  # fmt: skip
    fit = arm_features(arm, 2)
    # Scenarios name drugs; the registry derives their classes (lenasim.core.partners).
    drug = {"anti_cd20": "rituximab", "chemo": "fludarabine", "cdk_inhibitor": "flavopiridol"}
    pop = Population(setting=setting, partners=[drug[c] for c in classes],
                     steroid_prophylaxis=steroid, elderly_share=0.5)  # fmt: skip
    sched = REGIMEN.expand()
    level, highest = sched.start_level, -1
    for cycle in (0, 1):
        table = state_table(sched, cycle, pop)
        state = table.index(np.array(level), np.array(1), np.array(highest), np.array(elderly))
        for term in COVARIATE_TERMS:
            assert table.features[term][state] == fit[term][cycle], (term, cycle)
        level, highest = int(table.end_level[state]), level
    assert fit["steroid"].tolist() == [float(steroid), 0.0]


def test_titles_cover_every_event_and_outcome():
    assert set(OUTCOME_EVENT) <= set(OUTCOMES)
    assert FITTED_OUTCOMES == tuple(OUTCOME_EVENT)
    titles = [event_title(e) for e in (*OUTPUT_EVENTS, *OUTCOMES)]
    assert all("_" not in t for t in titles)
    assert event_title("flare_grade3plus") == "Tumor flare grade >= 3"
    assert event_title("neutropenia_grade34") == event_title("neutropenia")
    assert event_title("new_event") == "new event"


def test_dose_columns_are_the_engines_dose_outputs_in_its_order():
    ds = simulate(REGIMEN.expand(), Population(setting="relapsed"), Rules(), make_draws(2),
                  n_patients=10, seed=1)  # fmt: skip
    per_cycle_dose = [v for v in ds.data_vars if ds[v].dims == ("draw", "cycle")]
    assert per_cycle_dose == list(DOSE_COLUMNS)
    assert list(ds["event"].values) == list(OUTPUT_EVENTS)
