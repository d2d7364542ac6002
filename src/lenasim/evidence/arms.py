"""The trial arms of the evidence (``arms.yaml``): one entry per arm, with its schedule in
the regimen language, setting, partners, prophylaxis, source and judgments, validated at
load (an :class:`EvidenceError` names the file, the arm and the field). Also the reading
of the evidence's data files (:func:`read_data`), shipped in ``lenasim/evidence/data``.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError

from lenasim.core.errors import EvidenceError, LenasimError
from lenasim.core.regimen import Regimen
from lenasim.core.schema import LAX, PartnerClass, Setting, Strict, format_errors
from lenasim.core.yamlio import load_yaml

__all__ = ["Arm", "PathLike", "arms_document", "load_arms", "read_data"]

PathLike = str | Path


class Arm(Strict):
    """One trial arm: who was treated, with which schedule, and where that comes from.

    ``n`` is None when the source gives no patient count (qualitative-only arms).
    """

    arm_id: str
    trial: str = Field(..., min_length=1)
    label: str = Field(..., min_length=1)
    citation: str = Field(..., min_length=1)
    setting: Setting
    elderly: bool
    n: int | None = Field(..., ge=1)
    regimen: Regimen
    partners: Annotated[tuple[str, ...], LAX]
    partner_classes: Annotated[tuple[PartnerClass, ...], LAX]
    steroid_prophylaxis: bool
    source: str = Field(..., min_length=1)
    note: str = ""


def _data_file(name: str) -> Any:
    return resources.files("lenasim.evidence") / "data" / name


def _source(path: PathLike | None, default: str) -> Any:
    """The file ``path``, or the package's data file ``default``."""
    return _data_file(default) if path is None else Path(path)


def read_data(
    path: PathLike | None, default: str, error: type[LenasimError] = EvidenceError
) -> tuple[bytes, str]:
    src = _source(path, default)
    try:
        return src.read_bytes(), str(src)
    except OSError as err:
        raise error(f"{src}: cannot read the file ({err})") from err


# Parsed and validated tables by (file, sha256 of its bytes): a process (a search, the
# tests) reads the same files many times; the bytes are read each time, so an edited
# file is parsed again. Arms are frozen; callers get a new dict each time.
_ARMS_CACHE: dict[tuple, dict[str, Arm]] = {}
# The parsed YAML documents, by the same key: `run` reads the arms' ids when it checks a
# config's `mirrors` and the arms themselves for the mirrored trial (~6 ms a parse).
_DOC_CACHE: dict[tuple, Any] = {}


def arms_document(path: PathLike | None = None, error: type[LenasimError] = EvidenceError) -> Any:
    """The arms file parsed (strict YAML, not validated; ``error`` for a file that cannot
    be read or parsed), once per file content. Callers must not modify it."""
    raw, name = read_data(path, "arms.yaml", error)
    key = (name, hashlib.sha256(raw).digest())
    if key not in _DOC_CACHE:
        _DOC_CACHE[key] = load_yaml(name, error, "arms file", data=raw)
    return _DOC_CACHE[key]


def load_arms(path: PathLike | None = None) -> dict[str, Arm]:
    """Load and validate the trial arms (see :func:`_load_arms`), once per file content."""
    raw, name = read_data(path, "arms.yaml")
    key = (name, hashlib.sha256(raw).digest())
    if key not in _ARMS_CACHE:
        _ARMS_CACHE[key] = _load_arms(path)
    return dict(_ARMS_CACHE[key])


def _load_arms(path: PathLike | None = None) -> dict[str, Arm]:
    """Load and validate the trial arms.

    Parameters
    ----------
    path : arms YAML file; default the package's ``data/arms.yaml``.

    Returns
    -------
    dict of arm id -> :class:`Arm`, in file order.
    """
    name = str(_source(path, "arms.yaml"))  # (the file is read once, by arms_document)
    # Strict YAML: an arm id given twice is an error naming both lines.
    doc = arms_document(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("arms"), dict) or not doc["arms"]:
        raise EvidenceError(f"{name}: expected a top-level mapping `arms:` of arm_id -> arm fields")
    out: dict[str, Arm] = {}
    for arm_id, spec in doc["arms"].items():
        if not isinstance(arm_id, str) or not arm_id:
            raise EvidenceError(f"{name}: arms: arm id {arm_id!r} must be text; fix: quote it")
        if not isinstance(spec, dict):
            raise EvidenceError(f"{name}: arms.{arm_id}: expected a mapping of fields")
        if "arm_id" in spec:
            raise EvidenceError(
                f"{name}: arms.{arm_id}.arm_id: the arm id is the mapping key; remove this field"
            )
        try:
            out[arm_id] = Arm.model_validate({"arm_id": arm_id, **spec})
        except ValidationError as err:
            raise EvidenceError(format_errors(err, Arm, name, root=("arms", arm_id))) from None
    return out
