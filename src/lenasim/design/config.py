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
from pydantic import BaseModel, Field, model_validator

from lenasim.core.errors import ConfigError
from lenasim.core.limits import DEFAULT_LIMITS, RiskLimits
from lenasim.core.regimen import Regimen, nominal_features
from lenasim.core.schema import LAX, Strict, suggest
from lenasim.core.yamlio import load_config, load_yaml
from lenasim.simulation.scenario import MAX_NAME, MAX_SEED, Population, PosteriorRef, Rules
from lenasim.simulation.scenario import relative_to_config as _relative

__all__ = [
    "Candidate",
    "Conduct",
    "DesignConfig",
    "Truth",
    "Update",
    "load_design",
    "reference_markdown",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# The potential outcomes of one truth's trials are held at once (one byte per patient,
# candidate, event and cycle): the 1,000-trial, 30-patient, 6-candidate, 12-cycle design
# needs 8.6 MB.
MAX_OUTCOME_BYTES = 2e9


class Candidate(Strict):
    """One candidate schedule."""

    name: str = Field(..., pattern=_NAME, max_length=60, description="Short name (tables, plots).")
    regimen: Regimen
    above: list[str] | None = Field(
        None,
        description="With order: partial, the candidates (listed before this one) that "
        "this one is more intense than; none: a least intense candidate.",
    )


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
    stop_probability: float | None = Field(
        None, gt=0, lt=1,
        description="overdose_control: stop for toxicity when the lowest candidate's "
        "in-trial P(risk > limit) exceeds this for some limit (at least "
        "limits.max_probability); when the lowest is unacceptable for escalation but this "
        "does not fire, the next cohort goes to the lowest. None: limits.max_probability "
        "(escalation and stopping are one rule).",
    )  # fmt: skip
    min_patients_to_stop: int | None = Field(
        None, ge=1, le=1000,
        description="overdose_control: stop for toxicity only once the lowest candidate "
        "(in a partial order, the least intense ones together) has at least this many "
        "patients; until then the next cohort goes there. None: any number.",
    )  # fmt: skip


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
    frailty: bool = Field(
        True,
        description="Integrate each trial patient's frailty in the working likelihood (a "
        "patient's cycles share it, as in the model); false: every cycle independent.",
    )  # fmt: skip


class Truth(Strict):
    """Where each simulated trial's truth comes from."""

    name: str = Field(
        ..., pattern=_NAME, max_length=60, description="Names the truth in the results."
    )
    kind: Literal["new_trial", "percentile", "trial_effect"] = Field(
        "new_trial",
        description="new_trial: a posterior draw and a new trial effect per simulated trial; "
        "percentile: one fixed truth, the draw (with its new trial effect) at this percentile "
        "of risk on the starting candidate (the largest ratio of a limit's risk to the "
        "limit); trial_effect: a user-written truth, a posterior draw per trial with the "
        "trial effect given in trial_effect.",
    )
    percentile: float | None = Field(
        None, ge=0, le=100, description="With kind: percentile, the percentile (0-100)."
    )
    trial_effect: dict[Literal["flare", "tls", "neutropenia"], float] | None = Field(
        None,
        description="With kind: trial_effect, the trial's effect on the logit scale per "
        "event (flare, tls, neutropenia; 0 where not given): 1.0 on tls multiplies its odds "
        "by e.",
    )

    @model_validator(mode="after")
    def _needs_percentile(self) -> Truth:
        for key in ("percentile", "trial_effect"):
            if (self.kind == key) != (getattr(self, key) is not None):
                raise ValueError(
                    f"{key} is required with kind: {key} and refused otherwise "
                    f"(truth '{self.name}')"
                )
        for event, value in (self.trial_effect or {}).items():
            if abs(value) > 10:
                raise ValueError(
                    f"trial_effect.{event} is {value:g}: a logit shift beyond +-10 is not a "
                    "trial; use a value from -10 to 10"
                )
        return self


class DesignConfig(Strict):
    """A design: candidates, conduct, rule, in-trial update, truths, simulation."""

    name: str = Field(
        ..., pattern=_NAME, max_length=MAX_NAME - 7,
        description="The results go to <output>/design-<name>/: letters, digits, '_', '-', '.'.",
    )  # fmt: skip
    description: str = Field("", description="What the design is, in words (in the report).")
    population: Population
    rules: Rules = Rules()
    order: Literal["intensity", "as_listed", "partial"] = Field(
        "intensity",
        description="intensity: the candidates must be listed by planned mg per day over "
        "the cycles (checked); as_listed: the order written is the design's (for example by "
        "starting dose), stated in the report; partial: each candidate says which it is "
        "more intense than (`above`), the others are not compared (overdose control only; "
        "between them the in-trial posterior chooses: the larger mean risk relative to the "
        "limit).",
    )
    candidates: list[Candidate] = Field(
        ..., min_length=1, max_length=20,
        description="The candidate schedules, {name, regimen} each (and `above` in a partial "
        "order), least to most intense.",
    )  # fmt: skip
    limits: RiskLimits = DEFAULT_LIMITS
    trial: Conduct = Field(..., description="How the trial is run (below).")
    decide: Decide = Field(Decide(), description="The rule between candidates (below).")
    update: Update = Field(Update(), description="The in-trial posterior (below).")
    truths: list[Truth] = Field(
        default_factory=lambda: [Truth(name="new_trial")], min_length=1,
        description="The truths simulated, each with its own trials; a name alone is "
        "{name: <it>, kind: new_trial}. Default: [new_trial].",
    )  # fmt: skip
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
        first = max(
            (c.regimen.first_cycle.cycle_days if c.regimen.first_cycle and
             c.regimen.first_cycle.cycle_days else c.regimen.cycle_days)
            for c in self.candidates
        )  # fmt: skip
        if self.decide.rule != "overdose_control" and self.trial.followup_days < first:
            raise ValueError(
                f"trial.followup_days ({self.trial.followup_days:g}) is shorter than a first "
                f"cycle ({first} days): rule {self.decide.rule} counts patients with a "
                f"complete first cycle; use followup_days: {first} or more"
            )
        if self.decide.rule == "boin" and self.decide.target is None:
            raise ValueError("decide.target is required with rule: boin (e.g. 0.3)")
        stop_p = self.decide.stop_probability
        if stop_p is not None and stop_p < self.limits.max_probability:
            raise ValueError(
                f"decide.stop_probability ({stop_p:g}) is below limits.max_probability "
                f"({self.limits.max_probability:g}): a trial would stop on weaker evidence "
                "than blocks escalation; use a stop_probability of at least "
                f"{self.limits.max_probability:g} (or drop it: it defaults to that)"
            )
        for key in ("stop_probability", "min_patients_to_stop"):
            if getattr(self.decide, key) is not None and self.decide.rule != "overdose_control":
                raise ValueError(
                    f"decide.{key} is for rule overdose_control, not {self.decide.rule}: drop it"
                )
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
            if y < x - 1e-9 and self.order == "intensity":  # a partial order is not checked
                raise ValueError(
                    f"candidates are not in order of intensity: '{b}' ({y:.2f} mg/day "
                    f"planned) comes after '{a}' ({x:.2f} mg/day); list them from the least "
                    "to the most intense (planned mg per day over the cycles), or state "
                    "your own order with `order: as_listed`"
                )
        n_cyc = max(c.regimen.cycles for c in self.candidates)
        size = self.trials * self.trial.max_patients * len(self.candidates) * 4 * n_cyc
        if size > MAX_OUTCOME_BYTES:
            raise ValueError(
                f"trials x trial.max_patients x candidates x 4 events x {n_cyc} cycles needs "
                f"{size / 1e9:.1f} GB for the patients' outcomes (held per truth); at most "
                f"{MAX_OUTCOME_BYTES / 1e9:g} GB: use fewer trials or patients"
            )
        for i, c in enumerate(self.candidates):
            if c.above is not None and self.order != "partial":
                raise ValueError(
                    f"candidates[{i}].above is given but order is {self.order}: set "
                    "order: partial to state a partial order"
                )
            for a in c.above or []:
                if a not in names[:i]:
                    hint = suggest(a, names[:i])
                    tail = f"; did you mean '{hint}'?" if hint else ""
                    raise ValueError(
                        f"candidates[{i}].above names '{a}', which is not a candidate listed "
                        f"before '{c.name}'{tail} (list the less intense first)"
                    )
        if self.order == "partial" and self.decide.rule != "overdose_control":
            raise ValueError("order: partial needs decide.rule: overdose_control")
        names_t = [t.name for t in self.truths]
        if len(set(names_t)) < len(names_t):
            raise ValueError(f"truths: names must differ, got {names_t}")
        return self

    @property
    def start_index(self) -> int:
        return [c.name for c in self.candidates].index(self.trial.start)

    @property
    def below(self) -> tuple[tuple[int, ...], ...] | None:
        """The partial order (indices each candidate is immediately above), or None for
        the total order of the list."""
        if self.order != "partial":
            return None
        names = [c.name for c in self.candidates]
        return tuple(tuple(names.index(a) for a in c.above or []) for c in self.candidates)


def load_design(path: str | Path) -> DesignConfig:
    """Read and validate a design config.

    Raises
    ------
    ConfigError
        Naming the file and key path of every problem, one per line.
    """
    cfg = load_config(path, DesignConfig, "design config", "a design config",
                      "name, candidates, trial, ...")  # fmt: skip
    return _relative(cfg, path)


_UNITS = {
    "name": "-", "description": "-", "candidates": "schedules", "trial": "-", "decide": "-",
    "update": "-", "truths": "-", "trials": "trials", "cohort_size": "patients",
    "max_patients": "patients", "start": "candidate name", "followup_days": "days",
    "enough_patients": "patients", "accrual_per_28_days": "patients per 28 days",
    "backfill_max": "patients per candidate", "rule": "-", "target": "probability (0-1)",
    "stop_probability": "probability (0-1)", "min_patients_to_stop": "patients",
    "robust_weight": "probability (0-1)", "robust_sd": "logit SD", "min_ess": "draws",
    "frailty": "-", "kind": "-", "percentile": "percent", "trial_effect": "logit", "order": "-",
    "above": "candidate names", "regimen": "-",
}  # fmt: skip


def reference_markdown(example: dict | None = None) -> list[str]:
    """The design config's own keys as Markdown tables (for docs/configuration.md; the
    blocks it shares with scenario configs, population, rules, regimen, limits and
    posterior, are documented there once). ``example``: a design config's YAML data
    (default: configs/design_untreated.yaml's), for the example column."""
    import json

    if example is None:
        shipped = Path(__file__).resolve().parents[3] / "configs" / "design_untreated.yaml"
        example = load_yaml(shipped, ConfigError, "design config") if shipped.is_file() else {}
    out = [
        "# Design configuration reference",
        "",
        "A design config (`configs/design_*.yaml`, `python -m lenasim design CONFIG`) lists "
        "candidate schedules (each `{name, regimen}`, the regimen as in a scenario), least "
        "to most intense (planned mg per day over the cycles, checked), and the trial that "
        "moves between them. `population`, `rules`, `limits`, `posterior`, `seed` and "
        "`output` mean what they mean in a scenario config (above). Examples come from "
        "configs/design_untreated.yaml.",
        "",
    ]
    blocks = [("", DesignConfig, example),
              ("candidates[]", Candidate, (example.get("candidates") or [{}])[0]),
              ("trial", Conduct, example.get("trial", {})),
              ("decide", Decide, example.get("decide", {})),
              ("update", Update, example.get("update", {})),
              ("truths[]", Truth, (example.get("truths") or [{}])[-1])]  # fmt: skip
    shared = {"population", "rules", "limits", "posterior", "seed", "output", "regimen"}
    for prefix, model, ex in blocks:
        out += [f"## {prefix or 'Top-level keys of a design'}", "",
                "| key | type | unit | default | what it is | example |",
                "|---|---|---|---|---|---|"]  # fmt: skip
        for name, field in model.model_fields.items():
            if name in shared:
                continue
            key = f"{prefix}.{name}" if prefix else name
            if field.is_required():
                default = "required"
            elif isinstance(field.default, BaseModel) or name == "truths":
                default = "see below"
            else:
                default = f"`{json.dumps(field.get_default(call_default_factory=True))}`"
            text = " ".join((field.description or "").split()).replace("|", "\\|")
            value = ex.get(name) if isinstance(ex, dict) else None
            nested = name in ("candidates", "trial", "decide", "update", "truths")
            shown = "(below)" if nested else f"`{json.dumps(value)}`"
            out.append(f"| `{key}` | {_words(field.annotation)} | {_UNITS[name]} | {default} "
                       f"| {text} | {shown} |")  # fmt: skip
        out.append("")
    return out


def _words(tp) -> str:
    """A field's type in words (for the reference)."""
    import typing

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if args and type(None) in args:
        return " or ".join(_words(a) for a in args if a is not type(None)) + " (optional)"
    if origin is list:
        return f"list of {_words(args[0])}"
    if origin is dict:
        return f"mapping of {_words(args[0])} to {_words(args[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping"
    return {int: "integer", float: "number", str: "text", bool: "true/false"}.get(tp, str(tp))
