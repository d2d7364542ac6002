"""The arms file is parsed once per content in a process: `run` checks a config's
`mirrors` against its ids and the mirrored trial validates its arms from one parse."""

from __future__ import annotations

import pytest

from lenasim.core.errors import ConfigError, EvidenceError
from lenasim.evidence import arms as arms_mod
from lenasim.simulation import scenario


def test_the_ids_and_the_arms_come_from_one_parse(monkeypatch):
    calls = []
    real = arms_mod.load_yaml

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(arms_mod, "load_yaml", counted)
    monkeypatch.setattr(arms_mod, "_DOC_CACHE", {})
    monkeypatch.setattr(arms_mod, "_ARMS_CACHE", {})
    scenario._arm_ids.cache_clear()
    ids = scenario.evidence_arm_ids()
    assert list(arms_mod.load_arms()) == ids and len(ids) > 10
    assert len(calls) == 1 and str(calls[0]).endswith("arms.yaml")
    scenario._arm_ids.cache_clear()


def test_an_edited_file_is_parsed_again_and_errors_keep_their_type(tmp_path):
    p = tmp_path / "arms.yaml"
    p.write_text("arms:\n  a: {}\n")
    assert arms_mod.arms_document(p) == {"arms": {"a": {}}}
    p.write_text("arms:\n  b: {}\n")
    assert arms_mod.arms_document(p) == {"arms": {"b": {}}}
    p.write_text("arms: [unclosed\n")
    for error in (EvidenceError, ConfigError):
        with pytest.raises(error, match="arms.yaml"):
            arms_mod.arms_document(p, error)
    with pytest.raises(ConfigError, match="cannot read"):
        arms_mod.arms_document(tmp_path / "missing.yaml", ConfigError)
