"""The trials as they were given (issue 23, item 2): two spec options that change what
the likelihood assumes about the fitted trials, not the model's terms.

``dose: delivered`` (default ``planned``): an arm whose report gives the doses its
patients received (``evidence/data/as_given.yaml``, each number with its source) is
split into groups of patients, each on the planned schedule with its daily dose capped
from a given cycle on; a row of the arm becomes the n-weighted mixture of its groups, as
a row pooling several arms already is. Arms whose report gives no delivered dose keep
the planned one (the file says why, arm by arm).

``cycles_at_risk: distributed`` (default ``point``): in a ``patients`` row each patient's
number of cycles on drug m is log-normal, log m ~ N(log M, s^2), instead of every patient
being at risk for exactly the row's ``cycles_at_risk``; the row's probability is the
mixture over patients, P = E_m[P(m)], integrated by three Gauss-Hermite points of log m
(weights 1/6, 2/3, 1/6 at log M -+ sqrt(3) s and log M; m rounded to whole cycles, at
least 1, at most the arm's ``max``). Time on treatment differs between patients (stops
for progression or toxicity), so this is the right law for one patient even where the
centre is reported; where the centre was assumed, its own uncertainty is folded in.

- M: the row's value; for a reported mean (total cycles / patients) the median of the
  log-normal with that mean, M = mean exp(-s^2 / 2).
- s = PATIENT_SPREAD = 0.4 for a reported median, mean or planned number: the patients'
  spread. Aue (131 cycles in 33 patients, range 2-8) and Blum (median 3, range 2-8) are
  the two trials that report a range; for 20-30 patients a range spans about +-2 SD, so
  log(8 / 2) / 4 = 0.35; rounded up to 0.4.
- s = sqrt(0.4^2 + ASSUMED_SPREAD^2) = 0.64 where the value was assumed (not reported):
  ASSUMED_SPREAD = 0.5 puts an assumed 6 cycles between 2.2 and 16 at +-2 SD, which covers
  the readings the arm notes weigh (stops for toxicity after 1-3 cycles; 6-9 months to
  best response; follow-up of 14 months).

The mixture is over independent patients (the binomial likelihood of the row then uses
the mixed probability), not a shared row-level unknown: for an assumed centre the
difference (a little extra overdispersion of the count) is neglected. ``cycles`` rows
keep their point value (their denominator is the reported total of cycles, so the mean
is known), as do ``cycle_k`` rows and arms not listed in the file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.exposure import nominal_features
from lenasim.core.schedule import Schedule
from lenasim.evidence.given import load_as_given

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PATIENT_SPREAD = 0.4
ASSUMED_SPREAD = 0.5
_GH_Z = (-math.sqrt(3.0), 0.0, math.sqrt(3.0))
_GH_W = (1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0)


@dataclass(frozen=True)
class GroupArm:
    """A group of an arm's patients (``n`` of them) whose daily dose was capped at
    ``max_mg`` from cycle ``from_cycle`` on; every other attribute is the arm's."""

    base: object
    arm_id: str
    n: int
    max_mg: float | None
    from_cycle: int

    def __getattr__(self, name):
        return getattr(self.base, name)


def delivered_features(arm, schedule: Schedule, f: dict[str, np.ndarray]) -> dict:
    """The per-cycle features ``f`` of the planned ``schedule``, with the cycles from
    ``arm.from_cycle`` on taken from the same schedule with its doses capped at
    ``arm.max_mg`` (unchanged for an arm that is not a capped :class:`GroupArm`)."""
    cap = getattr(arm, "max_mg", None) if isinstance(arm, GroupArm) else None
    if cap is None:
        return f
    capped = dataclasses.replace(
        schedule,
        levels_mg=np.minimum(schedule.levels_mg, cap),
        max_mg=min(schedule.max_mg, cap),
    )
    g = nominal_features(capped, cycles=len(f["cycle"]))
    k = arm.from_cycle - 1
    return {key: np.concatenate([v[:k], g[key][k:]]) for key, v in f.items()}


def cycles_nodes(value: float, basis: str, max_cycles: int | None) -> tuple:
    """((m, weight), ...): whole cycles at risk and their probabilities (see the module
    docstring), equal values merged."""
    s = PATIENT_SPREAD
    if basis == "assumed":
        s = math.hypot(PATIENT_SPREAD, ASSUMED_SPREAD)
    centre = value * math.exp(-(s**2) / 2) if basis == "mean" else value
    out: dict[int, float] = {}
    for z, w in zip(_GH_Z, _GH_W):
        m = max(1, round(centre * math.exp(s * z)))
        if max_cycles is not None:
            m = min(m, max_cycles)
        out[m] = out.get(m, 0.0) + w
    return tuple(sorted(out.items()))


def as_given(rows: pd.DataFrame, arms: dict, spec) -> tuple[pd.DataFrame, dict]:
    """The fitted rows and the arms as ``spec``'s options give them to the likelihood
    (the inputs themselves, unchanged, under the defaults)."""
    dose = getattr(spec, "dose", "planned")
    cycles = getattr(spec, "cycles_at_risk", "point")
    if dose == "planned" and cycles == "point":
        return rows, arms
    given = load_as_given(arms=arms)
    rows = rows.copy()
    arms = dict(arms)
    if cycles == "distributed":
        rows["cycles_dist"] = [_row_cycles(r, given) for r in rows.itertuples()]
    if dose == "delivered":
        split: dict[str, tuple[str, ...]] = {}
        for arm_id, d in given.delivered.items():
            ids = []
            for k, g in enumerate(d.groups):
                sub = f"{arm_id}~{k}"
                arms[sub] = GroupArm(arms[arm_id], sub, g.n, g.max_mg, g.from_cycle)
                ids.append(sub)
            split[arm_id] = tuple(ids)
        rows["arm_ids"] = [
            tuple(s for a in ids for s in split.get(a, (a,))) for ids in rows["arm_ids"]
        ]
    return rows, arms


def _row_cycles(r, given) -> tuple | None:
    """A ``patients`` row's cycles-at-risk nodes, or None (the point value stays)."""
    if r.unit != "patients":
        return None
    bases = {given.cycles[a].model_dump_json(exclude={"source"}) for a in r.arm_ids
             if a in given.cycles}  # fmt: skip
    if not bases:
        return None
    if len(bases) > 1 or any(a not in given.cycles for a in r.arm_ids):
        raise ValueError(f"row {r.row_id}: its arms {r.arm_ids} differ in as_given.yaml's cycles")
    c = given.cycles[r.arm_ids[0]]
    return cycles_nodes(float(r.cycles_at_risk), c.basis, c.max)
