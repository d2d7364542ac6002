"""A population's patient characteristics as a scenario writes them (distributions or a
CSV cohort), their plausible ranges and the prior-only terms' priors; the simulation of
such a population is :mod:`lenasim.simulation.population`. This module imports only
``core``, so that the scenario's schema can hold it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from lenasim.core.schema import LAX, Strict

__all__ = [
    "AGE_REFERENCE",
    "ALC_REFERENCE",
    "BOUNDS",
    "BULKY_CM",
    "Characteristics",
    "LogNormal",
    "MAX_PROFILES",
    "Normal",
    "TUMOUR_PRIORS",
]

MAX_PROFILES = 256
BULKY_CM = 5.0  # Ferrajoli 2008 (seed 002): nodes larger than 5 cm, the flare risk factor
ALC_REFERENCE = 30.0  # x 10^9/L: the reference of the ALC term (a typical relapsed CLL count)
AGE_REFERENCE = 65.0  # years: the age term's reference, at the fitted `elderly` cut-off

# Plausible values of each characteristic (refused outside): (low, high, unit).
BOUNDS: dict[str, tuple[float, float, str]] = {
    "age": (18.0, 110.0, "years"),
    "weight_kg": (30.0, 250.0, "kg"),
    "creatinine_mg_dl": (0.2, 15.0, "mg/dL"),
    "alc": (0.1, 1000.0, "x 10^9/L"),
    "node_cm": (0.0, 30.0, "cm"),
    "prior_lines": (0.0, 15.0, "lines"),
}

# Prior-only tumour-burden and age terms: (hazard, mean, sd) of the log odds ratio.
# Rationale: Ferrajoli 2008 (seed 002) found nodes > 5 cm the only risk factor for flare,
# and the label names high tumour burden for TLS (Andritsos's fatal case: bulky nodes, a
# white count of 197 x 10^9/L); Chanan-Khan 2006: median age 61 with flare against 71
# without (P = .004). No readable source gives an odds ratio (anchors-turn3.md), so each
# prior is centred on a moderate effect in the reported direction (bulky: OR 2; ALC: OR
# 1.2 (flare), 1.5 (TLS) per e-fold; age: OR 0.67 per 10 years older) and is wide: its
# 90% interval spans from no effect or the opposite to a large one.
TUMOUR_PRIORS: dict[str, tuple[str, float, float]] = {
    "bulky_flare": ("flare", 0.7, 0.6),
    "bulky_tls": ("tls", 0.7, 0.7),
    "alc_flare": ("flare", 0.2, 0.3),
    "alc_tls": ("tls", 0.4, 0.4),
    "age_flare": ("flare", -0.4, 0.3),  # per 10 years above 65
}


class Normal(Strict):
    """A normal distribution (truncated to the characteristic's plausible range)."""

    mean: float = Field(..., description="Mean, in the characteristic's unit.")
    sd: float = Field(0.0, ge=0.0, description="Standard deviation (0: every patient at the mean).")


class LogNormal(Strict):
    """A log-normal distribution: its median and geometric SD (>= 1)."""

    median: float = Field(..., gt=0.0, description="Median, in the characteristic's unit.")
    gsd: float = Field(1.0, ge=1.0, description="Geometric SD (1: every patient at the median).")


Dist = Normal | LogNormal


class Characteristics(Strict):
    """A population's patient characteristics: distributions (independent, except CrCl,
    which follows from age, weight, sex and creatinine) or a CSV cohort to resample."""

    age: Dist | None = Field(None, description="Age (years), e.g. {mean: 70, sd: 8}.")
    female_share: float = Field(0.5, ge=0.0, le=1.0, description="Share of women (CrCl).")
    weight_kg: Dist | None = Field(None, description="Body weight (kg).")
    creatinine_mg_dl: Dist | None = Field(
        None, description="Serum creatinine (mg/dL), e.g. {median: 1.0, gsd: 1.3}; needs age "
        "and weight (Cockcroft-Gault)."
    )  # fmt: skip
    alc: Dist | None = Field(None, description="Absolute lymphocyte count (x 10^9/L).")
    node_cm: Dist | None = Field(None, description="Largest lymph node (cm); >= 5 is bulky.")
    prior_lines: Dist | None = Field(
        None, description="Prior lines of therapy (recorded; no term in the model yet)."
    )
    csv: Annotated[Path, LAX] | None = Field(
        None, description="A CSV of patients to resample (columns: age, sex, weight_kg, "
        "creatinine_mg_dl, alc, node_cm; prior_lines optional), relative to the config."
    )  # fmt: skip
    profiles: int = Field(
        32, ge=2, le=MAX_PROFILES, description="Representative patients (Latin hypercube)."
    )

    @model_validator(mode="after")
    def _check(self) -> Characteristics:
        given = [k for k in BOUNDS if getattr(self, k) is not None]
        if self.csv is not None and given:
            raise ValueError(f"gives both csv and {given[0]}: give the distributions or a CSV")
        for k in given:
            lo, hi, unit = BOUNDS[k]
            d = getattr(self, k)
            centre = d.mean if isinstance(d, Normal) else d.median
            if not lo <= centre <= hi:
                raise ValueError(
                    f"{k}: a centre of {centre:g} {unit} is outside the plausible "
                    f"range {lo:g} to {hi:g} {unit}"
                )
        if self.creatinine_mg_dl is not None and (self.age is None or self.weight_kg is None):
            raise ValueError(
                "creatinine_mg_dl needs age and weight_kg (CrCl by Cockcroft-Gault): give both"
            )
        return self
