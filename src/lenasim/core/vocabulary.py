"""lenasim's words, each defined once: events, the severity, outcomes, their titles, the
hazard's terms and covariate encoding, the patient covariates, the likelihood's units, the
convergence gate's thresholds and the dose outputs of a run.

Three sets of names meet here. The *hazards* (:data:`EVENTS`, and the conditional
severity :data:`SEVERITY`) are what the model fits; the *outcomes* (:data:`OUTCOMES`)
are what the trials reported, one per evidence row; the *output events*
(:data:`OUTPUT_EVENTS`) are what a run reports per cycle. :data:`OUTCOME_EVENT` maps a
fitted outcome to its hazard.

Everything is derived from one :class:`Vocabulary` instance, :data:`DEFAULT`; the
module-level constants are its fields. The model spec, the likelihood, the kernel, the fit's
gate and the engine read the *active* vocabulary (:func:`active`), so a test (or, later, a
configuration) can add an event or a patient covariate by data alone: build a
:class:`Vocabulary` (``DEFAULT.extended(...)``) and run inside ``with use(vocab):``. The rest of
the package (reports, tables) still reads the module constants of :data:`DEFAULT`.

The entries (:class:`Event`, :class:`Severity`, :class:`PatientCovariate`) are defined in
:mod:`lenasim.core.entries` and importable from here. This module imports nothing from
lenasim but them (and only NumPy): every stage may import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lenasim.core.entries import ARM_TERMS, Event, PatientCovariate, Severity

__all__ = [
    "COVARIATE_TERMS",
    "DEFAULT",
    "DOSE_COLUMNS",
    "EVENTS",
    "EXPOSURE_TERMS",
    "FITTED_OUTCOMES",
    "GATE",
    "OUTCOMES",
    "OUTCOME_EVENT",
    "OUTPUT_EVENTS",
    "SEVERITY",
    "TERMS",
    "TITLES",
    "UNITS",
    "Event",
    "Gate",
    "PatientCovariate",
    "Severity",
    "Vocabulary",
    "active",
    "covariate_features",
    "event_title",
    "use",
]


@dataclass(frozen=True)
class Gate:
    """The convergence gate of ``fit`` (issue 3): every failure stops it unless
    --allow-unconverged. Validation refits use a looser R-hat (``refit_rhat``)."""

    max_rhat: float = 1.01
    min_ess: float = 400
    refit_rhat: float = 1.05

    def words(self) -> str:
        return f"R-hat <= {self.max_rhat}, bulk and tail ESS >= {self.min_ess:g}, no divergence"

    def failing(self, diag: Any) -> Any:
        """True where diagnostics fail the gate: ``diag`` maps ``max_rhat``,
        ``min_ess_bulk``, ``min_ess_tail`` and ``divergences`` to numbers or arrays (a
        DataFrame of fits works); NaN fails."""
        ok = (
            (np.asarray(diag["max_rhat"], float) <= self.max_rhat)
            & (np.asarray(diag["min_ess_bulk"], float) >= self.min_ess)
            & (np.asarray(diag["min_ess_tail"], float) >= self.min_ess)
            & (np.asarray(diag["divergences"], float) == 0)
        )
        return ~ok


GATE = Gate()


@dataclass(frozen=True)
class Vocabulary:
    """The events, the severity, the outcomes, the terms and the patient covariates.

    ``arm_terms``: covariate terms that are the same for every patient of an arm or a
    scenario (setting, partner classes, steroid); ``patient_covariates``: those that
    differ between patients; ``covariate_terms`` lists both in the order of the
    covariate features (a patient covariate not in it is appended)."""

    events: tuple[Event, ...]
    severity: Severity
    exposure_terms: tuple[str, ...]
    covariate_terms: tuple[str, ...]
    patient_covariates: tuple[PatientCovariate, ...]
    extra_titles: Mapping[str, str] = field(default_factory=dict)
    units: tuple[str, ...] = ("patients", "cycles", "cycle_k")

    def __post_init__(self) -> None:
        names = [e.name for e in self.events]
        if len(set(names)) != len(names):
            raise ValueError(f"repeated events in {names}")
        if self.severity.event not in names:
            raise ValueError(f"the severity's event {self.severity.event!r} is not one of {names}")
        missing = [c.name for c in self.patient_covariates if c.name not in self.covariate_terms]
        if missing:
            object.__setattr__(self, "covariate_terms", (*self.covariate_terms, *missing))
        known = set(ARM_TERMS) | set(self.patient_terms)
        unknown = [t for t in self.covariate_terms if t not in known]
        if unknown:
            raise ValueError(
                f"covariate terms {unknown} are neither arm terms ({', '.join(ARM_TERMS)}) "
                "nor patient covariates of the vocabulary: declare each as a PatientCovariate"
            )

    # ---- names
    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.events)

    @property
    def hazards(self) -> tuple[str, ...]:
        """The fitted hazards: the events, then the severity."""
        return (*self.event_names, self.severity.name)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output events: each event, followed by its grade >= 3 output if it has the
        severity."""
        out: list[str] = []
        for e in self.events:
            out.append(e.name)
            if e.name == self.severity.event:
                out.append(self.severity.output)
        return tuple(out)

    @property
    def outcome_event(self) -> dict[str, tuple[str, bool]]:
        """A fitted outcome -> (its hazard, times the severity?), in the order of the outputs."""
        out: dict[str, tuple[str, bool]] = {}
        for e in self.events:
            out[e.outcome] = (e.name, False)
            if e.name == self.severity.event:
                out[self.severity.outcome] = (e.name, True)
        return out

    @property
    def outcomes(self) -> tuple[str, ...]:
        """What an evidence row may report: each event's outcome, its grade >= 3 outcome
        if it has the severity, then the outcomes it records but the model does not fit."""
        out: list[str] = []
        for e in self.events:
            out.append(e.outcome)
            if e.name == self.severity.event:
                out.append(self.severity.outcome)
            out.extend(e.recorded)
        return tuple(out)

    @property
    def terms(self) -> tuple[str, ...]:
        return self.exposure_terms + self.covariate_terms

    @property
    def patient_terms(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.patient_covariates)

    @property
    def titles(self) -> dict[str, str]:
        own = {e.name: e.title for e in self.events} | {self.severity.output: self.severity.title}
        out = {o: own[o] for o in self.outputs}
        out.update(self.extra_titles)
        return out

    def rule_of(self, output: str) -> str | None:
        """The rules' attribute that says what to do after ``output`` (None: nothing)."""
        if output == self.severity.output:
            return self.severity.rule
        return next(e.rule for e in self.events if e.name == output)

    def grade3(self, output: str) -> bool:
        if output == self.severity.output:
            return True
        return next(e.grade3 for e in self.events if e.name == output)

    def extended(
        self,
        events: Iterable[Event] = (),
        patient_covariates: Iterable[PatientCovariate] = (),
        titles: Mapping[str, str] | None = None,
    ) -> Vocabulary:
        """This vocabulary with more events and patient covariates (appended)."""
        return replace(
            self,
            events=(*self.events, *events),
            patient_covariates=(*self.patient_covariates, *patient_covariates),
            extra_titles={**self.extra_titles, **(titles or {})},
        )


DEFAULT = Vocabulary(
    events=(
        Event(
            "flare",
            "Tumor flare (any grade)",
            "flare_any",
            grade3=False,
            recorded=("flare_grade2plus",),
        ),  # fmt: skip
        Event("tls", "Tumor lysis syndrome", "tls", grade3=True, rule="on_tls"),
        Event(
            "neutropenia",
            "Grade 3-4 neutropenia",
            "neutropenia_grade34",
            grade3=True,
            rule="on_neutropenia",
        ),
    ),  # fmt: skip
    severity=Severity(
        "flare_severity",
        "flare",
        "flare_grade3plus",
        "Tumor flare grade >= 3",
        "flare_grade3plus",
        rule="on_flare_grade3plus",
    ),  # fmt: skip
    exposure_terms=(
        "log_dose",
        "log_frac_on",
        "first",
        "first_log_dose",
        "rise",
        "log_cycle",
        "restart",
        "cum_exposure",
    ),
    covariate_terms=(
        "untreated",
        "consolidation",
        "elderly",
        "anti_cd20",
        "chemo",
        "cdk_inhibitor",
        "steroid",
    ),
    patient_covariates=(
        PatientCovariate("elderly", "age 65 or more", "binary", share="elderly_share"),
    ),
    extra_titles={
        "flare_any": "Tumor flare (any grade)",
        "flare_grade2plus": "Tumor flare grade >= 2",
        "neutropenia_grade34": "Grade 3-4 neutropenia",
    },
)
"""lenasim's vocabulary: three events (flare of any grade, TLS, grade 3-4 neutropenia),
the severity of flare, and one patient covariate (elderly)."""

_ACTIVE: list[Vocabulary] = [DEFAULT]


def active() -> Vocabulary:
    """The vocabulary the model and the engine use now (:data:`DEFAULT` unless inside
    :func:`use`)."""
    return _ACTIVE[-1]


@contextlib.contextmanager
def use(vocab: Vocabulary) -> Iterator[Vocabulary]:
    """Make ``vocab`` the active vocabulary inside the ``with`` block (process-wide, not
    per thread: the engine's threads read only tables built before they start)."""
    _ACTIVE.append(vocab)
    try:
        yield vocab
    finally:
        _ACTIVE.pop()


# --------------------------------------------------------------------- events, outcomes

EVENTS: tuple[str, ...] = DEFAULT.event_names
"""The per-cycle hazards the model fits (flare of any grade, TLS, grade 3-4 neutropenia)."""

SEVERITY: str = DEFAULT.severity.name
"""The conditional severity: P(flare grade >= 3 | flare in the cycle)."""

OUTPUT_EVENTS: tuple[str, ...] = DEFAULT.outputs
"""What a run reports per cycle, in the order of draws.nc's ``event`` axis."""

OUTCOMES: tuple[str, ...] = DEFAULT.outcomes
"""What an evidence row may report (``flare_grade2plus`` is recorded, never fitted)."""

OUTCOME_EVENT: dict[str, tuple[str, bool]] = DEFAULT.outcome_event
"""A fitted outcome -> (its hazard, times the severity?)."""

FITTED_OUTCOMES: tuple[str, ...] = tuple(OUTCOME_EVENT)
"""The outcomes the model can fit, in the order figures show them."""

TITLES: dict[str, str] = DEFAULT.titles
"""An output event or an outcome in words, as a haematologist would title a panel."""

UNITS: tuple[str, ...] = DEFAULT.units
"""The units of a fitted evidence row: ``patients`` (at least once over the cycles at
risk), ``cycles`` (share of all cycles given), ``cycle_k`` (share in cycle k)."""


def event_title(name: str) -> str:
    """The title of an event or outcome; an unknown name with its underscores as spaces."""
    titles = active().titles
    return titles.get(name, TITLES.get(name, name.replace("_", " ")))


# --------------------------------------------------------------------- the hazard's terms

EXPOSURE_TERMS: tuple[str, ...] = DEFAULT.exposure_terms
"""Features of a cycle's exposure (:func:`lenasim.core.regimen.cycle_features`)."""

COVARIATE_TERMS: tuple[str, ...] = DEFAULT.covariate_terms
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
    elderly: Any = 0.0,
    first: Any = 0.0,
    *,
    patient: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """The hazard's covariate features (the active vocabulary's covariate terms), for the
    fit's trial arms and the simulator's patients alike.

    ``untreated`` and ``consolidation`` are 1 in that setting (relapsed is the
    reference); ``elderly`` is 1 for a patient aged 65 or more; ``anti_cd20``,
    ``chemo`` and ``cdk_inhibitor`` are 1 when a partner drug of that class is given;
    ``steroid`` is ``steroid_prophylaxis`` x ``first``: the steroid flare prophylaxis
    goes with the first lenalidomide cycle only. Each patient covariate takes its values
    from ``patient`` (name -> values; ``elderly`` may come as its own argument); one not
    given is 0 (its reference).

    ``elderly`` (0/1), ``first`` (0/1, from the exposure features) and the values of
    ``patient`` are scalars or arrays; every feature has their broadcast shape, as float64.
    """
    if setting not in _SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; use one of {', '.join(_SETTINGS)}")
    classes = set(partner_classes)
    unknown = sorted(classes - set(_PARTNER_CLASSES))
    if unknown:
        raise ValueError(
            f"unknown partner classes {unknown}; use some of {', '.join(_PARTNER_CLASSES)}"
        )
    vocab = active()
    values = {"elderly": elderly, **(patient or {})}
    values = {c: np.asarray(values.get(c, 0.0), dtype=float) for c in vocab.patient_terms}
    first = np.asarray(first, dtype=float)
    shape = np.broadcast_shapes(first.shape, *(v.shape for v in values.values()))

    def const(flag: bool) -> np.ndarray:
        return np.full(shape, float(flag))

    arm = {
        "untreated": const(setting == "untreated"),
        "consolidation": const(setting == "consolidation"),
        "anti_cd20": const("anti_cd20" in classes),
        "chemo": const("chemo" in classes),
        "cdk_inhibitor": const("cdk_inhibitor" in classes),
        "steroid": np.broadcast_to(float(steroid_prophylaxis) * first, shape).copy(),
    }
    for name, v in values.items():
        arm[name] = np.broadcast_to(v, shape).copy()
    return {t: arm[t] for t in vocab.covariate_terms}


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
