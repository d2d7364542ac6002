"""Design configs (configs/design_*.yaml): the candidate schedules of a schedule-finding
trial, its conduct, the rule that moves between candidates, and the simulation.

Strict (the project's :class:`~lenasim.core.schema.Strict` base): every error names the
file and key path, says what is wrong and, for an unknown key or value, the closest
valid one. The candidates are regimens in the regimen language, with the dose
modification rules of ``rules``, listed from the least to the most intense: the order is
the design's (escalation moves one step up this list, never skipping), and a config
that lists the same schedule twice is refused. Paths are relative to the config file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from lenasim.core.errors import ConfigError
from lenasim.core.limits import DEFAULT_LIMITS, RiskLimits
from lenasim.core.regimen import Regimen, nominal_features
from lenasim.core.schema import LAX, Strict, format_errors, suggest
from lenasim.core.yamlio import load_yaml
from lenasim.simulation.scenario import MAX_NAME, MAX_SEED, Population, PosteriorRef, Rules
from lenasim.simulation.scenario import relative_to_config as _relative

__all__ = ["Candidate", "Conduct", "DesignConfig", "Truth", "Update", "load_design"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Candidate(Strict):
    """One candidate schedule."""

    name: str = Field(..., pattern=_NAME, max_length=60, description="Short name (tables, plots).")
    regimen: Regimen


class Conduct(Strict):
    """How the trial is run."""

    cohort_size: int = Field(3, ge=1, le=12, description="Patients per cohort.")
    max_patients: int = Field(
        30, ge=1, le=1000, description="Largest sample size (backfill included)."
    )
    start: str = Field(..., description="Name of the starting candidate.")
    followup_days: float = Field(
        28.0, gt=0, le=3650,
        description="Days from the start of a cohort's last patient to the next decision; "
        "patient-cycles followed in part count in part (time-to-event style).",
    )  # fmt: skip
    enough_patients: int | None = Field(
        None, ge=1, description="Stop when the candidate recommended next has this many patients."
    )
    accrual_per_28_days: float | None = Field(
        None, gt=0, le=1000,
        description="Patients arriving per 28 days (a Poisson process); none: a patient is "
        "there whenever the trial is ready.",
    )  # fmt: skip
    backfill_max: int | None = Field(
        None, ge=1, le=1000,
        description="Enrol patients arriving while the trial waits on the highest candidate "
        "the design has escalated from, up to this many per candidate (needs an accrual rate).",
    )  # fmt: skip


class Decide(Strict):
    """The rule between candidates."""

    rule: Literal["overdose_control", "boin", "three_plus_three"] = Field(
        "overdose_control",
        description="overdose_control: the highest candidate, up to one above the highest "
        "tried, whose in-trial P(risk > limit) <= limits.max_probability for every limit; "
        "boin and three_plus_three count patients with any limit event in cycle 1.",
    )
    target: float | None = Field(
        None, gt=0, lt=1, description="BOIN's target rate of patients with a cycle-1 event."
    )


class Update(Strict):
    """The in-trial posterior: the lenasim posterior as prior, reweighted by the trial."""

    robust_weight: float = Field(
        0.0, ge=0, lt=1,
        description="Prior weight of a vague component (RBesT's robustify): the same draws "
        "with a between-trial SD widened by robust_sd on the logit scale.",
    )  # fmt: skip
    robust_sd: float = Field(2.0, gt=0, le=10, description="Extra logit SD of the vague component.")
    min_ess: float = Field(
        50.0, ge=1,
        description="Below this effective sample size of the weights the update is not "
        "trusted to escalate: an escalation becomes a stay (counted in the results).",
    )  # fmt: skip


class Truth(Strict):
    """Where each simulated trial's truth comes from."""

    name: str = Field(..., pattern=_NAME, max_length=60)
    kind: Literal["new_trial", "percentile"] = Field(
        "new_trial",
        description="new_trial: a posterior draw and a new trial effect per simulated trial; "
        "percentile: one fixed truth, the draw (with its new trial effect) at this percentile "
        "of risk on the starting candidate (the largest ratio of a limit's risk to the limit).",
    )
    percentile: float | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _needs_percentile(self) -> Truth:
        if (self.kind == "percentile") != (self.percentile is not None):
            raise ValueError(
                "percentile is required with kind: percentile and refused otherwise "
                f"(truth '{self.name}')"
            )
        return self


class DesignConfig(Strict):
    """A design: candidates, conduct, rule, in-trial update, truths, simulation."""

    name: str = Field(..., pattern=_NAME, max_length=MAX_NAME - 7)
    description: str = ""
    population: Population
    rules: Rules = Rules()
    candidates: list[Candidate] = Field(..., min_length=1, max_length=20)
    limits: RiskLimits = DEFAULT_LIMITS
    trial: Conduct
    decide: Decide = Decide()
    update: Update = Update()
    truths: list[Truth] = Field(default_factory=lambda: [Truth(name="new_trial")], min_length=1)
    trials: int = Field(1000, ge=1, le=100_000, description="Simulated trials per truth.")
    posterior: PosteriorRef = PosteriorRef()
    seed: int = Field(..., ge=0, le=MAX_SEED)
    output: Annotated[Path, LAX] = Path("results")

    @model_validator(mode="before")
    @classmethod
    def _truths_by_name(cls, data: Any) -> Any:
        """``truths: [new_trial, {name: p90, kind: percentile, percentile: 90}]``."""
        if isinstance(data, dict) and isinstance(data.get("truths"), list):
            data = dict(data)
            data["truths"] = [{"name": t} if isinstance(t, str) else t for t in data["truths"]]
        return data

    @model_validator(mode="after")
    def _consistent(self) -> DesignConfig:
        names = [c.name for c in self.candidates]
        if len(set(names)) < len(names):
            raise ValueError(f"candidates names must differ, got {names}")
        if self.trial.start not in names:
            hint = suggest(self.trial.start, names)
            tail = f"; did you mean '{hint}'?" if hint else ""
            raise ValueError(
                f"trial.start '{self.trial.start}' is not a candidate{tail} (candidates: "
                f"{', '.join(names)})"
            )
        keys = [c.regimen.model_dump_json() for c in self.candidates]
        if len(set(keys)) < len(keys):
            raise ValueError("candidates hold the same regimen twice: drop one")
        if self.decide.rule == "boin" and self.decide.target is None:
            raise ValueError("decide.target is required with rule: boin (e.g. 0.3)")
        if self.decide.rule == "overdose_control" and not self.limits.items():
            raise ValueError("limits: rule overdose_control needs at least one limit")
        if self.trial.backfill_max and self.trial.accrual_per_28_days is None:
            raise ValueError(
                "trial.backfill_max needs trial.accrual_per_28_days (backfill enrols the "
                "patients who arrive while the trial waits)"
            )
        if self.trial.max_patients < self.trial.cohort_size:
            raise ValueError(
                f"trial.max_patients ({self.trial.max_patients}) is below trial.cohort_size "
                f"({self.trial.cohort_size})"
            )
        cycles = min(c.regimen.cycles for c in self.candidates)
        for event, limit in self.limits.items():
            if limit.cycle is not None and limit.cycle > cycles:
                raise ValueError(
                    f"limits.{event}.cycle is {limit.cycle} but a candidate has {cycles} "
                    f"cycles: use a cycle from 1 to {cycles}"
                )
        dose = [float(np.mean(nominal_features(c.regimen.expand())["intensity"]))
                for c in self.candidates]  # fmt: skip
        for a, b, x, y in zip(names, names[1:], dose, dose[1:], strict=False):
            if y < x - 1e-9:
                raise ValueError(
                    f"candidates are not in order of intensity: '{b}' ({y:.2f} mg/day "
                    f"planned) comes after '{a}' ({x:.2f} mg/day); list them from the least "
                    "to the most intense (planned mg per day over the cycles)"
                )
        names_t = [t.name for t in self.truths]
        if len(set(names_t)) < len(names_t):
            raise ValueError(f"truths: names must differ, got {names_t}")
        return self

    @property
    def start_index(self) -> int:
        return [c.name for c in self.candidates].index(self.trial.start)


def load_design(path: str | Path) -> DesignConfig:
    """Read and validate a design config.

    Raises
    ------
    ConfigError
        Naming the file and key path of every problem, one per line.
    """
    path = Path(path)
    data = load_yaml(path, ConfigError, "design config")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a design config must be a mapping of keys (name, candidates, trial, "
            f"...), got {'an empty file' if data is None else type(data).__name__}"
        )
    try:
        cfg = DesignConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err, DesignConfig, str(path))) from None
    return _relative(cfg, path)
