"""Scenario configs (configs/*.yaml): who is treated, with which schedule, under which
dose-modification rules, simulated over which posterior. The paths around a config (its
output folder, paths relative to it, its hash) are in :mod:`lenasim.simulation.paths`,
importable from here.

Validated strictly (pydantic, ``extra="forbid"`` everywhere). Every error names the
YAML file and the key path, says what is wrong and, for an unknown key or value,
suggests the closest valid one::

    configs/x.yaml: regimen.start_mg: must be > 0 (got -5)
    configs/x.yaml: rules.on_tls: unknown key 'on_tlss'; did you mean 'on_tls'?

Paths written in a config (``posterior.spec``, ``output``) are relative to the config
file, so a config runs the same from any folder; when a config leaves them out, the
posterior is the model shipped with lenasim (:data:`lenasim.core.shipped.DEFAULT_SPEC`)
and the output folder ``results`` in the current folder.

The regimen block is :class:`lenasim.core.regimen.Regimen` itself, so the schedule
language has one definition and one validator.
"""

from __future__ import annotations

import functools
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lenasim.core.errors import ConfigError
from lenasim.core.limits import DEFAULT_LIMITS, RiskLimits
from lenasim.core.partners import PartnerDrug
from lenasim.core.partners import partner_classes as _classes_of
from lenasim.core.regimen import Regimen
from lenasim.core.schema import (
    LAX,
    MAX_SEED,
    NAME_PATTERN,
    PARTNER_CLASSES,
    SETTINGS,
    Seed,
    Setting,
    Strict,
    suggest,
)
from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.core.yamlio import config_from_mapping, load_yaml
from lenasim.evidence.arms import arms_document, load_arms
from lenasim.simulation.characteristics import Characteristics
from lenasim.simulation.paths import (
    check_output_text,
    config_hash,
    env_threads,
    output_problem,
    relative_to_config,
)

__all__ = [
    "ACTIONS",
    "PARTNER_CLASSES",
    "SETTINGS",
    "Population",
    "PosteriorRef",
    "RenalDose",
    "Rules",
    "Scenario",
    "check_limits_on_drug",
    "check_output_text",
    "config_hash",
    "env_threads",
    "evidence_arm_ids",
    "load_scenario",
    "output_problem",
    "relative_to_config",
    "scenario_from_mapping",
]

Action = Literal["continue", "hold", "reduce", "discontinue"]
ACTIONS: tuple[str, ...] = typing.get_args(Action)

# A patient's index is one 32-bit word of the random-number counter (streams.py).
MAX_PATIENTS = 2**32 - 1
# A result folder's name, with room for the writer's temporary siblings
# (".<name>.partial-<pid>-<token>") within the 255 bytes file systems allow.
MAX_NAME = 200


class Population(Strict):
    """The virtual patients: how many, in which setting, with which partner drugs."""

    patients: int = Field(
        1000, ge=1, le=MAX_PATIENTS, description="Virtual patients per posterior draw."
    )
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
    characteristics: Characteristics | None = Field(
        None,
        description="The patients' age, sex, weight, creatinine (-> CrCl -> exposure), ALC, "
        "largest node, prior lines, as distributions or a CSV cohort "
        "(lenasim.simulation.population; prior-only terms). None: today's population.",
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

    @field_validator("partners")
    @classmethod
    def _once(cls, v: list[str]) -> list[str]:
        twice = sorted({x for x in v if v.count(x) > 1})
        if twice:
            raise ValueError(f"names {twice[0]} twice: list each drug once")
        return v

    @property
    def partner_classes(self) -> tuple[str, ...]:
        """The classes of the partner drugs (the hazard's covariates), derived from
        ``partners``."""
        return _classes_of(self.partners)


class RenalDose(Strict):
    """The schedule of the patients whose CrCl (Cockcroft-Gault) is below a threshold."""

    crcl_below: float = Field(
        ..., gt=0, le=200, description="This schedule applies below this CrCl (mL/min)."
    )
    regimen: Regimen = Field(..., description="Their regimen (same cycles as the main one).")


class Rules(Strict):
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

    def describe(self) -> list[str]:
        """What the protocol does on each event, in words (one line each)."""
        words = {"continue": "continue as planned", "hold": "hold the rest of the cycle",
                 "reduce": "reduce one dose level", "discontinue": "stop lenalidomide"}  # fmt: skip
        events = (("on_tls", "TLS"), ("on_flare_grade3plus", "grade >= 3 flare"),
                  ("on_neutropenia", "grade 3-4 neutropenia"))  # fmt: skip
        lines = [f"on {what}: {words[getattr(self, key)]}" for key, what in events]
        lines.append("escalation: " + ("only if no grade >= 3 event came before"
                                       if self.escalate_only_if_tolerated
                                       else "on schedule, whatever the events"))  # fmt: skip
        return lines


class PosteriorRef(Strict):
    """Which fitted posterior to simulate over, and how many of its draws."""

    spec: Annotated[Path, LAX] = Field(
        DEFAULT_SPEC,
        description="Model spec; its posterior is the .nc next to it (relative to the config "
        "file; if omitted, the model shipped with lenasim, lenasim/models/default.yaml).",
    )
    draws: int = Field(1000, ge=1, description="Posterior draws to simulate (a thinned subsample).")

    @property
    def nc_path(self) -> Path:
        return self.spec.with_suffix(".nc")


class Scenario(Strict):
    """One scenario: a population, a regimen, rules, a posterior, a seed."""

    name: str = Field(
        ...,
        pattern=NAME_PATTERN,
        max_length=MAX_NAME,
        description="Used as the results folder name: letters, digits, '_', '-', '.' "
        f"(at most {MAX_NAME}).",
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
    renal_dosing: list[RenalDose] = Field(
        default_factory=list,
        description="Starting doses by kidney function (ORIGIN: CrCl 30-60 on half dose): a "
        "patient takes the regimen of the lowest crcl_below above their CrCl, else "
        "`regimen`. Needs population.characteristics with creatinine (or a CSV).",
    )
    compare_starts: list[Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=list,
        description="Candidate starting doses (mg/day) that `python -m lenasim patient` sets "
        "beside the regimen's own, each with the same escalation.",
    )
    rules: Rules = Rules()
    limits: RiskLimits = Field(
        DEFAULT_LIMITS,
        description="Risk limits judged by escalation with overdose control: a limit is met "
        "when P(risk > max) <= max_probability (0.25). Default: TLS in each cycle <= 2% and "
        "grade >= 3 flare by the last cycle <= 5%. `limits: {}` states none.",
    )
    posterior: PosteriorRef = PosteriorRef()
    population_effect: Literal["new_trial", "typical"] = Field(
        "new_trial",
        description="new_trial: each cohort draws a new trial effect u ~ N(0, tau) "
        "(predicting a new trial); typical: u = 0 (the average trial).",
    )
    seed: Seed = Field(
        ..., description=f"Seed of every random number of the run (0 to {MAX_SEED})."
    )
    output: Annotated[Path, LAX] = Field(
        Path("results"),
        description="Results folder; the run writes <output>/<name>/ (relative to the config "
        "file; if omitted, results/ in the current folder).",
    )

    def regimen_text(self) -> str:
        """The schedule in words; with ``renal_dosing``, each CrCl band's (mL/min)."""
        bands = sorted(self.renal_dosing, key=lambda b: b.crcl_below)
        if not bands:
            return self.regimen.describe()
        parts, lower = [], 0.0
        for b in bands:
            where = f"CrCl < {b.crcl_below:g}" if not lower else f"CrCl {lower:g}-{b.crcl_below:g}"
            parts.append(f"{where}: {b.regimen.describe()}")
            lower = b.crcl_below
        return f"CrCl >= {lower:g}: {self.regimen.describe()}; " + "; ".join(parts)

    @field_validator("mirrors", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("output", mode="before")
    @classmethod
    def _output_text(cls, v: Any) -> Any:
        return check_output_text(v)

    @field_validator("mirrors")
    @classmethod
    def _known_arms(cls, v: list[str]) -> list[str]:
        if not v:
            return v
        arms = evidence_arm_ids()
        for arm in v:
            if arm not in arms:
                hint = suggest(arm, arms)
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
        check_limits_on_drug(self.limits, reg, "limits" in self.model_fields_set)
        if self.renal_dosing:
            ch = self.population.characteristics
            if ch is None or (ch.csv is None and ch.creatinine_mg_dl is None):
                raise ValueError(
                    "renal_dosing needs the patients' CrCl: give "
                    "population.characteristics.creatinine_mg_dl (with age and weight_kg) "
                    "or a csv"
                )
            for i, band in enumerate(self.renal_dosing):
                r = band.regimen
                if (r.cycles, r.cycle_days) != (reg.cycles, reg.cycle_days):
                    raise ValueError(
                        f"renal_dosing[{i}].regimen has {r.cycles} cycles of {r.cycle_days} "
                        f"days but regimen has {reg.cycles} of {reg.cycle_days}: give the same"
                    )
        return self


def evidence_arm_ids() -> list[str]:
    """The arm ids of the shipped evidence (``evidence/data/arms.yaml``), read as keys only:
    checking ``mirrors`` needs neither pandas nor the arms' validation (the mirrored trial
    loads them in full when the run predicts it). Read once per version of the file (a
    process that loads many configs, a search or the tests, parsed it ~15 ms each time)."""
    from importlib.resources import files

    src = Path(str(files("lenasim.evidence").joinpath("data", "arms.yaml")))
    try:
        st = src.stat()
        version = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:  # load_yaml says what is wrong
        version = None
    return list(_arm_ids(src, version))


@functools.lru_cache(maxsize=4)
def _arm_ids(src: Path, version: tuple | None) -> tuple[str, ...]:
    doc = arms_document(src, ConfigError)  # parsed once: the mirrored trial reads it too
    arms = doc.get("arms") if isinstance(doc, dict) else None
    if not isinstance(arms, dict):  # load_arms has its own message for a damaged file
        return tuple(load_arms())
    return tuple(str(k) for k in arms)


def check_limits_on_drug(limits: RiskLimits, reg: Regimen, stated: bool) -> None:
    """A per-cycle limit on a cycle without lenalidomide is always met (its risk is 0):
    refused, naming the limit (or saying the default looks there)."""
    fc = reg.first_cycle
    if fc is None or not fc.no_lenalidomide:
        return
    for event, limit in limits.items():
        if not limit.cumulative and (limit.cycle or 1) == 1:
            which = (f"limits.{event} ('{limit.describe(event)}')" if stated
                     else f"the default limit '{limit.describe(event)}'")  # fmt: skip
            raise ValueError(
                f"regimen.first_cycle.no_lenalidomide: cycle 1 has no lenalidomide, but "
                f"{which} looks at cycle 1 and would always be met: state limits on the "
                f"first cycle with lenalidomide, e.g. "
                f"`limits: {{{event}: {{cycle: 2, max: {limit.max:g}}}}}`"
            )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario config (strict YAML: :mod:`lenasim.core.yamlio`).

    Raises
    ------
    ConfigError
        Naming the file and key path of every problem (all of them, one per line).
    """
    path = Path(path)
    data = load_yaml(path, ConfigError, "config file")
    if isinstance(data, dict) and _looks_like_search(data):
        raise ConfigError(
            f"{path}: this is a search config (it has `space:`, not `regimen:`): run it with "
            f"`python -m lenasim search {path}`"
        )
    scenario = relative_to_config(scenario_from_mapping(data, str(path)), path)
    why = output_problem(scenario.output / scenario.name)
    if why is not None:
        raise ConfigError(f"{path}: output: {why}")
    return scenario


def _looks_like_search(data: dict) -> bool:
    return "space" in data and "regimen" not in data


def scenario_from_mapping(data: Any, source: str = "<config>") -> Scenario:
    """Validate a scenario config given as a mapping (what a YAML file holds); errors name
    ``source``. Paths stay as written (:func:`relative_to_config` resolves them)."""
    return config_from_mapping(
        data, Scenario, source, "the config", "name, population, regimen, ..."
    )
