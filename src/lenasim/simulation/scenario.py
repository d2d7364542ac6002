"""Scenario configs (configs/*.yaml): who is treated, with which schedule, under which
dose-modification rules, simulated over which posterior.

Validated strictly (pydantic, ``extra="forbid"`` everywhere). Every error names the
YAML file and the key path, says what is wrong and, for an unknown key or value,
suggests the closest valid one::

    configs/x.yaml: regimen.start_mg: must be > 0 (got -5)
    configs/x.yaml: rules.on_tls: unknown key 'on_tlss'; did you mean 'on_tls'?

Paths written in a config (``posterior.spec``, ``output``) are relative to the config
file, so a config runs the same from any folder; when a config leaves them out, the
defaults (``models/default.yaml``, ``results``) are relative to the current folder.

The regimen block is :class:`lenasim.core.regimen.Regimen` itself, so the schedule
language has one definition and one validator.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lenasim.core.errors import ConfigError
from lenasim.core.limits import DEFAULT_LIMITS, RiskLimits
from lenasim.core.partners import PartnerDrug
from lenasim.core.partners import partner_classes as _classes_of
from lenasim.core.regimen import Regimen

__all__ = [
    "ACTIONS",
    "PARTNER_CLASSES",
    "SETTINGS",
    "Population",
    "PosteriorRef",
    "Rules",
    "Scenario",
    "config_hash",
    "load_scenario",
]

Action = Literal["continue", "hold", "reduce", "discontinue"]
ACTIONS: tuple[str, ...] = typing.get_args(Action)
Setting = Literal["relapsed", "untreated", "consolidation"]
SETTINGS: tuple[str, ...] = typing.get_args(Setting)
PartnerClass = Literal["anti_cd20", "chemo", "cdk_inhibitor"]
PARTNER_CLASSES: tuple[str, ...] = typing.get_args(PartnerClass)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Population(_Strict):
    """The virtual patients: how many, in which setting, with which partner drugs."""

    patients: int = Field(1000, ge=1, lt=2**32, description="Virtual patients per posterior draw.")
    setting: Setting = Field(..., description="relapsed (or refractory), untreated, consolidation.")
    elderly_share: float = Field(0.0, ge=0.0, le=1.0, description="Share aged 65 or more.")
    partners: list[PartnerDrug] = Field(
        default_factory=list,
        description="Partner drugs given with lenalidomide, by name (rituximab, fludarabine, "
        "...); their classes (anti-CD20, chemotherapy, CDK inhibitor) are the model's "
        "covariates (lenasim.core.partners).",
    )
    steroid_prophylaxis: bool = Field(
        False, description="Steroid flare prophylaxis with the first lenalidomide cycle."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_classes(cls, data: Any) -> Any:
        if isinstance(data, dict) and "partner_classes" in data:
            raise ValueError(
                "partner_classes is derived from partners (rituximab -> anti_cd20, "
                "fludarabine -> chemo, ...): remove it and name the drugs in partners"
            )
        return data

    @field_validator("partners", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return (
            [x.strip().lower() if isinstance(x, str) else x for x in v]
            if isinstance(v, list)
            else v
        )

    @property
    def partner_classes(self) -> tuple[str, ...]:
        """The classes of the partner drugs (the hazard's covariates), derived from
        ``partners``."""
        return _classes_of(self.partners)


class Rules(_Strict):
    """Dose-modification rules: one action per grade >= 3 event, and whether escalation
    waits for tolerance (lenasim.simulation.engine says what each action does)."""

    on_neutropenia: Action = Field("continue", description="On grade 3-4 neutropenia.")
    on_flare_grade3plus: Action = Field("continue", description="On a grade >= 3 tumor flare.")
    on_tls: Action = Field("continue", description="On tumor lysis syndrome.")
    escalate_only_if_tolerated: bool = Field(
        False,
        description="Take an escalation step only if no grade >= 3 event (grade 3-4 "
        "neutropenia, grade >= 3 flare, TLS) came before it: a cycle after such an event "
        "takes no steps, and within the cycle of the event (events are taken to strike "
        "mid-cycle) the steps of its second half are not taken either.",
    )
    on_lowest: Literal["discontinue", "hold"] | None = Field(
        None,
        description="What 'reduce' does at the lowest dose level, where there is no level "
        "below: discontinue, or hold (the rest of the cycle; continue at that level). "
        "Required when a rule says reduce and the regimen has no reduction_levels_mg; "
        "with them, reducing below the lowest one discontinues unless this says hold.",
    )


class PosteriorRef(_Strict):
    """Which fitted posterior to simulate over, and how many of its draws."""

    spec: Path = Field(
        Path("models/default.yaml"),
        description="Model spec; its posterior is the .nc next to it (relative to the config "
        "file; if omitted, models/default.yaml in the current folder).",
    )
    draws: int = Field(1000, ge=1, description="Posterior draws to simulate (a thinned subsample).")

    @property
    def nc_path(self) -> Path:
        return self.spec.with_suffix(".nc")


class Scenario(_Strict):
    """One scenario: a population, a regimen, rules, a posterior, a seed."""

    name: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Used as the results folder name: letters, digits, '_', '-', '.'.",
    )
    description: str = Field("", description="What the scenario is, in words (shown in reports).")
    mirrors: list[str] = Field(
        default_factory=list,
        description="Evidence arms (arm ids of `python -m lenasim evidence`) whose protocol "
        "this scenario follows: the report sets each reported figure of these arms beside "
        "the model's prediction for it as a new trial.",
    )
    population: Population
    regimen: Regimen
    rules: Rules = Rules()
    limits: RiskLimits = Field(
        DEFAULT_LIMITS,
        description="Risk limits judged by escalation with overdose control: a limit is met "
        "when P(risk > max) <= max_probability (0.25). Default: TLS in cycle 1 <= 2% and "
        "grade >= 3 flare by the last cycle <= 5%. `limits: {}` states none.",
    )
    posterior: PosteriorRef = PosteriorRef()
    population_effect: Literal["new_trial", "typical"] = Field(
        "new_trial",
        description="new_trial: each cohort draws a new trial effect u ~ N(0, tau) "
        "(predicting a new trial); typical: u = 0 (the average trial).",
    )
    seed: int = Field(..., ge=0, description="Seed of every random number of the run.")
    output: Path = Field(
        Path("results"),
        description="Results folder; the run writes <output>/<name>/ (relative to the config "
        "file; if omitted, results/ in the current folder).",
    )

    @field_validator("mirrors", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("mirrors")
    @classmethod
    def _known_arms(cls, v: list[str]) -> list[str]:
        if not v:
            return v
        from lenasim.evidence.table import load_arms  # lazy: the table imports pandas

        arms = list(load_arms())
        for arm in v:
            if arm not in arms:
                hint = _suggest(arm, arms)
                tail = f"did you mean '{hint}'? " if hint else ""
                raise ValueError(
                    f"'{arm}' is not an evidence arm; {tail}(arms: {', '.join(arms)}; "
                    "`python -m lenasim evidence` lists them by trial)"
                )
        return v

    @model_validator(mode="after")
    def _rules_and_limits_fit_the_regimen(self) -> Scenario:
        reg, rules = self.regimen, self.rules
        reducing = [k for k in ("on_neutropenia", "on_flare_grade3plus", "on_tls")
                    if getattr(rules, k) == "reduce"]  # fmt: skip
        if reducing and not reg.reduction_levels_mg and rules.on_lowest is None:
            raise ValueError(
                f"rules.{reducing[0]} is 'reduce' but the regimen has no dose level below "
                f"the starting dose ({reg.start_mg:g} mg), so a patient on it cannot be "
                "reduced: add regimen.reduction_levels_mg (e.g. "
                f"[{reg.start_mg / 2:g}]) or say what happens with rules.on_lowest: "
                "discontinue (or hold)"
            )
        for event, limit in self.limits.items():
            if limit.cycle is not None and limit.cycle > reg.cycles:
                raise ValueError(
                    f"limits.{event}.cycle is {limit.cycle} but the regimen has "
                    f"{reg.cycles} cycles: use a cycle from 1 to {reg.cycles}"
                )
        return self


def config_hash(path: str | Path) -> str:
    """sha256 of the config file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario config (``yaml.safe_load`` only).

    Raises
    ------
    ConfigError
        Naming the file and key path of every problem (all of them, one per line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the config must be a mapping of keys (name, population, regimen, ...), "
            f"got {type(data).__name__}"
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise ConfigError("\n".join(_format(path, e) for e in err.errors())) from err
    return relative_to_config(scenario, path)


def relative_to_config(scenario: Scenario, path: str | Path) -> Scenario:
    """The scenario with the paths its config wrote (``posterior.spec``, ``output``) taken
    relative to the config file's folder; absolute paths and defaults are kept."""
    folder = Path(path).parent

    def near(p: Path) -> Path:
        return Path(os.path.normpath(folder / p))  # configs/../results -> results

    update: dict[str, Any] = {}
    post = scenario.posterior
    if "spec" in post.model_fields_set and not post.spec.is_absolute():
        update["posterior"] = post.model_copy(update={"spec": near(post.spec)})
    if "output" in scenario.model_fields_set and not scenario.output.is_absolute():
        update["output"] = near(scenario.output)
    return scenario.model_copy(update=update) if update else scenario


# --- error messages -------------------------------------------------------------------


def _format(path: Path, e: dict[str, Any]) -> str:
    loc = [x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-"))]
    loc = [x for x in loc if x != "[key]"]  # pydantic's marker of a mapping's key
    if loc[:2] == ["limits", "events"]:  # the short form `limits: {tls: ...}` has no `events`
        del loc[1]
    kind, ctx, got = e["type"], e.get("ctx") or {}, e.get("input")
    if kind == "extra_forbidden":
        known = _fields_at(loc[:-1])
        hint = _suggest(str(loc[-1]), known)
        tail = f"; did you mean '{hint}'?" if hint else ""
        listing = f" (known keys here: {', '.join(known)})" if known else ""
        return f"{path}: {_dotted(loc)}: unknown key{tail}{listing}"
    if kind == "missing":
        return f"{path}: {_dotted(loc)}: required key is missing"
    if kind == "literal_error":
        allowed = _literal_values(ctx.get("expected", ""))
        hint = _suggest(str(got), allowed)
        tail = f"; did you mean '{hint}'?" if hint else ""
        return f"{path}: {_dotted(loc)}: must be one of {', '.join(allowed)} (got {got!r}){tail}"
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        return f"{path}: {_dotted(loc)}: must be {op} {_num(ctx.get(key))} (got {got!r})"
    if kind == "value_error":
        msg = str(e["msg"]).removeprefix("Value error, ")
        loc = loc + _field_named_in(loc, msg)
        return f"{path}: {_dotted(loc)}: {msg}"
    return f"{path}: {_dotted(loc)}: {e['msg']} (got {got!r})"


_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


def _dotted(loc: list) -> str:
    out = ""
    for x in loc:
        out += f"[{x}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out or "(top level)"


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _suggest(word: str, choices: list[str]) -> str | None:
    got = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return got[0] if got else None


def _literal_values(expected: str) -> list[str]:
    # pydantic renders them as "'a', 'b' or 'c'"
    return [s.strip().strip("'\"") for s in expected.replace(" or ", ", ").split(",") if s.strip()]


def _model_at(loc: list) -> type[BaseModel] | None:
    """The pydantic model class found at a key path from Scenario (None if not a model)."""
    model: Any = Scenario
    for key in loc:
        if isinstance(key, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(key))
        if field is None:
            return None
        model = _unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """The model class inside Optional[...] / list[...] (or the type itself)."""
    for arg in (
        typing.get_args(tp)
        if typing.get_origin(tp) in (typing.Union, types.UnionType, list)
        else ()
    ):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return tp


def _fields_at(loc: list) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model is not None else []


def _field_named_in(loc: list, msg: str) -> list[str]:
    """A model-level error that starts with a key path ('days_on = ...', 'target_mg (5) ...')
    belongs to that key: extend the location with it."""
    head = msg.split(" ", 1)[0].rstrip(":,")
    parts = head.split(".")
    fields = _fields_at(loc)
    return parts if parts and parts[0] in fields else []
