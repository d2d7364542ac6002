"""The scenario form, generated from the config schema (the pydantic models of
:mod:`lenasim.simulation.scenario`, :mod:`lenasim.core.regimen` and
:mod:`lenasim.core.limits`): one :class:`Field` per key, with its unit and the one-line
help of the schema's description; and the two conversions between the form's values
and a config mapping (what a YAML file holds).

A value the browser sends is put in the mapping as it came (a number, text, true or
false), so that validating the mapping gives the messages ``lenasim run`` gives for
the same YAML: :func:`validate` returns them per field, the file name left out.
Lists (dose levels, days on) are typed as YAML's flow lists without the brackets
(``2.5, 5, 10``); ``posterior.spec`` and ``output`` are shown but fixed by the command
line, so the app writes nowhere else than its results folder.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from lenasim.core.errors import ConfigError
from lenasim.core.limits import LIMIT_EVENTS, RiskLimit, RiskLimits
from lenasim.core.schema import format_errors
from lenasim.core.yamlio import parse_yaml
from lenasim.simulation.scenario import Scenario

__all__ = [
    "FIELDS",
    "Field",
    "config_from_values",
    "not_in_form",
    "to_yaml",
    "validate",
    "values_from_config",
]

Kind = Literal["int", "float", "bool", "choice", "multi", "text", "list", "path", "toggle"]

# Units of the numeric (and list) keys, by key name; every one the schema has is here
# (tests/explore/test_explore.py checks it), so a new numeric key without a unit fails a test.
UNITS: dict[str, str] = {
    "patients": "patients per draw",
    # the patients' characteristics and renal dosing (issue 24)
    "female_share": "share, 0 to 1",
    "mean": "the characteristic's unit",
    "sd": "the characteristic's unit",
    "median": "the characteristic's unit",
    "gsd": "factor, >= 1",
    "profiles": "representative patients",
    "compare_starts": "mg/day, comma-separated",
    "renal_dosing": "CrCl bands and their regimens",
    "elderly_share": "share, 0 to 1",
    "cycle_days": "days",
    "days_on": "days: first, last",
    "start_mg": "mg/day",
    "target_mg": "mg/day",
    "max_mg": "mg/day",
    "step_mg": "mg/day",
    "levels_mg": "mg/day, comma-separated",
    "reduction_levels_mg": "mg/day, comma-separated",
    "every": "in `unit`",
    "first_step_after": "in `unit`",
    "cycles": "cycles",
    "draws": "posterior draws",
    "seed": "integer, 0 to 2^64 - 1",
    "max": "probability, 0 to 1",
    "cycle": "cycle number",
    "max_probability": "probability, 0 to 1",
    "mirrors": "arm ids, comma-separated",
}
# The sections the app shows, in order: the scenario's own keys, then its blocks.
SECTION_TITLES: dict[tuple[str, ...], str] = {
    (): "Scenario",
    ("population",): "Population",
    ("regimen",): "Regimen",
    ("regimen", "escalation"): "Escalation",
    ("regimen", "first_cycle"): "First-cycle exceptions",
    ("rules",): "Dose-modification rules",
    ("limits",): "Risk limits",
    ("posterior",): "Posterior",
    ("population", "characteristics"): "Patient characteristics (issue 24)",
    **{("population", "characteristics", k): f"Patient characteristics: {k.replace('_', ' ')}"
       for k in ("age", "weight_kg", "creatinine_mg_dl", "alc", "node_cm", "prior_lines")},
}  # fmt: skip
# Keys fixed by the command line: shown, not edited (the app writes only to its results).
FIXED = {("posterior", "spec"), ("output",)}
SEP = "__"


@dataclass(frozen=True)
class Field:
    """One key of the config as a form input."""

    path: tuple[str, ...]  # ("regimen", "start_mg")
    kind: Kind
    label: str
    unit: str
    help: str  # the schema's description, its first sentence
    full_help: str
    choices: tuple[str, ...] = ()
    optional: bool = False  # may be left empty (then the key is left out)
    section: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The input's id: the key path joined by '__' (``regimen__start_mg``)."""
        return SEP.join(self.path)

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    m = re.match(r"(.+?[.;])(\s|$)", text)
    return (m.group(1) if m else text).rstrip(".;")


def _strip(tp: Any) -> tuple[Any, bool]:
    """The type inside Annotated and Optional, and whether None is allowed."""
    optional = False
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(tp))
            tp = args[0]
        else:
            return tp, optional


def _leaf(tp: Any) -> tuple[Kind, tuple[str, ...]]:
    origin = typing.get_origin(tp)
    if tp is bool:
        return "bool", ()
    if tp is int:
        return "int", ()
    if tp is float:
        return "float", ()
    if tp is str:
        return "text", ()
    if isinstance(tp, type) and issubclass(tp, Path):
        return "path", ()
    if origin is Literal:
        return "choice", tuple(str(a) for a in typing.get_args(tp))
    if origin is list and typing.get_origin(_strip(typing.get_args(tp)[0])[0]) is Literal:
        return "multi", tuple(typing.get_args(_strip(typing.get_args(tp)[0])[0]))
    if origin in (list, tuple):
        return "list", ()
    raise TypeError(f"no form input for the type {tp!r}")


# Labels where the key's words would read oddly (the rest: the key, words spaced).
LABELS = {"start_mg": "Starting dose", "target_mg": "Target dose", "max_mg": "Maximum dose",
          "step_mg": "Step", "levels_mg": "Dose levels", "reduction_levels_mg": "Reduction levels",
          "max": "Maximum risk"}  # fmt: skip


def _label(name: str) -> str:
    if name in LABELS:
        return LABELS[name]
    words = name.replace("_", " ")
    return words[:1].upper() + words[1:]


def _model_fields(model: type[BaseModel], prefix: tuple[str, ...]) -> list[Field]:
    out: list[Field] = []
    nested: list[Field] = []
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        tp, optional = _strip(info.annotation)
        desc = info.description or ""
        if isinstance(tp, type) and issubclass(tp, RiskLimits):
            nested += _limit_fields(path, tp)
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            doc = (tp.__doc__ or "").strip()
            if optional:  # a block that may be left out: a switch, then its keys
                nested.append(Field(path, "toggle", f"Use {_label(name).lower()}", "",
                                    _first_sentence(doc), doc, optional=True, section=path))  # fmt: skip
            nested += _model_fields(tp, path)
            continue
        kind, choices = _leaf(tp)
        unit = UNITS.get(name, "")
        has_default = not info.is_required()
        out.append(Field(path, kind, _label(name), unit, _first_sentence(desc), desc, choices,
                         optional and has_default, prefix))  # fmt: skip
    return out + nested


def _limit_fields(path: tuple[str, ...], model: type[RiskLimits]) -> list[Field]:
    """Limits: one switch per event and the keys of :class:`RiskLimit`, then the
    overdose-control threshold."""
    out: list[Field] = []
    for ev in LIMIT_EVENTS:
        base = (*path, ev)
        out.append(Field(base, "toggle", f"Limit on {ev}", "", _first_sentence(
            RiskLimit.__doc__ or ""), RiskLimit.__doc__ or "", optional=True, section=path))  # fmt: skip
        for f in _model_fields(RiskLimit, base):
            out.append(Field(f.path, f.kind, f.label, f.unit, f.help, f.full_help, f.choices,
                             f.optional, path))  # fmt: skip
    info = model.model_fields["max_probability"]
    out.append(Field((*path, "max_probability"), "float", "Max probability",
                     UNITS["max_probability"], _first_sentence(info.description or ""),
                     info.description or "", section=path))  # fmt: skip
    return out


FIELDS: tuple[Field, ...] = tuple(_model_fields(Scenario, ()))
BY_ID: dict[str, Field] = {f.id: f for f in FIELDS}


# ------------------------------------------------------------------ config -> values


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_num_text(v) for v in value)
    return str(value)


def _num_text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def values_from_config(sc: Scenario) -> dict[str, Any]:
    """The form's values for a validated scenario (every input's id -> its value)."""
    data = sc.model_dump(mode="json")
    limits: dict[str, Any] = {}
    for ev, lim in sc.limits.items():  # the form edits one limit per event: the first
        limits.setdefault(ev, lim.model_dump(mode="json"))
    data["limits"] = limits
    data["limits"]["max_probability"] = sc.limits.max_probability
    values: dict[str, Any] = {}
    for f in FIELDS:
        v = _get(data, f.path)
        if f.kind == "toggle":
            values[f.id] = v is not None
        elif f.kind in ("list",):
            values[f.id] = _as_text(v)
        elif f.kind == "multi":
            values[f.id] = tuple(v or ())
        elif f.kind in ("text", "path"):
            values[f.id] = "" if v is None else str(v)
        elif f.kind == "choice":
            values[f.id] = "" if v is None else str(v)
        else:
            values[f.id] = v
    return values


def not_in_form(sc: Scenario) -> list[str]:
    """What of ``sc`` the form cannot hold (said at the top of the form, not dropped
    silently): an event with several limits keeps its first one."""
    counts: dict[str, int] = {}
    for ev, _ in sc.limits.items():
        counts[ev] = counts.get(ev, 0) + 1
    return [f"limits.{ev}: the config states {n} limits; the form holds the first only (the "
            "preview, the download and the full run use that one)"
            for ev, n in counts.items() if n > 1]  # fmt: skip


# ------------------------------------------------------------------ values -> config


def _enabled(f: Field, values: dict[str, Any]) -> bool:
    """False when a switch above the field is off."""
    for n in range(1, len(f.path)):
        sw = BY_ID.get(SEP.join(f.path[:n]))
        if sw is not None and sw.kind == "toggle" and not values.get(sw.id):
            return False
    return True


def _number(v: Any, kind: str) -> Any:
    if kind == "int" and isinstance(v, float) and v.is_integer():
        return int(v)  # a browser may send 5.0 for 5
    return v


def config_from_values(values: dict[str, Any]) -> tuple[dict, dict[str, str]]:
    """The config mapping the form's values describe, and the messages of inputs that
    cannot be read at all (a list that is not a list): input id -> message.

    An empty optional input, an empty list and the keys under a switch that is off are
    left out (the schema's default applies, or its "required key is missing").
    """
    config: dict = {}
    problems: dict[str, str] = {}
    for f in FIELDS:
        if f.kind == "toggle" or not _enabled(f, values):
            continue
        v = values.get(f.id)
        if f.kind in ("int", "float"):
            if v is None and f.optional:
                continue
            v = _number(v, f.kind)
        elif f.kind == "list":
            text = (v or "").strip()
            if not text:
                continue
            try:
                v = parse_yaml(f"[{text}]", f.dotted, ConfigError)
            except ConfigError:
                problems[f.id] = (f"{f.dotted}: must be values separated by commas "
                                  f"(e.g. 2.5, 5, 10), got {text[:40]!r}")  # fmt: skip
                continue
        elif f.kind == "multi":
            v = list(v or ())
        elif f.kind in ("choice", "text", "path"):
            if (v is None or v == "") and (f.optional or f.kind == "path"):
                continue
            v = "" if v is None else v
        _put(config, f.path, v)
    return config, problems


def _put(config: dict, path: tuple[str, ...], value: Any) -> None:
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def to_yaml(config: dict, header: str = "") -> str:
    """The config as a YAML file (``lenasim run`` reads it back to the same scenario)."""
    text = yaml.safe_dump(
        config, sort_keys=False, allow_unicode=True, default_flow_style=None, width=88
    )
    return (header + text) if header else text


# ------------------------------------------------------------------ validation


@dataclass
class Checked:
    scenario: Scenario | None
    by_field: dict[str, list[str]]  # input id -> messages (the CLI's, without the file)
    general: list[str]  # messages placed at no input


def field_for(dotted: str) -> str | None:
    """The input id a message's key path belongs to: its known keys in order (list
    indices and type names such as ``RiskLimit`` skipped), the longest that names an
    input; None when no input matches."""
    keys: list[str] = []
    for token in re.sub(r"\[[^\]]*\]", "", dotted).split("."):
        if any(fid == SEP.join([*keys, token]) or fid.startswith(SEP.join([*keys, token]) + SEP)
               for fid in BY_ID):  # fmt: skip
            keys.append(token)
    for n in range(len(keys), 0, -1):
        if SEP.join(keys[:n]) in BY_ID:
            return SEP.join(keys[:n])
    return None


def validate(values: dict[str, Any], source: str = "form") -> Checked:
    """Validate the form's values as ``lenasim run`` validates a config file.

    Each message is the CLI's line for the same YAML with the file name left out
    (``regimen.start_mg: must be >= 0.5 (got -5)``), placed at the input of its key.
    """
    config, problems = config_from_values(values)
    by_field: dict[str, list[str]] = {k: [v] for k, v in problems.items()}
    general: list[str] = []
    if problems:
        return Checked(None, by_field, general)
    try:
        sc = Scenario.model_validate(config)
    except ValidationError as err:
        for line in format_errors(err, Scenario, source).splitlines():
            msg = line.removeprefix(f"{source}: ")
            fid = field_for(msg.split(": ", 1)[0])
            if fid is None:
                general.append(msg)
            else:
                by_field.setdefault(fid, []).append(msg)
        return Checked(None, by_field, general)
    return Checked(sc, by_field, general)
