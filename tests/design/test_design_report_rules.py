"""The design report states the rules it ran under: the stop for toxicity when it is not
the escalation threshold, and a partial order by what each candidate is above."""

from __future__ import annotations

from pathlib import Path

from lenasim.design.config import load_design
from lenasim.design.report import _above_words, _order_words, _stop_words

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = CONFIGS / "design_untreated.yaml"


def _cfg(**decide):
    cfg = load_design(SHIPPED)
    return cfg.model_copy(update={"decide": cfg.decide.model_copy(update=decide)})


def test_the_stop_rule_is_stated_only_when_it_differs_from_escalation():
    assert _stop_words(_cfg()) == ""
    text = _stop_words(_cfg(stop_probability=0.5))
    assert "stops for toxicity" in text and "> 0.5" in text and "patients" not in text
    text = _stop_words(_cfg(min_patients_to_stop=6))
    assert "> 0.25" in text and "at least 6 patients" in text


def test_a_partial_order_is_named_with_what_each_candidate_is_above():
    cfg = load_design(CONFIGS / "design_untreated_partial.yaml")
    assert cfg.order == "partial"
    assert "partial order" in _order_words(cfg)
    words = [_above_words(cfg, c.name) for c in cfg.candidates]
    assert any(w == "; a least intense one" for w in words)
    for c, w in zip(cfg.candidates, words):
        for a in c.above or []:
            assert f"`{a}`" in w
    assert _above_words(load_design(SHIPPED), cfg.candidates[0].name) == ""
    assert _order_words(load_design(SHIPPED)) == "planned mg per day over the cycles"
