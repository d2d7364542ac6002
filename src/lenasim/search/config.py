"""Search configs (configs/search_*.yaml): which schedules to try, under which limits.

A search config is a scenario config whose ``regimen`` is replaced by a ``space`` of
regimens: the population, rules, posterior, population effect and seed mean what they
mean in a scenario (they are the same pydantic types), and every candidate is simulated
with them on the same random numbers. ``limits`` is :class:`lenasim.core.limits.RiskLimits`,
the definition scenarios use. Validated strictly (``extra="forbid"``); every error names
the file and the key path, with "did you mean" for a misspelt key or value::

    configs/x.yaml: space.start_mgg: unknown key; did you mean 'start_mg'?
    configs/x.yaml: space.start_mg: an unbounded range {from: 2.5, by: 2.5}: give `to`

A numeric axis of the space is one value, a list of values, or a bounded range
``{from: 2.5, to: 10, by: 2.5}`` (both ends included).
"""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from lenasim.core.errors import ConfigError
from lenasim.core.limits import DEFAULT_LIMITS, RiskLimits
from lenasim.core.regimen import MAX_DOSE_MG, MAX_EVERY, MIN_DOSE_MG, Regimen
from lenasim.core.schema import LAX, MAX_SEED, NAME_PATTERN, Seed, Strict
from lenasim.core.yamlio import load_config
from lenasim.simulation.scenario import (
    MAX_NAME,
    Population,
    PosteriorRef,
    Rules,
    check_limits_on_drug,
    check_output_text,
    output_problem,
    relative_to_config,
)

__all__ = [
    "OBJECTIVES",
    "MAX_SEARCH_NAME",
    "MAX_TOP",
    "EscalationOption",
    "NumberRange",
    "Reference",
    "SearchConfig",
    "Space",
    "load_search",
]

# Objective -> (direction, what it measures). The order is the default ranking order.
OBJECTIVES: dict[str, tuple[Literal["min", "max"], str]] = {
    "days_to_target": (
        "min",
        "days from the first dose to the first dose at the target dose, for a patient "
        "who escalates on schedule (0 when the schedule starts at the target)",
    ),
    "dose_intensity": (
        "max",
        "mg per day delivered over cycles 1 to objective_cycles, per patient who started "
        "(patients who stopped count with 0 mg)",
    ),
    "share_at_target": (
        "max",
        "share of all patients on the target dose in cycle objective_cycles",
    ),
    "share_stopped": ("min", "share of all patients discontinued by the end of the last cycle"),
}
ObjectiveName = Literal["days_to_target", "dose_intensity", "share_at_target", "share_stopped"]

# A range or a product of axes larger than these is refused before anything is built.
MAX_AXIS_VALUES = 1000
MAX_SPACE_SIZE = 200_000
# Run folders of the best candidates (`top`).
MAX_TOP = 50
# The search writes search-<name>/ and run folders named <name>-c<id> (ids up to
# c200000): the name leaves room for both within a result folder name's limit.
MAX_SEARCH_NAME = MAX_NAME - len("-c200000")

# A dose of the space (mg/day): as in a regimen.
Mg = Annotated[float, Field(ge=MIN_DOSE_MG, le=MAX_DOSE_MG)]


class NumberRange(Strict):
    """Values ``from``, ``from + by``, ... up to ``to`` (included, within 1e-9)."""

    model_config = ConfigDict(**Strict.model_config, populate_by_name=True)  # ``from``: an alias

    start: float = Field(
        ..., alias="from", ge=MIN_DOSE_MG, le=MAX_DOSE_MG, description="First value (mg)."
    )
    to: float | None = Field(
        None, ge=MIN_DOSE_MG, le=MAX_DOSE_MG, description="Last value (mg), included."
    )
    by: float = Field(..., ge=0.01, le=MAX_DOSE_MG, description="Step between values (mg).")

    @model_validator(mode="after")
    def _bounded(self) -> NumberRange:
        if self.to is None:
            raise ValueError(
                f"an unbounded range {{from: {self.start:g}, by: {self.by:g}}}: give `to`, the "
                "last value (a search space must be finite)"
            )
        if self.to < self.start:
            raise ValueError(f"range from {self.start:g} to {self.to:g}: `to` is below `from`")
        n = math.floor((self.to - self.start) / self.by + 1e-9) + 1
        if n > MAX_AXIS_VALUES:
            raise ValueError(
                f"range from {self.start:g} to {self.to:g} by {self.by:g} has {n} values "
                f"(at most {MAX_AXIS_VALUES}): use a larger `by`"
            )
        return self

    def values(self) -> tuple[float, ...]:
        n = math.floor((self.to - self.start) / self.by + 1e-9) + 1
        return tuple(round(self.start + i * self.by, 9) for i in range(n))


def _as_list(value: Any) -> Any:
    """One value -> a one-element list (a mapping is left for NumberRange)."""
    if value is None or isinstance(value, list | dict):
        return value
    return [value]


def _no_repeats(name: str, values: list) -> list:
    if len(values) == 0:
        raise ValueError(f"{name}: is empty; give at least one value")
    seen = set()
    for v in values:
        key = tuple(v) if isinstance(v, list | tuple) else v
        if key in seen:
            raise ValueError(f"{name}: repeats the value {v}")
        seen.add(key)
    return values


def axis_values(axis: list | NumberRange) -> tuple:
    """The values of a numeric axis of the space (a list, or a range expanded)."""
    return axis.values() if isinstance(axis, NumberRange) else tuple(axis)


class EscalationOption(Strict):
    """One family of escalations: steps of ``step_mg`` or the ladders of ``levels_mg``,
    every ``every`` ``unit`` (lists are crossed). A ladder goes from a starting dose to a
    target, so it is combined only with the start_mg and target_mg it begins and ends at."""

    step_mg: list[Mg] | NumberRange | None = None
    levels_mg: list[list[Mg]] | None = Field(
        None, description="Dose ladders, each from the starting dose to the target (mg)."
    )
    every: list[typing.Annotated[int, Field(ge=1, le=MAX_EVERY)]] = Field(
        ..., description="Steps every `every` `unit`."
    )
    unit: list[Literal["days", "weeks", "cycles"]] = ["cycles"]
    first_step_after: list[typing.Annotated[int, Field(ge=1, le=MAX_EVERY)] | None] = Field(
        [None], description="Lead-in before the first step, in `unit` (default: `every`)."
    )

    @field_validator("step_mg", "every", "unit", "first_step_after", mode="before")
    @classmethod
    def _one(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("levels_mg", mode="before")
    @classmethod
    def _ladders(cls, v: Any) -> Any:
        # One ladder [2.5, 5, 10] or a list of ladders [[2.5, 5, 10], [5, 10]].
        if isinstance(v, list) and v and not isinstance(v[0], list):
            return [v]
        return v

    @model_validator(mode="after")
    def _check(self) -> EscalationOption:
        if (self.step_mg is None) == (self.levels_mg is None):
            raise ValueError("give exactly one of step_mg or levels_mg in each escalation option")
        if isinstance(self.step_mg, list):
            _no_repeats("step_mg", self.step_mg)
        for name in ("every", "unit", "first_step_after"):
            _no_repeats(name, getattr(self, name))
        for lv in self.levels_mg or []:
            if len(lv) < 2 or any(b <= a for a, b in zip(lv, lv[1:])):
                raise ValueError(
                    f"levels_mg {lv}: a ladder is at least two doses in increasing order"
                )
        if self.levels_mg is not None:
            _no_repeats("levels_mg", self.levels_mg)
        return self


class Space(Strict):
    """The schedules to try: the product of the axes, in the regimen language."""

    cycle_days: list[typing.Annotated[int, Field(ge=7, le=84)]] = Field(
        [28], description="Cycle lengths (days)."
    )
    days_on: list[Annotated[tuple[int, int], LAX]] = Field(
        [(1, 21)], description="Days on drug per cycle, [first, last] (one pair or a list)."
    )
    start_mg: list[Mg] | NumberRange = Field(..., description="Starting doses (mg/day).")
    target_mg: list[Mg] | NumberRange = Field(..., description="Target doses (mg/day).")
    escalation: list[EscalationOption] = Field(
        default_factory=list,
        description="Escalation options; needed when a target is above a starting dose.",
    )
    steroid_prophylaxis: list[bool] | None = Field(
        None,
        description="Steroid flare prophylaxis in cycle 1, or not (default: the population's).",
    )
    cycles: int = Field(..., ge=1, le=120, description="Cycles simulated (one horizon for all).")

    @field_validator("cycle_days", "start_mg", "target_mg", "steroid_prophylaxis", mode="before")
    @classmethod
    def _one(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("days_on", mode="before")
    @classmethod
    def _pairs(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v):
            return [v]
        return v

    @model_validator(mode="after")
    def _check(self) -> Space:
        for name in ("cycle_days", "days_on", "start_mg", "target_mg", "steroid_prophylaxis"):
            value = getattr(self, name)
            if isinstance(value, list):
                _no_repeats(name, value)
        size = (
            len(self.cycle_days)
            * len(self.days_on)
            * len(axis_values(self.start_mg))
            * len(axis_values(self.target_mg))
            * max(1, sum(_option_size(o) for o in self.escalation))
            * len(self.steroid_prophylaxis or [False])
        )
        if size > MAX_SPACE_SIZE:
            raise ValueError(
                f"the space's axes cross into {size:,} combinations (at most "
                f"{MAX_SPACE_SIZE:,}): narrow them"
            )
        return self


def _option_size(o: EscalationOption) -> int:
    kinds = len(axis_values(o.step_mg)) if o.step_mg is not None else len(o.levels_mg or [])
    return kinds * len(o.every) * len(o.unit) * len(o.first_step_after)


class Reference(Strict):
    """A named schedule drawn on the Pareto plot and compared with the best candidates."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    regimen: Regimen
    steroid_prophylaxis: bool = False
    mirrors: str = Field("", description="Which trial (and protocol version) this mirrors.")


class SearchConfig(Strict):
    """A schedule search: a scenario whose regimen is a space of regimens."""

    name: str = Field(
        ...,
        pattern=NAME_PATTERN,
        max_length=MAX_SEARCH_NAME,
        description="Results go to <output>/search-<name>/: letters, digits, '_', '-', '.' "
        f"(at most {MAX_SEARCH_NAME}).",
    )
    description: str = ""
    population: Population
    rules: Rules = Rules()
    posterior: PosteriorRef = PosteriorRef()
    population_effect: Literal["new_trial", "typical"] = "new_trial"
    seed: Seed = Field(
        ..., description=f"Seed of every random number (all candidates; 0 to {MAX_SEED})."
    )
    output: Annotated[Path, LAX] = Field(
        Path("results"),
        description="Results folder (relative to the config file; if omitted, results/ in the "
        "current folder).",
    )
    space: Space
    limits: RiskLimits = Field(
        DEFAULT_LIMITS,
        description="Risk limits (as in scenarios); default TLS in each cycle <= 2% "
        "and grade >= 3 flare by the last cycle <= 5%.",
    )
    objectives: list[ObjectiveName] = Field(
        list(OBJECTIVES),
        description="Objectives in ranking order; the first is the x axis of the Pareto front.",
    )
    objective_cycles: int = Field(
        6, ge=1, description="Dose intensity over cycles 1..this; share at target in this cycle."
    )
    references: list[Reference] = Field(
        default_factory=list,
        description="Reference schedules; the first is the comparator of the best candidates.",
    )
    top: int = Field(3, ge=0, le=MAX_TOP, description="Full `run` result folders for the best k.")
    time_budget_minutes: float = Field(
        10.0,
        gt=0,
        le=10_080,
        description="Refuse a search estimated to take longer (unless --yes); at most a week.",
    )

    @field_validator("output", mode="before")
    @classmethod
    def _output_text(cls, v: Any) -> Any:
        return check_output_text(v)

    @model_validator(mode="after")
    def _check(self) -> SearchConfig:
        n = self.space.cycles
        if self.objective_cycles > n:
            raise ValueError(
                f"objective_cycles: {self.objective_cycles} is beyond the {n} cycles "
                "simulated (space.cycles)"
            )
        _no_repeats("objectives", list(self.objectives))
        if not self.limits.items():
            raise ValueError(
                "limits: give at least one limit, e.g. {tls: {cycle: 1, max: 0.02}} (a search "
                "keeps the schedules within its limits)"
            )
        for event, lim in self.limits.items():
            if lim.cycle is not None and lim.cycle > n:
                raise ValueError(
                    f"limits.{event}.cycle: looks at cycle {lim.cycle} but the search "
                    f"simulates {n} cycles (space.cycles)"
                )
        for i, r in enumerate(self.references):
            try:
                check_limits_on_drug(self.limits, r.regimen, "limits" in self.model_fields_set)
            except ValueError as err:
                raise ValueError(f"references[{i}] ({r.name}): {err}") from None
        names = [r.name for r in self.references]
        if names:
            _no_repeats("references", names)
        for i, r in enumerate(self.references):
            if r.regimen.cycles != n:
                raise ValueError(
                    f"references[{i}].regimen.cycles: {r.name} has {r.regimen.cycles} cycles "
                    f"but the space has {n}: give it `cycles: {n}` (paired comparisons need "
                    "one horizon)"
                )
        if self.space.steroid_prophylaxis is not None and self.population.steroid_prophylaxis:
            raise ValueError(
                "population.steroid_prophylaxis: the search sets it per candidate "
                "(space.steroid_prophylaxis); remove it here"
            )
        return self

    def objective_label(self, name: str) -> str:
        """A short label of an objective, for tables and axes."""
        k, n = self.objective_cycles, self.space.cycles
        return {
            "days_to_target": "days to target",
            "dose_intensity": f"mg/day over cycles 1-{k}",
            "share_at_target": f"on target in cycle {k}",
            "share_stopped": f"stopped by cycle {n}",
        }[name]

    def objective_text(self, name: str) -> str:
        """What an objective measures, in words."""
        return OBJECTIVES[name][1].replace("objective_cycles", str(self.objective_cycles))

    def steroid_axis(self) -> tuple[bool, ...]:
        sp = self.space.steroid_prophylaxis
        return tuple(sp) if sp is not None else (self.population.steroid_prophylaxis,)

    @property
    def out_dir(self) -> Path:
        return self.output / f"search-{self.name}"


def load_search(path: str | Path) -> SearchConfig:
    """Read and validate a search config (strict YAML: :mod:`lenasim.core.yamlio`). Paths
    it writes (``posterior.spec``, ``output``) are relative to the config file, as in
    scenario configs.

    Raises
    ------
    ConfigError
        Naming the file and the key path of every problem (one per line).
    """
    path = Path(path)
    cfg = load_config(
        path, SearchConfig, "search config file", "a search config",
        "name, population, space, limits, ...",
        refuse=lambda data: (
            "this is a scenario config (it has `regimen:`, not `space:`): run it with "
            f"`python -m lenasim run {path}`" if "regimen" in data and "space" not in data
            else None
        ),
    )  # fmt: skip
    cfg = relative_to_config(cfg, path)  # as scenario configs (posterior.spec, output)
    why = output_problem(cfg.out_dir)
    if why is not None:
        raise ConfigError(f"{path}: output: {why}")
    return cfg
