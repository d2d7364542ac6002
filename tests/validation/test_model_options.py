"""The spec options of docs/model_options/: each file is the shipped spec with only its
declared option changed (so that a leave-one-trial-out difference is that option's), and
the folder's README lists every one."""

from __future__ import annotations

from pathlib import Path

import pytest

from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.model.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "docs" / "model_options"

# file -> the paths (dotted, into the spec's model_dump) it may change besides its name
OPTIONS = {
    "delivered_dose.yaml": {"dose"},
    "cycles_distributed.yaml": {"cycles_at_risk"},
    "cloglog_daily.yaml": {"link"},
    "neutropenia_cumulative.yaml": {"events.neutropenia.terms", "priors.neutropenia"},
    "neutropenia_partners.yaml": {"priors.neutropenia"},
    "delivered_partners.yaml": {"dose", "priors.neutropenia"},
}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out |= _flat(v, key + ".")
        else:
            out[key] = v
    return out


def test_every_option_file_is_listed_here_and_in_the_folder_readme():
    files = {p.name for p in FOLDER.glob("*.yaml")}
    assert files == set(OPTIONS)
    readme = (FOLDER / "README.md").read_text()
    assert all(f"`{f}`" in readme for f in files)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_an_option_file_differs_from_the_default_only_in_its_option(name):
    default = _flat(load_spec(DEFAULT_SPEC).model_dump())
    option = _flat(load_spec(FOLDER / name).model_dump())
    changed = {k for k in default.keys() | option.keys() if default.get(k) != option.get(k)}
    allowed = OPTIONS[name] | {"name"}
    stray = {k for k in changed if not any(k == a or k.startswith(a + ".") for a in allowed)}
    assert not stray, f"{name} changes {sorted(stray)} besides its option"
    assert changed - {"name"}, f"{name} changes nothing"
