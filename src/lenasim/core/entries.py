"""The entries of a vocabulary (:mod:`lenasim.core.vocabulary`): an :class:`Event` the model
fits, the :class:`Severity` of one event, a :class:`PatientCovariate` that differs
between the patients of a cohort, and :data:`ARM_TERMS`, the covariate terms that are the
same for every patient of an arm or a scenario.

This module imports nothing from lenasim (and only NumPy): every stage may import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["ARM_TERMS", "Event", "PatientCovariate", "Severity"]

# The covariate terms that covariate_features computes from the arm or the scenario (the
# same for all its patients): the setting, the partner classes, the steroid prophylaxis.
ARM_TERMS = ("untreated", "consolidation", "anti_cd20", "chemo", "cdk_inhibitor", "steroid")


@dataclass(frozen=True)
class Event:
    """A per-cycle hazard the model fits, with a patient frailty and a trial effect.

    ``outcome``: the evidence outcome that reports it (fitted without the severity);
    ``grade3``: the event itself is of grade >= 3 (dose rules act on it); ``rule``: the
    attribute of the scenario's rules giving the action on it (None: no action; an
    attribute the rules lack means "continue"); ``recorded``: outcomes of the event that
    evidence rows may report but the model does not fit."""

    name: str
    title: str
    outcome: str
    grade3: bool
    rule: str | None = None
    recorded: tuple[str, ...] = ()


@dataclass(frozen=True)
class Severity:
    """The conditional severity of an event: P(grade >= 3 | the event in the cycle).
    ``output``/``outcome``: the output event and the evidence outcome of "the event at
    grade >= 3" (always grade >= 3, so dose rules may act on it through ``rule``)."""

    name: str
    event: str
    output: str
    title: str
    outcome: str
    rule: str | None = None


@dataclass(frozen=True)
class PatientCovariate:
    """A covariate that differs between the patients of a cohort (a hazard term of the
    same name). ``binary``: 0/1, P(1) = the population's attribute ``share`` (0 if it has
    none). ``categorical``: one of ``values`` (the term's value at each level, e.g. an
    ordinal score), with probabilities ``probs`` (a population may give its own in
    ``population.covariates[name]``). ``continuous``: a value x drawn from a distribution (``quantile``: p -> x, the
    default; a population may give its own in ``population.covariates[name]``, a callable
    quantile or an object with ``ppf``), which the engine discretises into ``strata``
    strata of equal probability, each at the conditional mean of x in it (the error of
    this is measured in benchmarks/README.md, "Continuous covariates"). In the fit an arm
    carries its value as the attribute of the same name (for a continuous covariate, the
    arm's mean: an ecological approximation)."""

    name: str
    title: str
    kind: Literal["binary", "categorical", "continuous"] = "binary"
    share: str | None = None
    quantile: Callable[[np.ndarray], np.ndarray] | None = None
    strata: int = 2
    values: tuple[float, ...] = ()
    probs: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "binary" and self.strata != 2:
            raise ValueError(f"covariate {self.name}: a binary covariate has 2 strata")
        if self.kind == "categorical":
            if len(self.values) < 2 or len(self.probs) != len(self.values):
                raise ValueError(
                    f"covariate {self.name}: a categorical covariate needs 2 or more values "
                    f"and one probability each (got {len(self.values)} and {len(self.probs)})"
                )
            object.__setattr__(self, "strata", len(self.values))
        if self.kind == "continuous" and (self.quantile is None or self.strata < 2):
            raise ValueError(
                f"covariate {self.name}: a continuous covariate needs a quantile function "
                "and at least 2 strata"
            )

    def strata_of(self, population: Any = None, given: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, values) of the covariate's strata in a population; ``given``
        overrides the population's own (a share, or a quantile function / distribution)."""
        if self.kind == "binary":
            share = given
            if share is None:
                share = getattr(population, self.share, 0.0) if self.share else 0.0
            share = float(share)
            return np.array([1.0 - share, share]), np.array([0.0, 1.0])
        if self.kind == "categorical":
            probs = given
            if probs is None:
                probs = (getattr(population, "covariates", None) or {}).get(self.name)
            probs = np.asarray(self.probs if probs is None else probs, float)
            if probs.shape != (self.strata,) or (probs < 0).any() or abs(probs.sum() - 1) > 1e-9:
                raise ValueError(
                    f"covariate {self.name}: the probabilities of its {self.strata} levels "
                    f"must be non-negative and sum to 1, got {probs.tolist()}"
                )
            return probs, np.asarray(self.values, float)
        q = given
        if q is None:
            q = (getattr(population, "covariates", None) or {}).get(self.name)
        q = self.quantile if q is None else q
        q = getattr(q, "ppf", q)
        k, sub = self.strata, 64
        # the conditional mean of x in each stratum: the mean of the quantile function at
        # 64 midpoints of the stratum's probability range
        mid = (np.arange(k * sub) + 0.5) / (k * sub)
        values = np.asarray(q(mid), float).reshape(k, sub).mean(axis=1)
        return np.full(k, 1.0 / k), values
