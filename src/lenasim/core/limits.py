"""Risk limits: the one definition shared by scenario configs, reports, comparisons and
the schedule search.

A limit bounds one event's risk: in one cycle (the probability of the event in that
cycle for a patient who starts it), in each cycle (the largest per-cycle risk over cycles
1 to ``cycle``, the last by default) or cumulatively (the probability of at least one
event by the end of a cycle, the last by default)::

    limits:
      tls: {each_cycle: true, max: 0.02}
      flare_grade3plus: {cumulative: true, max: 0.05}

Which cycles a limit looks at (:meth:`RiskLimit.window`), its column stem
(:meth:`RiskLimit.key`) and its wording (:meth:`RiskLimit.describe`) are defined here
once; reports, comparisons and the search use them.

A schedule is *acceptable* for a limit when the posterior probability that its risk
exceeds the limit is at most ``max_probability`` (0.25 by default): the overdose-control
criterion of escalation with overdose control (Babb, Rogatko and Zacks, Stat Med 1998),
which OncoBayes2 uses for its "overdosing" interval.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lenasim.core.schema import Strict
from lenasim.core.vocabulary import event_title

__all__ = [
    "BANDS",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_PROBABILITY",
    "LIMIT_EVENTS",
    "RiskLimit",
    "RiskLimits",
]

# The events a limit may name (the simulator's outputs).
LIMIT_EVENTS: tuple[str, ...] = ("flare", "flare_grade3plus", "tls", "neutropenia")
LimitEvent = Literal["flare", "flare_grade3plus", "tls", "neutropenia"]

# Escalation with overdose control: acceptable when P(risk > limit) <= 0.25 (Babb et al.,
# Stat Med 1998; OncoBayes2's default overdose criterion).
DEFAULT_MAX_PROBABILITY = 0.25

# Interval probabilities of cycle-1 risk, per event (OncoBayes2 reports P(risk in each
# interval); its dose-limiting-toxicity default is 0-16%, 16-33%, 33-100%). Flare and
# neutropenia are common events and use those edges; TLS and grade >= 3 flare are rare
# (a few per cent of patients) and use edges at 1%, 2% and 5%, around the limits
# protocols set for them.
BANDS: dict[str, tuple[float, ...]] = {
    "flare": (0.0, 0.16, 0.33, 1.0),
    "flare_grade3plus": (0.0, 0.01, 0.02, 0.05, 1.0),
    "tls": (0.0, 0.01, 0.02, 0.05, 1.0),
    "neutropenia": (0.0, 0.16, 0.33, 1.0),
}


class RiskLimit(Strict):
    """One limit on one event's risk."""

    max: float = Field(..., gt=0.0, lt=1.0, description="Highest acceptable risk (a probability).")
    cycle: int | None = Field(
        None,
        ge=1,
        le=120,
        description="The cycle (from 1): its per-cycle risk, or with `cumulative` the risk by "
        "its end, or with `each_cycle` the last cycle of the window. Default: cycle 1, or the "
        "last cycle when cumulative or each_cycle.",
    )
    cumulative: bool = Field(
        False, description="Bound the risk of at least one event by the end of `cycle`."
    )
    each_cycle: bool = Field(
        False,
        description="Bound the per-cycle risk in each of cycles 1 to `cycle` (the last by "
        "default): the largest of them, so a schedule cannot pass by moving its risk to a "
        "later cycle.",
    )

    @model_validator(mode="after")
    def _one_kind(self):
        if self.cumulative and self.each_cycle:
            raise ValueError("a limit is either `cumulative` or `each_cycle`, not both")
        return self

    def last_cycle(self, n_cycles: int) -> int:
        """The last cycle the limit looks at in a run of ``n_cycles`` cycles."""
        if self.cycle is not None:
            return self.cycle
        return n_cycles if (self.cumulative or self.each_cycle) else 1

    def window(self, n_cycles: int) -> tuple[int, int]:
        """(first, last) cycle whose risk the limit bounds (1-based, inclusive)."""
        last = self.last_cycle(n_cycles)
        return (1, last) if (self.cumulative or self.each_cycle) else (last, last)

    def key(self, event: str, n_cycles: int) -> str:
        """Column stem: ``tls_c1`` (cycle 1), ``tls_each12`` (each of cycles 1-12) or
        ``flare_grade3plus_cum12`` (by the end of cycle 12)."""
        last = self.last_cycle(n_cycles)
        kind = "cum" if self.cumulative else ("each" if self.each_cycle else "c")
        return f"{event}_{kind}{last}"

    @field_validator("max", mode="before")
    @classmethod
    def _not_a_percent(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool) and 1 <= v <= 100:
            raise ValueError(
                f"a probability from 0 to 1, not a percent: {v:g} would mean "
                f"{100 * v:g}%; write {v / 100:g} for {v:g}%"
            )
        return v

    def describe(self, event: str, n_cycles: int | None = None) -> str:
        """The limit as a protocol states it, e.g. 'Tumor lysis syndrome in each of cycles
        1-12 <= 2%'."""
        end = self.cycle or n_cycles
        if self.cumulative:
            where = f"by the end of cycle {end}" if end else "by the last cycle"
        elif self.each_cycle:
            where = "in each cycle" if not end else (
                f"in each of cycles 1-{end}" if end > 1 else "in cycle 1")  # fmt: skip
        else:
            where = f"in cycle {self.cycle or 1}"
        return f"{event_title(event)} {where} <= {100 * self.max:g}%"


class RiskLimits(Strict):
    """The limits of a scenario or search: event -> one limit or a list of limits, and the
    overdose-control threshold."""

    events: dict[
        LimitEvent, RiskLimit | Annotated[list[RiskLimit], Field(min_length=1, max_length=20)]
    ] = Field(default_factory=dict)
    max_probability: float = Field(
        DEFAULT_MAX_PROBABILITY,
        gt=0.0,
        lt=1.0,
        description="A limit is met when P(risk > max) is at most this (escalation with "
        "overdose control: 0.25).",
    )

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data):
        """Accept the short form ``{tls: {...}, flare_grade3plus: {...}}`` as well as
        ``{events: {...}, max_probability: p}``."""
        if isinstance(data, dict) and "events" not in data:
            data = dict(data)
            p = data.pop("max_probability", DEFAULT_MAX_PROBABILITY)
            return {"events": data, "max_probability": p}
        return data

    def items(self) -> list[tuple[str, RiskLimit]]:
        """(event, limit) pairs in a stable order (the events' order, then as written)."""
        out = []
        for ev in LIMIT_EVENTS:
            got = self.events.get(ev)
            if got is None:
                continue
            out += [(ev, lim) for lim in (got if isinstance(got, list) else [got])]
        return out


# The documented default (the question users bring; see the README's "Risk limits"): TLS
# at most 2% in each cycle of the schedule, grade >= 3 flare by the last cycle at most 5%.
# TLS is bounded in every cycle, not in cycle 1 only: a cycle-1 limit let the search rank
# first the schedules that move the TLS risk to later escalation steps (issue 22, item 13).
# The largest per-cycle risk is chosen over the cumulative one because TLS is a per-step
# event (tumour burden meets a dose rise); its cumulative risk over a long horizon adds up
# the model's small background risk of the late cycles and would judge the horizon's
# length rather than the schedule.
DEFAULT_LIMITS = RiskLimits.model_validate(
    {"tls": {"each_cycle": True, "max": 0.02},
     "flare_grade3plus": {"cumulative": True, "max": 0.05}}
)  # fmt: skip
