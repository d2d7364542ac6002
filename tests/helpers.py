"""Small builders shared by the tests (not fixtures: plain importable helpers)."""

from __future__ import annotations

from dataclasses import dataclass

from lenasim.regimen import Regimen


@dataclass(frozen=True)
class Arm:
    """A synthetic trial arm with the fields the model reads (the evidence loader's
    arms carry more)."""

    n: int
    regimen: Regimen
    setting: str = "relapsed"
    elderly: bool = False
    partner_classes: tuple = ()
    steroid_prophylaxis: bool = False
