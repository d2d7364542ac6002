"""Scenario configs (configs/*.yaml): who is treated, with which schedule, under which
dose-modification rules, simulated over which posterior.

Validated strictly (pydantic, ``extra="forbid"`` everywhere). Every error names the
YAML file and the key path, says what is wrong and, for an unknown key or value,
suggests the closest valid one::

    configs/x.yaml: regimen.start_mg: must be > 0 (got -5)
    configs/x.yaml: rules.on_tls: unknown key 'on_tlss'; did you mean 'on_tls'?

Paths inside a config (``posterior.spec``, ``output``) are relative to the current
working directory, which is the repository root when you run ``python -m lenasim``
from it as the README says; they are not relative to the config file.

The regimen block is :class:`lenasim.core.regimen.Regimen` itself, so the schedule
language has one definition and one validator.
"""

from __future__ import annotations

import hashlib
import os
import typing
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError

from lenasim.core.errors import ConfigError
from lenasim.core.regimen import Regimen
from lenasim.core.schema import (
    LAX,
    PARTNER_CLASSES,
    SETTINGS,
    PartnerClass,
    Setting,
    Strict,
    format_errors,
)
from lenasim.core.yamlio import load_yaml

__all__ = [
    "ACTIONS",
    "PARTNER_CLASSES",
    "SETTINGS",
    "Population",
    "PosteriorRef",
    "Rules",
    "Scenario",
    "config_hash",
    "env_threads",
    "load_scenario",
]

Action = Literal["continue", "hold", "reduce", "discontinue"]
ACTIONS: tuple[str, ...] = typing.get_args(Action)

# A patient's index is one 32-bit word of the random-number counter (streams.py).
MAX_PATIENTS = 2**32 - 1
# The seed is one 64-bit word of the random-number key (streams.py).
MAX_SEED = 2**64 - 1
# A result folder's name, with room for the writer's temporary siblings
# (".<name>.partial-<pid>-<token>") within the 255 bytes file systems allow.
MAX_NAME = 200
MAX_THREADS = 256


class Population(Strict):
    """The virtual patients: how many, in which setting, with which partner drugs."""

    patients: int = Field(
        1000, ge=1, le=MAX_PATIENTS, description="Virtual patients per posterior draw."
    )
    setting: Setting = Field(..., description="relapsed (or refractory), untreated, consolidation.")
    elderly_share: float = Field(0.0, ge=0.0, le=1.0, description="Share aged 65 or more.")
    partner_classes: list[PartnerClass] = Field(
        default_factory=list, description="Classes of the partner drugs (the hazard covariates)."
    )
    partners: list[str] = Field(
        default_factory=list, description="Names of the partner drugs (documentation only)."
    )
    steroid_prophylaxis: bool = Field(
        False, description="Steroid flare prophylaxis with the first lenalidomide cycle."
    )


class Rules(Strict):
    """Dose-modification rules, one action per grade >= 3 event (see simulate.py)."""

    on_neutropenia: Action = Field("continue", description="On grade 3-4 neutropenia.")
    on_flare_grade3plus: Action = Field("continue", description="On a grade >= 3 tumor flare.")
    on_tls: Action = Field("continue", description="On tumor lysis syndrome.")
    escalate_only_if_tolerated: bool = Field(
        False,
        description="Take a cycle's escalation steps only if the previous cycle had no "
        "grade >= 3 event (grade 3-4 neutropenia, grade >= 3 flare, TLS).",
    )


class PosteriorRef(Strict):
    """Which fitted posterior to simulate over, and how many of its draws."""

    spec: Annotated[Path, LAX] = Field(
        Path("models/default.yaml"),
        description="Model spec; its posterior is the .nc next to it (relative to the cwd).",
    )
    draws: int = Field(1000, ge=1, description="Posterior draws to simulate (a thinned subsample).")

    @property
    def nc_path(self) -> Path:
        return self.spec.with_suffix(".nc")


class Scenario(Strict):
    """One scenario: a population, a regimen, rules, a posterior, a seed."""

    name: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=MAX_NAME,
        description="Used as the results folder name: letters, digits, '_', '-', '.' "
        f"(at most {MAX_NAME}).",
    )
    description: str = ""
    mirrors: str = Field("", description="Which trial (and protocol version) this mirrors.")
    population: Population
    regimen: Regimen
    rules: Rules = Rules()
    posterior: PosteriorRef = PosteriorRef()
    population_effect: Literal["new_trial", "typical"] = Field(
        "new_trial",
        description="new_trial: each cohort draws a new trial effect u ~ N(0, tau) "
        "(predicting a new trial); typical: u = 0 (the average trial).",
    )
    seed: int = Field(
        ..., ge=0, le=MAX_SEED, description="Seed of every random number of the run (< 2**64)."
    )
    output: Annotated[Path, LAX] = Field(
        Path("results"), description="Results folder (relative to the cwd)."
    )


def config_hash(path: str | Path) -> str:
    """sha256 of the config file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario config (strict YAML: :mod:`lenasim.core.yamlio`).

    Raises
    ------
    ConfigError
        Naming the file and key path of every problem (all of them, one per line).
    """
    path = Path(path)
    data = load_yaml(path, ConfigError, "config file")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the config must be a mapping of keys (name, population, regimen, ...), "
            f"got {'an empty file' if data is None else type(data).__name__}"
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err, Scenario, str(path))) from None


def env_threads() -> int | None:
    """The thread count set by the environment variable ``LENASIM_THREADS`` (None if unset).

    Raises
    ------
    ConfigError
        When it is not a whole number from 1 to 256.
    """
    text = os.environ.get("LENASIM_THREADS", "").strip()
    if not text:
        return None
    if not text.isdecimal() or not 1 <= int(text) <= MAX_THREADS:
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise ConfigError(
            f"environment variable LENASIM_THREADS={shown!r}: must be a whole number of "
            f"threads from 1 to {MAX_THREADS}; fix it, or unset it to use the CPUs available"
        )
    return int(text)
