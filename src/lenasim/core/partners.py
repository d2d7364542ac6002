"""Partner drugs: the fixed registry of drug name -> drug class.

A scenario names the drugs given with lenalidomide (``partners: [rituximab]``); the
model's covariates are their classes (``anti_cd20``, ``chemo``, ``cdk_inhibitor``), so
the classes are derived from the names here and never written twice. A drug that is not
in the registry is refused with the list of known names: the model has no term for a
class it was not fitted on, and guessing one would be a silent assumption.

The drugs are those of the trials in the evidence table (rituximab, ofatumumab,
fludarabine, cyclophosphamide, flavopiridol) and the other members of the same classes
used with lenalidomide in CLL.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Literal

from lenasim.core.schema import brief

__all__ = ["PARTNERS", "PartnerDrug", "known_partners", "partner_classes"]

PartnerDrug = Literal[
    "rituximab",
    "ofatumumab",
    "obinutuzumab",
    "fludarabine",
    "cyclophosphamide",
    "bendamustine",
    "chlorambucil",
    "flavopiridol",
    "dinaciclib",
]

# drug -> class (the hazard covariate it switches on)
PARTNERS: dict[str, str] = {
    "rituximab": "anti_cd20",
    "ofatumumab": "anti_cd20",
    "obinutuzumab": "anti_cd20",
    "fludarabine": "chemo",
    "cyclophosphamide": "chemo",
    "bendamustine": "chemo",
    "chlorambucil": "chemo",
    "flavopiridol": "cdk_inhibitor",  # alvocidib
    "dinaciclib": "cdk_inhibitor",
}
assert set(PARTNERS) == set(typing.get_args(PartnerDrug))  # one list, two views

# The order of the classes (as the hazard's covariates list them).
_CLASS_ORDER = ("anti_cd20", "chemo", "cdk_inhibitor")


def known_partners() -> tuple[str, ...]:
    """The drug names the registry knows, alphabetically."""
    return tuple(sorted(PARTNERS))


def partner_classes(drugs: Iterable[str]) -> tuple[str, ...]:
    """The classes of the named drugs, each once, in the covariates' order.

    Raises
    ------
    ValueError
        For a drug the registry does not know, listing the known names.
    """
    drugs = list(drugs)
    unknown = [d for d in drugs if d not in PARTNERS]
    if unknown:
        raise ValueError(
            f"unknown partner drug {brief(unknown[0])}; known drugs: {', '.join(known_partners())}"
        )
    got = {PARTNERS[d] for d in drugs}
    return tuple(c for c in _CLASS_ORDER if c in got)
