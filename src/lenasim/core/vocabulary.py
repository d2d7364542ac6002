"""lenasim's words, each defined once: events, outcomes, their titles, the hazard's
terms and covariate encoding, the dose outputs of a run.

Three sets of names meet here. The *hazards* (:data:`EVENTS`, and the conditional
severity :data:`SEVERITY`) are what the model fits; the *outcomes* (:data:`OUTCOMES`)
are what the trials reported, one per evidence row; the *output events*
(:data:`OUTPUT_EVENTS`) are what a run reports per cycle. :data:`OUTCOME_EVENT` maps a
fitted outcome to its hazard.

This module imports nothing from lenasim (and only NumPy): every stage may import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "COVARIATE_TERMS",
    "DOSE_COLUMNS",
    "EVENTS",
    "EXPOSURE_TERMS",
    "FITTED_OUTCOMES",
    "OUTCOMES",
    "OUTCOME_EVENT",
    "OUTPUT_EVENTS",
    "SEVERITY",
    "TERMS",
    "TITLES",
    "covariate_features",
    "event_title",
]

# --------------------------------------------------------------------- events, outcomes

EVENTS: tuple[str, ...] = ("flare", "tls", "neutropenia")
"""The per-cycle hazards the model fits (flare of any grade, TLS, grade 3-4 neutropenia)."""

SEVERITY = "flare_severity"
"""The conditional severity: P(flare grade >= 3 | flare in the cycle)."""

OUTPUT_EVENTS: tuple[str, ...] = ("flare", "flare_grade3plus", "tls", "neutropenia")
"""What a run reports per cycle, in the order of draws.nc's ``event`` axis."""

OUTCOMES: tuple[str, ...] = (
    "flare_any",
    "flare_grade3plus",
    "flare_grade2plus",
    "tls",
    "neutropenia_grade34",
)
"""What an evidence row may report (``flare_grade2plus`` is recorded, never fitted)."""

OUTCOME_EVENT: dict[str, tuple[str, bool]] = {
    "flare_any": ("flare", False),
    "flare_grade3plus": ("flare", True),
    "tls": ("tls", False),
    "neutropenia_grade34": ("neutropenia", False),
}
"""A fitted outcome -> (its hazard, times the severity?)."""

FITTED_OUTCOMES: tuple[str, ...] = tuple(OUTCOME_EVENT)
"""The outcomes the model can fit, in the order figures show them."""

TITLES: dict[str, str] = {
    "flare": "Tumor flare (any grade)",
    "flare_grade3plus": "Tumor flare grade >= 3",
    "tls": "Tumor lysis syndrome",
    "neutropenia": "Grade 3-4 neutropenia",
    "flare_any": "Tumor flare (any grade)",
    "flare_grade2plus": "Tumor flare grade >= 2",
    "neutropenia_grade34": "Grade 3-4 neutropenia",
}
"""An output event or an outcome in words, as a haematologist would title a panel."""


def event_title(name: str) -> str:
    """The title of an event or outcome; an unknown name with its underscores as spaces."""
    return TITLES.get(name, name.replace("_", " "))


# --------------------------------------------------------------------- the hazard's terms

EXPOSURE_TERMS: tuple[str, ...] = (
    "log_dose",
    "log_frac_on",
    "first",
    "first_log_dose",
    "rise",
    "log_cycle",
    "restart",
)
"""Features of a cycle's exposure (:func:`lenasim.core.regimen.cycle_features`)."""

COVARIATE_TERMS: tuple[str, ...] = (
    "untreated",
    "consolidation",
    "elderly",
    "anti_cd20",
    "chemo",
    "cdk_inhibitor",
    "steroid",
)
"""Features of the patient and the treatment around lenalidomide (:func:`covariate_features`)."""

TERMS: tuple[str, ...] = EXPOSURE_TERMS + COVARIATE_TERMS
"""Every feature a hazard may use (a model spec picks some per hazard)."""

# The reference of each covariate is the first of these: relapsed (or refractory) CLL,
# lenalidomide alone. Each other setting and each partner class is its own 0/1 feature.
_SETTINGS: tuple[str, ...] = ("relapsed", "untreated", "consolidation")
_PARTNER_CLASSES: tuple[str, ...] = ("anti_cd20", "chemo", "cdk_inhibitor")


def covariate_features(
    setting: str,
    partner_classes: Iterable[str],
    steroid_prophylaxis: bool | float,
    elderly: Any,
    first: Any,
) -> dict[str, np.ndarray]:
    """The hazard's covariate features (:data:`COVARIATE_TERMS`), for the fit's trial arms
    and the simulator's patients alike.

    ``untreated`` and ``consolidation`` are 1 in that setting (relapsed is the
    reference); ``elderly`` is 1 for a patient aged 65 or more; ``anti_cd20``,
    ``chemo`` and ``cdk_inhibitor`` are 1 when a partner drug of that class is given;
    ``steroid`` is ``steroid_prophylaxis`` x ``first``: the steroid flare prophylaxis
    goes with the first lenalidomide cycle only.

    ``elderly`` (0/1) and ``first`` (0/1, from the exposure features) are scalars or
    arrays; every feature has their broadcast shape, as float64.
    """
    if setting not in _SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; use one of {', '.join(_SETTINGS)}")
    classes = set(partner_classes)
    unknown = sorted(classes - set(_PARTNER_CLASSES))
    if unknown:
        raise ValueError(
            f"unknown partner classes {unknown}; use some of {', '.join(_PARTNER_CLASSES)}"
        )
    elderly = np.asarray(elderly, dtype=float)
    first = np.asarray(first, dtype=float)
    shape = np.broadcast_shapes(elderly.shape, first.shape)

    def const(flag: bool) -> np.ndarray:
        return np.full(shape, float(flag))

    return {
        "untreated": const(setting == "untreated"),
        "consolidation": const(setting == "consolidation"),
        "elderly": np.broadcast_to(elderly, shape).copy(),
        "anti_cd20": const("anti_cd20" in classes),
        "chemo": const("chemo" in classes),
        "cdk_inhibitor": const("cdk_inhibitor" in classes),
        "steroid": np.broadcast_to(float(steroid_prophylaxis) * first, shape).copy(),
    }


# --------------------------------------------------------------------- dose outputs

DOSE_COLUMNS: tuple[str, ...] = (
    "dose_mean_mg",
    "dose_intensity",
    "share_on",
    "share_at_target",
    "share_held",
    "share_reduced",
    "share_stopped",
)
"""A run's per-cycle dose outputs (draws.nc variables, dose.csv columns), in the order
the engine computes them. ``planned_intensity`` (the regimen's, the same in every draw)
is not one of them."""
