"""Model specs (models/*.yaml) are validated strictly: each bad spec in tests/specs_bad/
(a small valid spec with one defect, said in its first line) is refused with a message
that names the file, the key and what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lenasim.core.errors import ConfigError
from lenasim.model.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "specs_bad"

# file -> patterns the message must match (besides the file name)
BAD_CASES = {
    "unknown_term.yaml": [r"events\.flare", r"unknown terms \['log_dos'\]"],
    "repeated_term.yaml": [r"events\.tls", r"repeated terms"],
    "missing_event.yaml": [r"events must be exactly", r"neutropenia"],
    "missing_severity.yaml": [r"severity", r"[Ff]ield required|required|missing"],
    "unknown_block.yaml": [r"unknown blocks \['flar'\]"],
    "missing_coef_prior.yaml": [r"no prior for flare\.log_dose", r"priors\.all"],
    "missing_tau.yaml": [r"no prior for flare\.tau"],
    "nonpositive_sigma.yaml": [r"priors\.all\.intercept\.sigma", r"greater than 0|> 0"],
    "short_why.yaml": [r"priors\.all\.frailty\.why", r"at least 10 characters"],
    "unknown_key.yaml": [r"\bquadrature_node\b", r"Extra inputs are not permitted|unknown key"],
    "few_nodes.yaml": [r"quadrature_nodes", r"greater than or equal to 3|>= 3"],
    "unknown_sampler.yaml": [r"sampler\.backend", r"nutpie"],
    "not_a_mapping.yaml": [r"mapping|dictionary"],
    "python_tag.yaml": [r"not valid YAML"],
}


def test_every_bad_spec_has_a_case():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(BAD_CASES)


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_spec_message(name):
    path = BAD / name
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    for pattern in BAD_CASES[name]:
        assert re.search(pattern, message), (pattern, message)


def test_missing_spec_names_the_default(tmp_path):
    with pytest.raises(ConfigError, match=r"model spec not found.*models/default\.yaml"):
        load_spec(tmp_path / "nope.yaml")


def test_the_shipped_spec_is_valid():
    spec = load_spec(REPO / "models" / "default.yaml")
    assert spec.terms_map()["flare"][0] == "log_dose"
