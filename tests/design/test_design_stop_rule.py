"""Overdose control's stop rule apart from its escalation rule (issue 25, item 1):
``stop_probability`` and ``min_patients_to_stop``.

Two models: a hand-made one whose draws give P(risk > limit) exactly (no data: the
weights are the prior), for the decisions at the threshold; and the two-parameter
logistic model of test_design_update, for whole trials.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from lenasim.core.errors import ConfigError
from lenasim.design.config import load_design
from lenasim.design.rules import OverdoseControl
from lenasim.design.trial import Data, Decision, TrialDesign, run_trial
from lenasim.design.truth import dose_level_outcomes
from lenasim.design.update import DrawModel

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "design_untreated.yaml"
MAXP = 0.25


def _exact_model(p_exceed: list[float], n: int = 100) -> DrawModel:
    """Draws 0..n-1 with equal prior weight; candidate j's risk is above the limit (0.3)
    in the first round(p_exceed[j] * n) draws, so that P(risk_j > limit) = p_exceed[j]."""
    j = len(p_exceed)
    risk = np.full((n, j), 0.1)
    for k, q in enumerate(p_exceed):
        risk[: round(q * n), k] = 0.5
    return DrawModel(
        p=risk[:, :, None, None],
        events=np.array([0]),
        limit_risk=risk[:, :, None],
        limit_max=np.array([0.3]),
        max_probability=MAXP,
        prior=np.full(n, 1.0 / n),
    )


def _data(n_treated: list[int]) -> Data:
    """No event and no follow-up yet (the likelihood is flat: the weights are the prior),
    with these patients enrolled."""
    j = len(n_treated)
    z = np.zeros((j, 1, 1))
    zj = np.zeros(j, np.int64)
    return Data(z, z.copy(), zj, zj.copy(), np.asarray(n_treated, np.int64))


def _old_decide(rule: OverdoseControl, data: Data, current: int, highest: int) -> Decision:
    """The decision before the stop rule (commit d0cd57c): the lowest unacceptable (in a
    partial order: every least intense one blocked) stops the trial."""
    if rule.below is not None:
        blocked, _, ess = rule._blocked(data)
        if all(blocked[j] for j in range(blocked.size) if not rule.below[j]):
            return Decision(current, "too_toxic", -1, low_ess=ess < rule.min_ess)
        return rule._partial(data, current)  # unchanged when a least intense one is open
    bad, ess = rule._first_bad(data)
    low = ess < rule.min_ess
    if bad == 0:
        return Decision(current, "too_toxic", -1, low_ess=low)
    nxt = min(bad - 1, highest + 1)
    return Decision(min(nxt, current) if low else nxt, low_ess=low)


class _Old(OverdoseControl):
    def decide(self, data, current, highest):
        return _old_decide(self, data, current, highest)


def test_at_the_lowest_between_the_thresholds_the_trial_stays_instead_of_stopping():
    model = _exact_model([0.40, 0.60, 0.80])  # the lowest unacceptable (0.40 > 0.25)
    data = _data([3, 0, 0])
    assert OverdoseControl(model).decide(data, 0, 0).stop == "too_toxic"  # today's rule
    assert OverdoseControl(model, stop_probability=0.25).decide(data, 0, 0).stop == "too_toxic"
    stay = OverdoseControl(model, stop_probability=0.5).decide(data, 0, 0)
    assert stay.stop is None and stay.next == 0
    # From a higher candidate, down to the lowest (not a stop)
    down = OverdoseControl(model, stop_probability=0.5).decide(_data([3, 3, 0]), 1, 1)
    assert down.stop is None and down.next == 0
    # Beyond the stop threshold it stops
    assert OverdoseControl(model, stop_probability=0.39).decide(data, 0, 0).stop == "too_toxic"


def test_min_patients_to_stop_holds_the_stop_until_reached():
    model = _exact_model([0.40, 0.60])
    rule = OverdoseControl(model, min_patients_to_stop=6)
    for n in (0, 3, 5):
        dec = rule.decide(_data([n, 0]), 0, 0)
        assert dec.stop is None and dec.next == 0, n
    assert rule.decide(_data([6, 0]), 0, 0).stop == "too_toxic"
    assert rule.decide(_data([9, 3]), 1, 1).stop == "too_toxic"
    # Both: enough patients but not enough evidence, and the reverse
    both = OverdoseControl(model, stop_probability=0.5, min_patients_to_stop=6)
    assert both.decide(_data([6, 0]), 0, 0).stop is None
    strong = _exact_model([0.70, 0.80])
    both = OverdoseControl(strong, stop_probability=0.5, min_patients_to_stop=6)
    assert both.decide(_data([3, 0]), 0, 0).stop is None
    assert both.decide(_data([6, 0]), 0, 0).stop == "too_toxic"


def test_an_acceptable_lowest_is_never_a_stop_and_escalation_is_unchanged():
    model = _exact_model([0.10, 0.20, 0.40])
    for kw in ({}, {"stop_probability": 0.5}, {"min_patients_to_stop": 6}):
        dec = OverdoseControl(model, **kw).decide(_data([3, 3, 0]), 1, 1)
        assert dec == Decision(1), kw  # the candidate below the first unacceptable


def test_partial_order_stays_on_a_least_intense_candidate_until_the_stop_fires():
    # 0 and 1 least intense, 2 above both
    below = ((), (), (0, 1))
    model = _exact_model([0.40, 0.30, 0.90])
    data = _data([3, 3, 0])
    assert OverdoseControl(model, below=below).decide(data, 0, 0).stop == "too_toxic"
    rule = OverdoseControl(model, below=below, stop_probability=0.5)
    assert rule.decide(data, 0, 0) == Decision(0)  # current is least intense: stay
    assert rule.decide(data, 1, 1) == Decision(1)
    assert rule.decide(_data([3, 3, 3]), 2, 2) == Decision(1)  # the root less likely over
    # Fires only when every least intense candidate is beyond stop_probability
    assert (
        OverdoseControl(model, below=below, stop_probability=0.35).decide(data, 0, 0).stop is None
    )
    hi = _exact_model([0.60, 0.55, 0.90])
    assert (
        OverdoseControl(hi, below=below, stop_probability=0.5).decide(data, 0, 0).stop
        == "too_toxic"
    )
    # min_patients_to_stop counts the least intense candidates together
    rule = OverdoseControl(hi, below=below, min_patients_to_stop=6)
    assert rule.decide(_data([3, 0, 0]), 0, 0).stop is None
    assert rule.decide(data, 0, 0).stop == "too_toxic"


def _logistic_model(n: int = 2000, seed: int = 5) -> DrawModel:
    """test_design_update's working model: logit p_j = a + exp(l) x_j, one cycle."""
    x = (np.arange(5) - 2) * 0.7
    rng = np.random.default_rng(seed)
    a, lb = rng.normal(-1.5, 0.8, n), rng.normal(-0.3, 0.4, n)
    p = expit(a[:, None] + np.exp(lb)[:, None] * x[None, :])
    return DrawModel(p=p[:, :, None, None], events=np.array([0]), limit_risk=p[:, :, None],
                     limit_max=np.array([0.30]), max_probability=MAXP,
                     prior=np.full(n, 1.0 / n))  # fmt: skip


@pytest.mark.parametrize("below", [None, ((), (0,), (1,), (2,), (3,))])
def test_defaults_reproduce_the_old_decisions_exactly(below):
    """Whole trials under toxic and safe truths: the default rule (and stop_probability
    equal to max_probability) makes every decision the old rule made, with some trials
    stopping for toxicity (so the comparison covers stops)."""
    model = _logistic_model()
    design = TrialDesign(cohort_size=3, max_patients=24, followup_days=28, below=below)
    stops = 0
    for t in range(40):
        rates = [0.25, 0.35, 0.5, 0.6, 0.7] if t % 2 else [0.05, 0.1, 0.2, 0.3, 0.45]
        out = dose_level_outcomes(rates, 24, seed=11, trial=t)
        old = run_trial(out, design, _Old(model, below=below), None)
        for rule in (OverdoseControl(model, below=below),
                     OverdoseControl(model, below=below, stop_probability=MAXP)):  # fmt: skip
            new = run_trial(out, design, rule, None)
            assert (new.selected, new.stop) == (old.selected, old.stop), t
            assert np.array_equal(new.candidate, old.candidate), t
        stops += old.stop == "too_toxic"
    assert 3 <= stops <= 37


def test_a_higher_stop_probability_stops_less_often_on_the_same_patients():
    model = _logistic_model()
    design = TrialDesign(cohort_size=3, max_patients=24, followup_days=28)
    count = {}
    for sp in (None, 0.5, 0.8):
        count[sp] = 0
        for t in range(30):
            out = dose_level_outcomes([0.3, 0.4, 0.5, 0.6, 0.7], 24, seed=3, trial=t)
            rec = run_trial(out, design, OverdoseControl(model, stop_probability=sp), None)
            count[sp] += rec.stop == "too_toxic"
    assert count[None] >= count[0.5] >= count[0.8]
    assert count[None] > count[0.8]


def _write(tmp: Path, extra: str, max_probability: float = 0.25) -> Path:
    text = SHIPPED.read_text()
    text = text.replace("max_probability: 0.25", f"max_probability: {max_probability}")
    text = text.replace("decide:\n  rule: overdose_control\n",
                        "decide:\n  rule: overdose_control\n" + extra)  # fmt: skip
    text = text.replace(
        "spec: ../models/default.yaml", f"spec: {SHIPPED.parents[1]}/models/default.yaml"
    )
    path = tmp / "design.yaml"
    path.write_text(text)
    return path


def test_config_defaults_and_the_error_for_a_stop_below_escalation(tmp_path):
    shipped = load_design(SHIPPED)
    assert shipped.decide.stop_probability is None
    assert shipped.decide.min_patients_to_stop is None
    cfg = load_design(_write(tmp_path, "  stop_probability: 0.5\n  min_patients_to_stop: 6\n"))
    assert (cfg.decide.stop_probability, cfg.decide.min_patients_to_stop) == (0.5, 6)
    with pytest.raises(ConfigError) as err:
        load_design(_write(tmp_path, "  stop_probability: 0.2\n"))
    msg = str(err.value)
    assert "design.yaml" in msg and "decide.stop_probability" in msg
    assert "limits.max_probability" in msg and "at least 0.25" in msg
    with pytest.raises(ConfigError, match="stop_probabilty"):
        load_design(_write(tmp_path, "  stop_probabilty: 0.5\n"))  # misspelt: strict


def test_make_rule_passes_the_settings():
    from lenasim.design.simulate import make_rule

    cfg = load_design(SHIPPED)
    cfg = cfg.model_copy(update={"decide": cfg.decide.model_copy(
        update={"stop_probability": 0.5, "min_patients_to_stop": 6})})  # fmt: skip
    rule = make_rule(cfg, _exact_model([0.1]))
    assert (rule.stop_probability, rule.min_patients_to_stop) == (0.5, 6)


def test_the_stop_keys_are_refused_with_another_rule(tmp_path):
    path = _write(tmp_path, "  min_patients_to_stop: 6\n")
    path.write_text(path.read_text().replace("rule: overdose_control", "rule: three_plus_three"))
    with pytest.raises(
        ConfigError, match=r"decide.min_patients_to_stop is for rule overdose_control"
    ):
        load_design(path)
