"""The one strict schema base, the shared literal types, and the one error formatter.

Scenario configs, model specs and the evidence arms are pydantic models on
:class:`Strict`: unknown keys are refused, values are frozen, and types are strict (a
count is an integer, not ``true`` nor ``"3"`` nor ``3.0``; a number is finite; text is
text). Fields that read naturally from YAML in another form say so with
:data:`LAX` (a path from text, a pair of days from a list).

:func:`format_errors` turns a pydantic ``ValidationError`` into one line per problem,
naming the file and the key path, saying what is wrong and, for an unknown key or
value, suggesting the closest valid one::

    configs/x.yaml: regimen.start_mg: must be >= 0.5 (got -5)
    configs/x.yaml: rules.on_tls: unknown key 'on_tlss'; did you mean 'on_tls'?

No message prints a whole input value: long ones are cut.
"""

from __future__ import annotations

import difflib
import reprlib
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "LAX",
    "MAX_SEED",
    "NAME_PATTERN",
    "Seed",
    "PARTNER_CLASSES",
    "SETTINGS",
    "PartnerClass",
    "Setting",
    "Strict",
    "format_errors",
]

Setting = Literal["relapsed", "untreated", "consolidation"]
SETTINGS: tuple[str, ...] = typing.get_args(Setting)
PartnerClass = Literal["anti_cd20", "chemo", "cdk_inhibitor"]
PARTNER_CLASSES: tuple[str, ...] = typing.get_args(PartnerClass)

# A seed is one 64-bit word of the random-number key (simulation/streams.py): a whole
# number from 0 to 2**64 - 1, the same rule in every config and on the command line.
MAX_SEED = 2**64 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]

# For a field whose YAML form differs from its Python type (a path written as text, a
# tuple written as a list); the items inside stay strict.
LAX: Any = Field(strict=False)


class Strict(BaseModel):
    """Base of every validated input: unknown keys refused, frozen, strict types, finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# ------------------------------------------------------------------------- formatting


def format_errors(
    err: ValidationError, model: type[BaseModel], source: str, root: tuple = ()
) -> str:
    """One line per problem: ``<source>: <key path>: <what is wrong>[; did you mean ...]``.

    Parameters
    ----------
    err : the error raised by ``model.model_validate``.
    model : the model validated (to list the known keys at the error's location).
    source : the file (or other origin) named at the start of each line.
    root : key path of the validated mapping inside the file (e.g. ``("arms", "x")``).
    """
    errors = err.errors()
    places = [(_place(e), e["type"] in _TYPE_ONLY) for e in errors]
    lines: list[str] = []
    merged: dict[tuple, int] = {}  # place -> index of its type line in `lines`
    for e, (place, type_only) in zip(errors, places, strict=True):
        if type_only:
            # A union's other arm: "must be a list" beside the real problem of the arm the
            # input took (a limit given as a mapping) is noise.
            if any(not other and p[: len(place)] == place for p, other in places):
                continue
            if place in merged:  # both arms refused the type: one line naming both
                i = merged[place]
                want = _TYPES[e["type"]].removeprefix("must be ")
                if want not in lines[i]:
                    lines[i] = lines[i].replace(" (got ", f" or {want} (got ", 1)
                continue
            merged[place] = len(lines)
        line = f"{source}: {_line(e, model, tuple(root))}"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


_TYPE_ONLY = {"list_type", "model_type", "dict_type", "model_attributes_type", "tuple_type"}
_TAGS = {"int", "float", "str", "bool", "none", "list", "dict", "tuple"}


def _is_tag(x: Any) -> bool:
    """A union arm's tag in an error location ('RiskLimit', 'list[RiskLimit]'), not a key."""
    return isinstance(x, str) and (
        x.startswith("function-") or "[" in x or x[:1].isupper() or x in _TAGS
    )


def _place(e: Any) -> tuple:
    return tuple(x for x in e["loc"] if not _is_tag(x) and x != "[key]")


_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}
_TYPES = {
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_parsing": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text (put it in quotes)",
    "dict_type": "must be a mapping of keys",
    "model_type": "must be a mapping of keys",
    "model_attributes_type": "must be a mapping of keys",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "path_type": "must be a path (text)",
}

# Regular expressions of text fields, in words (a message never prints a pattern).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_PATTERNS = {
    NAME_PATTERN: "a name uses letters, digits, '_', '-' and '.' only, and starts with a "
    "letter or a digit",
}

_repr = reprlib.Repr()
_repr.maxstring = 40
_repr.maxother = 40
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4
_repr.maxlevel = 2


def brief(value: Any) -> str:
    """A short repr of an input value (never the whole of a long one)."""
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    return _repr.repr(value)


def _line(e: Any, model: type[BaseModel], root: tuple) -> str:
    raw = list(e["loc"])
    last = raw[-1:] if e["type"] == "extra_forbidden" else []  # the user's unknown key
    loc = [x for x in raw[: len(raw) - len(last)] if not _is_tag(x)] + last
    is_key = bool(raw) and raw[-1] == "[key]"
    loc = [x for x in loc if x != "[key]"]  # pydantic's marker of a mapping's key
    model_loc = list(loc)  # the path in the schema (with `events` of limits)
    if loc[:2] == ["limits", "events"]:  # the short form `limits: {tls: ...}` has no `events`
        del loc[1]
    kind, ctx, got = e["type"], e.get("ctx") or {}, e.get("input")
    where = _dotted([*root, *loc])
    if kind == "literal_error" and is_key:
        allowed = _literal_values(str(ctx.get("expected", "")))
        hint = suggest(str(got), allowed)
        tail = f"; did you mean '{hint}'?" if hint else ""
        return f"{where}: unknown key {brief(got)}{tail} (allowed here: {', '.join(allowed)})"
    if kind == "extra_forbidden":
        known = _fields_at(model, model_loc[:-1])
        hint = suggest(str(loc[-1]), known)
        tail = f"; did you mean '{hint}'?" if hint else ""
        listing = f" (known keys here: {', '.join(known)})" if known else ""
        return f"{where}: unknown key{tail}{listing}"
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == "literal_error":
        allowed = _literal_values(str(ctx.get("expected", "")))
        hint = suggest(str(got), allowed)
        tail = f"; did you mean '{hint}'?" if hint else ""
        return f"{where}: must be one of {', '.join(allowed)} (got {brief(got)}){tail}"
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        return f"{where}: must be {op} {_num(ctx.get(key))} (got {brief(got)})"
    if kind in _TYPES:
        return f"{where}: {_TYPES[kind]} (got {brief(got)})"
    if kind == "string_too_long":
        return f"{where}: too long: at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"{where}: is empty; give at least {n} item{'s' if n != 1 else ''}"
    if kind == "too_long":
        n = ctx.get("max_length")
        return f"{where}: too many items ({ctx.get('actual_length', '?')}); at most {n}"
    if kind in ("string_pattern_mismatch",):
        return f"{where}: {_PATTERNS.get(str(ctx.get('pattern')), 'not allowed here')} (got {brief(got)})"
    if kind == "value_error":
        msg = _short(str(e["msg"]).removeprefix("Value error, "), 300)
        extra = _field_named_in(model, model_loc, msg)
        if extra and msg.startswith(f"{'.'.join(extra)}: "):  # "target_mg: is empty"
            msg = msg[len(".".join(extra)) + 2 :]
        return f"{_dotted([*root, *loc, *extra])}: {msg}"
    return f"{where}: {_short(e['msg'])} (got {brief(got)})"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dotted(loc: list) -> str:
    out = ""
    for x in loc:
        out += f"[{x}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out or "(top level)"


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def suggest(word: str, choices: list[str]) -> str | None:
    """The closest valid choice to a misspelt word (a difference of case first), or None."""
    folded = [c for c in choices if c.casefold() == word.casefold()]
    if folded:
        return folded[0]
    got = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not got:  # case aside ('Chen_2011' for 'chen_2011_amended')
        lower = {c.casefold(): c for c in choices}
        got = [lower[g] for g in difflib.get_close_matches(word.casefold(), list(lower), n=1,
                                                           cutoff=0.6)]  # fmt: skip
    return got[0] if got else None


def _literal_values(expected: str) -> list[str]:
    # pydantic renders them as "'a', 'b' or 'c'"
    return [s.strip().strip("'\"") for s in expected.replace(" or ", ", ").split(",") if s.strip()]


def _strip(tp: Any) -> Any:
    """The type inside Annotated[...] and Optional[...] (a model arm of a union first)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = (models or args)[0]
        else:
            return tp


def _type_at(model: type[BaseModel], loc: list) -> Any:
    """The type found at a key path from ``model`` (None when the path leaves the schema)."""
    tp: Any = model
    for key in loc:
        tp = _strip(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(key))
            if field is None:
                return None
            tp = field.annotation
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        elif origin in (list, tuple) and isinstance(key, int):
            args = typing.get_args(tp)
            tp = (
                args[0] if origin is list or args[-1] is Ellipsis else args[min(key, len(args) - 1)]
            )
        else:
            return None
    return _strip(tp)


def _fields_at(model: type[BaseModel], loc: list) -> list[str]:
    tp = _type_at(model, loc)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _field_named_in(model: type[BaseModel], loc: list, msg: str) -> list[str]:
    """A model-level error that starts with a key path ('days_on = ...', 'target_mg (5) ...')
    belongs to that key: extend the location with it."""
    parts = msg.split(" ", 1)[0].rstrip(":,").split(".")
    return parts if parts and parts[0] in _fields_at(model, loc) else []
