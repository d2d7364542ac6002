"""The Bayesian model: evidence rows -> expected reported rates -> likelihood.

Each fitted evidence row is built from one or more *components*: an arm of a trial
followed over the row's cycles at risk. For a component of arm j (trial t), event k,
the per-cycle probability for a patient of frailty z is the hazard of
:mod:`lenasim.core.hazard` on the arm's nominal exposure (its protocol, escalating on time).
Frailty is integrated by quadrature (nodes z_q, weights w_q; the spec's rule, by default the
trapezoid rule on 21 nodes, :func:`lenasim.core.hazard.frailty_quadrature`):

- unit ``patients`` (at least once over cycles 1..m):
  P = 1 - sum_q w_q prod_c (1 - p_c(z_q))
- unit ``cycle_k`` (share in cycle k): P = sum_q w_q p_k(z_q)
- unit ``cycles`` (share of all cycles over m cycles each): P = mean_c sum_q w_q p_c(z_q)

A row pooling several arms (a figure reported for the whole trial) is the
n-weighted mixture of its arms. ``patients`` and ``cycle_k`` counts are Binomial(n, P).
A ``cycles`` count is not binomial: a patient's cycles share the patient's frailty.
Its likelihood is Normal with the exact mean N P and the exact variance
sum_arms n_patients Var(S), where S is one patient's number of event cycles,
Var(S) = sum_c E_z[p_c (1 - p_c)] + Var_z(sum_c p_c(z)): the within-patient
correlation widens it, as it should.

:func:`row_probabilities` is written once for NumPy (leading axis = posterior draws)
and PyTensor (the graph), like the hazard itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.hazard import NUMPY, Backend, cycle_probability, days_offset, frailty_quadrature
from lenasim.core.regimen import nominal_features
from lenasim.core.vocabulary import UNITS, active, covariate_features
from lenasim.model.given import delivered_features

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "UNITS",
    "ModelData",
    "arm_features",
    "params_from_draws",
    "prepare",
    "row_probabilities",
]


@dataclass(frozen=True)
class ModelData:
    """Arrays the likelihood needs, built from the fitted evidence rows."""

    rows: pd.DataFrame | Sequence  # fitted rows, in order (as given to :func:`prepare`)
    trials: tuple[str, ...]
    features: dict[str, np.ndarray]  # term -> (comp, C); plus "exposed"
    mask: np.ndarray  # (comp, C) 1 on the cycles a component counts
    comp_event: np.ndarray  # (comp, E) one-hot of the event hazard
    comp_severe: np.ndarray  # (comp,) 1 if the row is grade >= 3 flare
    comp_trial: np.ndarray  # (trial, comp) one-hot
    comp_patients_unit: np.ndarray  # (comp,) 1 for unit patients, else 0
    mixing: np.ndarray  # (row, comp) n-weights of the components of each row
    row_unit: np.ndarray  # (row,) index into UNITS
    events: np.ndarray  # (row,)
    n: np.ndarray  # (row,) denominators (patients, or cycles)
    row_patients: np.ndarray  # (row,) patients behind the row (cycles rows: n / m)
    z: np.ndarray
    w: np.ndarray
    link: str = "logit"  # the spec's link (lenasim.core.hazard.cycle_probability)
    patients: object = None  # patient-cycles beside the rows (model.patient_data.PatientData)

    @cached_property
    def blocks(self) -> tuple[CellBlock, ...]:
        """The hazard's distinct counted cells, by event and severity (:func:`cell_blocks`)."""
        return cell_blocks(self)

    @property
    def binomial(self) -> np.ndarray:
        return np.flatnonzero(self.row_unit != UNITS.index("cycles"))

    @property
    def cycles(self) -> np.ndarray:
        return np.flatnonzero(self.row_unit == UNITS.index("cycles"))


def arm_features(arm, cycles: int) -> dict[str, np.ndarray]:
    """Per-cycle features (C,) of an arm's protocol, escalating on time, with covariates
    (each patient covariate of the vocabulary from the arm's attribute of that name: its
    share or mean in the arm; 0 if the arm has none)."""
    vocab = active()
    schedule = arm.regimen.expand(cycles=cycles)
    f = delivered_features(arm, schedule, nominal_features(schedule))  # dose: delivered
    out = {k: f[k] for k in vocab.exposure_terms + ("exposed",)}
    # days at risk in each cycle (the days on drug when dosing daily; a dose every other
    # day covers two): the exposure offset of the cloglog_daily link
    out["days_on"] = schedule.days_at_risk()[:cycles].astype(float)
    patient = {c: getattr(arm, c, 0.0) for c in vocab.patient_terms}
    out.update(
        covariate_features(
            arm.setting, arm.partner_classes, arm.steroid_prophylaxis, first=f["first"],
            patient=patient,
        )
    )  # fmt: skip
    return out


def prepare(
    rows: pd.DataFrame | Sequence,
    arms: dict,
    quadrature_nodes: int,
    quadrature_rule: str = "trapezoid",
    link: str = "logit",
) -> ModelData:
    """Build the likelihood's arrays from fitted evidence rows and the arms they cite
    (``link``: the spec's; its exposure offset is ``features["offset"]``).

    ``rows``: a DataFrame of :func:`lenasim.evidence.table.load_evidence`'s rows, or a
    sequence of records with their fields as attributes (its
    :class:`~lenasim.evidence.table.EvidenceRow`, without pandas).
    """
    if hasattr(rows, "itertuples"):  # a DataFrame: its rows as records
        rows = rows.reset_index(drop=True)
        recs = list(rows.itertuples())
    else:
        recs = list(rows)
    vocab = active()
    outcome_event, events = vocab.outcome_event, vocab.event_names
    bad = sorted({r.outcome for r in recs} - set(outcome_event))
    if bad:
        raise ValueError(f"outcomes {bad} cannot be fitted")
    trials = tuple(sorted({r.trial for r in recs}))
    spans = [_row_spans(r) for r in recs]  # ((m, weight), ...) per row
    cmax = max(m for s in spans for m, _ in s)
    comps: list[dict] = []
    mixing_entries = []
    by_arm: dict = {}  # an arm's features, shared by its rows (read only)
    for i, r in enumerate(recs):
        ids = list(r.arm_ids)
        n_arm = np.array([arms[a].n for a in ids], float)
        weights = n_arm / n_arm.sum()
        for a, wgt in zip(ids, weights):
            if a not in by_arm:
                by_arm[a] = arm_features(arms[a], cmax)
            feats = by_arm[a]
            for m, w_m in spans[i]:  # one point unless cycles_at_risk: distributed
                mask = np.zeros(cmax)
                if r.unit == "cycle_k":
                    mask[int(r.cycle_k) - 1] = 1.0
                else:
                    mask[:m] = 1.0
                ev, severe = outcome_event[r.outcome]
                comps.append({
                    "features": feats, "mask": mask, "event": events.index(ev),
                    "severe": float(severe), "trial": trials.index(r.trial),
                    "patients_unit": float(r.unit == "patients"),
                })  # fmt: skip
                mixing_entries.append((i, len(comps) - 1, wgt * w_m))
    n_comp, n_row = len(comps), len(recs)
    terms = [*(comps[0]["features"].keys())]
    features = {t: np.stack([c["features"][t] for c in comps]) for t in terms}
    features["offset"] = days_offset(features.pop("days_on"), link)
    mixing = np.zeros((n_row, n_comp))
    for i, j, wgt in mixing_entries:
        mixing[i, j] = wgt
    comp_event = np.zeros((n_comp, len(events)))
    comp_event[np.arange(n_comp), [c["event"] for c in comps]] = 1.0
    comp_trial = np.zeros((len(trials), n_comp))
    comp_trial[[c["trial"] for c in comps], np.arange(n_comp)] = 1.0
    z, w = frailty_quadrature(quadrature_nodes, quadrature_rule)
    unit = np.array([UNITS.index(r.unit) for r in recs])
    n = np.array([r.n for r in recs], float)
    m = np.array([sum(k * w_k for k, w_k in s) for s in spans], float)  # mean cycles
    row_patients = np.where(unit == UNITS.index("cycles"), n / m, n)
    return ModelData(
        rows=rows, trials=trials, features=features,
        mask=np.stack([c["mask"] for c in comps]), comp_event=comp_event,
        comp_severe=np.array([c["severe"] for c in comps]), comp_trial=comp_trial,
        comp_patients_unit=np.array([c["patients_unit"] for c in comps]),
        mixing=mixing, row_unit=unit, events=np.array([r.events for r in recs], float), n=n,
        row_patients=row_patients, z=z, w=w, link=link,
    )  # fmt: skip


def _row_spans(r) -> tuple:
    """A row's cycles at risk as ((m, weight), ...): its ``cycles_dist`` (set by
    :func:`lenasim.model.given.as_given` under ``cycles_at_risk: distributed``) or one point."""
    dist = getattr(r, "cycles_dist", None)
    if isinstance(dist, tuple) and dist:
        if r.unit != "patients":
            raise ValueError(
                f"row {r.row_id}: a distribution of cycles at risk needs unit patients"
            )
        return dist
    return ((int(r.cycle_k) if r.unit == "cycle_k" else int(r.cycles_at_risk), 1.0),)


def row_probabilities(params: dict, data: ModelData, terms: dict, xp: Backend = NUMPY):
    """Expected reported rate of every row, and the variance terms of ``cycles`` rows.

    ``params``: ``intercept`` {event: a}, ``beta`` {event: {term: b}}, ``sigma`` {event},
    ``u`` {event: (..., trial)} trial effects, with the same keys for SEVERITY in
    ``intercept`` and ``beta``. NumPy values carry a leading draws axis (shape (S,),
    (S, trial)); PyTensor values are scalars / vectors.

    The hazard is evaluated only on the cycles that rows count (:attr:`ModelData.blocks`:
    grouped by event, severity and unit), and each component's sums over its cycles are
    products with a 0/1 matrix: the formulas of the module docstring, without the
    masked cells of the (component, cycle) grid and with one product per block for the
    linear predictor, so the gradient graph stays small.

    Returns
    -------
    P : (..., row) expected rate; var_s : (..., comp) Var(S) of one patient's event-cycle
    count, for the components of ``cycles`` rows (0 for the others, which do not use it).
    """
    w = data.w
    P = var_s = 0.0
    hazards, probs = [], []  # (..., cell, Q) per block: the event's hazard, and p
    for blk in data.blocks:
        j = blk.same_cells_as  # an earlier block of the same event on the same cells
        if j is not None and data.blocks[j].severe == blk.severe:
            h, p = hazards[j], probs[j]  # another unit's block: the same p
        else:
            h = _hazard(params, blk, data, terms, xp) if j is None else hazards[j]
            if blk.severe:  # grade >= 3 flare: times the conditional severity
                severity = active().severity.name
                h_sev = xp.sigmoid(_linear_predictor(params, blk, severity, terms, xp))
                p = h * h_sev[..., None]
            else:
                p = h
            p = p * (1.0 - 1e-9)  # keeps log(1 - p) finite when p rounds to 1
        hazards.append(h)
        probs.append(p)
        if blk.unit == "patients":  # P(at least once) = 1 - E_z prod_c (1 - p_c(z))
            p_comp = 1.0 - (w * xp.exp(blk.to_comp @ xp.log1p(-p))).sum(axis=-1)
        else:
            sum_p = blk.to_comp @ p  # (..., comp, Q): one patient's expected event cycles
            p_comp = (w * sum_p).sum(axis=-1) / blk.span
            if blk.unit == "cycles":
                v = (w * (blk.to_comp @ (p * (1.0 - p)))).sum(axis=-1) + (
                    (w * sum_p**2).sum(axis=-1) - ((w * sum_p).sum(axis=-1)) ** 2
                )
                var_s = var_s + v @ blk.embed
        P = P + p_comp @ data.mixing[:, blk.comps].T
    if isinstance(var_s, float):  # no ``cycles`` row: zeros, shaped (..., comp)
        var_s = (0.0 * P[..., :1]) @ np.zeros((1, len(data.mask)))
    return P, var_s


def _hazard(params: dict, blk: CellBlock, data: ModelData, terms: dict, xp: Backend):
    """(..., cell, Q): the block's event's per-cycle probability on its cells at each
    frailty node (before any severity factor)."""
    f, ev = blk.features, blk.event
    eta = _linear_predictor(params, blk, ev, terms, xp) + f["offset"]  # (..., cell)
    u = params["u"][ev] @ blk.trial
    return cycle_probability(
        eta[..., None], u[..., None], params["sigma"][ev][..., None, None], data.z,
        f["exposed"][:, None], xp, link=data.link,
    )  # fmt: skip


def _linear_predictor(params: dict, blk: CellBlock, block: str, terms: dict, xp: Backend):
    """a + x' beta on the block's cells, (..., cell): the coefficients stacked into one
    vector and the block's features into one matrix (one product instead of a node per term)."""
    a = params["intercept"][block][..., None]
    names = terms[block]
    if not names:
        return a + 0.0 * blk.features["exposed"]
    b = xp.stack([params["beta"][block][t] for t in names])
    return a + b @ np.stack([blk.features[t] for t in names])


@dataclass(frozen=True)
class CellBlock:
    """The counted cycles ("cells") of the components that share an event hazard, the
    severity factor or not, and a unit. ``to_comp[i, c]`` is the weight (the mask, 1) with
    which component ``comps[i]`` counts cell c; cycles without lenalidomide are left out
    (their p is 0: they add nothing to any sum)."""

    event: str
    severe: bool
    unit: str
    comps: np.ndarray  # (comp_b,) indices of the components
    features: dict[str, np.ndarray]  # term -> (cell,)
    trial: np.ndarray  # (trial, cell) one-hot
    to_comp: np.ndarray  # (comp_b, cell)
    span: np.ndarray  # (comp_b,) cycles each component counts (m)
    embed: np.ndarray  # (comp_b, comp) 0/1: block components -> all components
    # index of an earlier block of the same event on the same cells (features, trials):
    # its hazard is this block's (a mirrored arm's patients and cycles rows of one event,
    # or its flare rows of any grade and of grade >= 3)
    same_cells_as: int | None = None


def cell_blocks(data: ModelData) -> tuple[CellBlock, ...]:
    """Group the counted (component, cycle) cells of ``data`` into :class:`CellBlock`."""
    comp_ev = data.comp_event.argmax(axis=1)
    comp_unit = data.row_unit[data.mixing.argmax(axis=0)]  # each component serves one row
    n_comp = len(data.mask)
    blocks = []
    for e, ev in enumerate(active().event_names):
        for severe in (False, True):
            for u, unit in enumerate(UNITS):
                sel = (comp_ev == e) & (data.comp_severe.astype(bool) == severe)
                comps = np.flatnonzero(sel & (comp_unit == u))
                if not comps.size:
                    continue
                ci, cc = np.nonzero(
                    (data.mask[comps] != 0) & (data.features["exposed"][comps] != 0)
                )
                to_comp = np.zeros((comps.size, ci.size))
                to_comp[ci, np.arange(ci.size)] = data.mask[comps[ci], cc]
                embed = np.zeros((comps.size, n_comp))
                embed[np.arange(comps.size), comps] = 1.0
                features = {t: v[comps[ci], cc] for t, v in data.features.items()}
                trial = data.comp_trial[:, comps[ci]]
                same = next((i for i, b in enumerate(blocks) if b.same_cells_as is None
                             and b.event == ev and _same_arrays(b.features, features)
                             and np.array_equal(b.trial, trial)), None)  # fmt: skip
                blocks.append(CellBlock(
                    event=ev, severe=severe, unit=unit, comps=comps, features=features,
                    trial=trial, to_comp=to_comp, span=data.mask[comps].sum(axis=-1),
                    embed=embed, same_cells_as=same,
                ))  # fmt: skip
    return tuple(blocks)


def _same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and np.array_equal(a[k], b[k]) for k in a
    )


def params_from_draws(draws, n_trials: int, u: np.ndarray | None = None) -> dict:
    """NumPy ``params`` for :func:`row_probabilities` from HazardDraws.

    ``u``: (S, trial, event) trial effects; zeros (a typical trial) if None.
    """
    s = draws.n_draws
    EVENTS = active().event_names  # noqa: N806
    if u is None:
        u = np.zeros((s, n_trials, len(EVENTS)))
    return {
        "intercept": dict(draws.intercept),
        "beta": {k: dict(v) for k, v in draws.coefs.items()},
        "sigma": dict(draws.sigma),
        "u": {ev: u[:, :, e] for e, ev in enumerate(EVENTS)},
    }
