"""The trials as they were given (``data/as_given.yaml``): the doses the patients of an
arm received where they differ from its protocol, and what each arm's cycles at risk
rest on. Read by the model spec options ``dose: delivered`` and ``cycles_at_risk:
distributed`` (:mod:`lenasim.model.given`); validated strictly, against the arms."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from lenasim.core.errors import EvidenceError
from lenasim.core.schema import Strict, format_errors
from lenasim.core.yamlio import load_yaml


class DeliveredGroup(Strict):
    """Patients of an arm on its planned schedule with the daily dose capped at
    ``max_mg`` from cycle ``from_cycle`` on (no cap: the planned schedule)."""

    n: int = Field(..., ge=1)
    max_mg: float | None = Field(None, gt=0)
    from_cycle: int = Field(1, ge=1)
    source: str = Field(..., min_length=10)


class Delivered(Strict):
    note: str = Field(..., min_length=10)
    groups: list[DeliveredGroup] = Field(..., min_length=1)


class CyclesBasis(Strict):
    """What an arm's cycles at risk rest on (see the file's comments)."""

    basis: Literal["median", "mean", "planned", "assumed"]
    max: int | None = Field(None, ge=1)
    source: str = Field(..., min_length=10)


class AsGiven(Strict):
    delivered: dict[str, Delivered] = Field(default_factory=dict)
    planned: dict[str, str] = Field(default_factory=dict)
    cycles: dict[str, CyclesBasis] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _disjoint(self) -> AsGiven:
        both = sorted(set(self.delivered) & set(self.planned))
        if both:
            raise ValueError(f"arms {both} are listed under both `delivered` and `planned`")
        return self


def as_given_bytes() -> bytes:
    """The bytes of the package's ``as_given.yaml`` (part of the hash of a spec using it)."""
    return (resources.files("lenasim.evidence") / "data" / "as_given.yaml").read_bytes()


def load_as_given(path: str | Path | None = None, arms: dict | None = None) -> AsGiven:
    """Load and validate ``as_given.yaml`` (default: the package's); with ``arms``, check
    that every arm it names exists and that each arm's groups add up to its n."""
    src = resources.files("lenasim.evidence") / "data" / "as_given.yaml"
    name = str(src) if path is None else str(path)
    try:
        raw = (src if path is None else Path(path)).read_bytes()
    except OSError as err:
        raise EvidenceError(f"{name}: cannot read the file ({err})") from err
    doc = load_yaml(name, EvidenceError, "as-given file", data=raw)
    if not isinstance(doc, dict):
        raise EvidenceError(f"{name}: expected a mapping with `delivered`, `planned`, `cycles`")
    try:
        out = AsGiven.model_validate(doc)
    except ValidationError as err:
        raise EvidenceError(format_errors(err, AsGiven, name)) from None
    if arms is not None:
        for key in ("delivered", "planned", "cycles"):
            for arm_id in getattr(out, key):
                if arm_id not in arms:
                    raise EvidenceError(
                        f"{name}: {key}.{arm_id}: no such arm in arms.yaml; the arms are "
                        f"{', '.join(arms)}"
                    )
        for arm_id, d in out.delivered.items():
            total = sum(g.n for g in d.groups)
            if total != arms[arm_id].n:
                raise EvidenceError(
                    f"{name}: delivered.{arm_id}.groups: the groups' n add up to {total}, the "
                    f"arm has n = {arms[arm_id].n}; they must add up to the arm's patients"
                )
    return out
