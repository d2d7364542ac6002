"""The engine's state tables: what every patient state of every cycle means.

A patient's state at the start of a cycle is (dose level, escalation allowed this cycle,
highest level so far or none, covariate stratum), plus the absorbing "stopped" state
(:func:`n_states` counts them). Per scenario, :class:`Tables` tabulates the features of
every (cycle, state) (from :func:`lenasim.core.regimen.cycle_features`, the only
schedule code), the transitions of the dose rules and the doses; per chunk of draws,
exp(-eta) of every event in every state (:meth:`Tables.hazard`). :class:`Strata` holds
the patient covariates' strata. The rules themselves are described in
:mod:`lenasim.simulation.engine`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lenasim.core.errors import LenasimError
from lenasim.core.exposure import (
    MARROW_MTT_DAYS,
    carry_coefficients,
    cycle_daily_mg,
    cycle_features,
    schedule_key,
)
from lenasim.core.hazard import HazardDraws
from lenasim.core.regimen import Schedule
from lenasim.core.vocabulary import PatientCovariate, Vocabulary, active, covariate_features
from lenasim.simulation._native import lib
from lenasim.simulation.scenario import Population, Rules
from lenasim.simulation.streams import Layout

__all__ = ["StateTable", "Strata", "Tables", "n_states", "outcome_codes", "state_table"]

_CONTINUE, _HOLD, _REDUCE, _STOP = 0, 1, 2, 3
_ACTION = {"continue": _CONTINUE, "hold": _HOLD, "reduce": _REDUCE, "discontinue": _STOP}
# Outcomes of a cycle, as (held, reduced, grade >= 3 event) for the transitions; the
# fifth, discontinue, goes to the stop state.
_OUTCOMES = ((False, 0, False), (False, 0, True), (True, 0, True), (True, 1, True), None)
_ETA_CLIP = 700.0
# The cumulative-exposure term (lenasim.core.exposure.cum_exposure_feature): a per-patient
# state, not a feature of the state tables.
CUM_TERM = "cum_exposure"


def n_states(n_levels: int, n_strata: int | None = None) -> int:
    """The patient states of a cycle's table: (level, escalation allowed, highest level so
    far or none, covariate stratum), plus the absorbing "stopped" state. ``n_strata``:
    default, the product of the active vocabulary's patient covariates' strata (shipped:
    2, elderly)."""
    if n_strata is None:
        n_strata = int(np.prod([c.strata for c in active().patient_covariates], dtype=np.int64))
    return 2 * n_levels * (n_levels + 1) * n_strata + 1


def outcome_codes(vocab: Vocabulary, rules: Rules) -> dict[str, int]:
    """Each output event's outcome code: 0 if it is not of grade >= 3, else the action of
    its dose rule + 1 (a rule the scenario's rules do not have: continue)."""
    out = {}
    for o in vocab.outputs:
        if vocab.grade3(o):
            rule = vocab.rule_of(o)
            out[o] = _ACTION[getattr(rules, rule, None) or "continue" if rule else "continue"] + 1
        else:
            out[o] = 0
    return out


class Strata:
    """The patient covariates' strata: per covariate its levels' values, probabilities and
    the thresholds the engine compares each patient's uniform with (level = the number of
    thresholds above the uniform: for a binary covariate with P(1) = share, 1 iff
    u < share), and the stride of its level in the stratum index (the last covariate
    varies fastest)."""

    def __init__(self, covariates: tuple[PatientCovariate, ...], strata: list[tuple]) -> None:
        self.names = tuple(c.name for c in covariates)
        self.values = [np.asarray(v, float) for _, v in strata]
        self.probs = [np.asarray(p, float) for p, _ in strata]
        self.sizes = tuple(len(v) for v in self.values)
        self.n = int(np.prod(self.sizes, dtype=np.int64)) if self.sizes else 1
        strides, acc = [], 1
        for size in reversed(self.sizes):
            strides.append(acc)
            acc *= size
        self.strides = tuple(reversed(strides))
        thr, table, off = [], [], 0
        for p, stride in zip(self.probs, self.strides):
            # t_m = P(level >= K - m), m = 1..K-1
            t = np.cumsum(p[::-1])[:-1]
            thr.append(t)
            table.append((t.size, off, stride))
            off += t.size
        self.thresholds = np.concatenate(thr) if thr else np.zeros(1)
        self.table = np.array(table, np.int64).reshape(-1, 3)

    @classmethod
    def of(cls, vocab: Vocabulary, population: Population, given: dict) -> Strata:
        unknown = sorted(set(given) - set(vocab.patient_terms))
        if unknown:
            raise LenasimError(
                f"covariates {unknown} are not patient covariates of the vocabulary "
                f"({', '.join(vocab.patient_terms) or 'none'})"
            )
        covs = vocab.patient_covariates
        return cls(covs, [c.strata_of(population, given.get(c.name)) for c in covs])

    def level_values(self) -> dict[str, np.ndarray]:
        """Each covariate's value in every stratum (n,)."""
        idx = np.arange(self.n)
        return {
            name: vals[(idx // stride) % size]
            for name, vals, stride, size in zip(self.names, self.values, self.strides, self.sizes)
        }


class StateTable:
    """Features of every possible patient state in one cycle, flattened.

    A state is (level at cycle start, escalation allowed, highest level so far or -1,
    covariate stratum); its flat index is ``((level * 2 + allowed) * (L + 1) + highest
    + 1) * n_strata + stratum`` (:func:`n_states` counts them; shipped: the stratum is
    elderly, 0/1).
    """

    def __init__(
        self, schedule: Schedule, cycle: int, population: Population, strata: Strata
    ) -> None:
        n_lev = schedule.levels_mg.size
        lv, al, hi, st = (
            a.ravel()
            for a in np.meshgrid(
                np.arange(n_lev), [0, 1], np.arange(-1, n_lev), np.arange(strata.n),
                indexing="ij",
            )
        )  # fmt: skip
        highest_mg = np.where(hi >= 0, schedule.levels_mg[np.maximum(hi, 0)], 0.0)
        f = cycle_features(schedule, cycle, lv, al.astype(bool), highest_mg)
        self.n_levels = n_lev
        self.n_strata = strata.n
        self.level, self.allowed = lv, al.astype(bool)  # each state's, for the carry
        self.exposed = bool(f["exposed"].any())
        self.features = dict(f)
        patient = {k: v[st] for k, v in strata.level_values().items()}
        self.features.update(
            covariate_features(
                population.setting,
                population.partner_classes,
                population.steroid_prophylaxis,
                first=f["first"],
                patient=patient,
            )
        )
        self.dose_mean = np.asarray(f["dose_mean"], float)
        self.dose_max = np.asarray(f["dose_max"], float)
        self.intensity = np.asarray(f["intensity"], float)
        self.end_level = np.asarray(f["end_level"], np.int32)
        self.mid_level, self.intensity_after_event = _mid_cycle(schedule, cycle, lv, al)

    def index(
        self, level: np.ndarray, allowed: np.ndarray, highest: np.ndarray, stratum: np.ndarray
    ) -> np.ndarray:
        idx = level * 2 + allowed
        idx *= self.n_levels + 1
        idx += highest + 1
        idx *= self.n_strata
        idx += stratum
        return idx


def state_table(
    schedule: Schedule, cycle: int, population: Population, strata: Strata | None = None
) -> StateTable:
    """The cycle's :class:`StateTable`, built once per content: a table depends on the
    schedule, the cycle, the population's setting, partners and steroid prophylaxis, the
    strata's covariate values and the active vocabulary, and nothing changes a table once
    built, so runs of the same schedule share it (issue 22.12: the tests rebuilt the same
    tables thousands of times)."""
    vocab = active()
    if strata is None:
        strata = Strata.of(vocab, population, {})
    key = (
        id(vocab), schedule_key(schedule), int(cycle), repr(population.setting),
        repr(population.partner_classes), repr(population.steroid_prophylaxis), strata.names,
        tuple((v.dtype.str, v.shape, v.tobytes()) for v in strata.values),
    )  # fmt: skip
    hit = _TABLES.get(key)
    if hit is None or hit[0] is not vocab:
        table = StateTable(schedule, cycle, population, strata)
        size = sum(np.asarray(v).nbytes for v in table.features.values())
        if _TABLES_BYTES[0] + size > _TABLES_MAX_BYTES:
            _TABLES.clear()
            _TABLES_BYTES[0] = 0
        _TABLES_BYTES[0] += size
        hit = _TABLES[key] = (vocab, table)
    return hit[1]


_TABLES: dict = {}
_TABLES_BYTES = [0]
_TABLES_MAX_BYTES = 64 * 2**20  # the cache is cleared beyond 64 MB of features


def tables_for(
    schedule: Schedule, tables: list[StateTable], rules: Rules, layout: Layout
) -> Tables:
    """The :class:`Tables` of these (shared, :func:`state_table`) state tables under these
    rules, built once: runs of one schedule (a design's truths, prior and trials, a
    search's refinement) share it and the distinct hazard rows and carry it builds on first
    use, functions of its content. Keyed by the state tables' identities, which the cache
    holds (no other object can take their ids while it does); cleared beyond 64 MB of
    arrays (its own and its state tables', which it keeps alive)."""
    vocab = active()
    key = (tuple(map(id, tables)), bool(rules.escalate_only_if_tolerated),
           repr(rules.on_lowest), layout, id(vocab))  # fmt: skip
    hit = _TABS.get(key)
    if hit is None or hit[0] is not vocab:
        tabs = Tables(schedule, tables, rules, layout)
        size = sum(a.nbytes for a in (tabs._rows, tabs.next_state, tabs.dose, tabs.reduce_stops))
        size += sum(np.asarray(v).nbytes for t in tables for v in t.features.values())
        if _TABS_BYTES[0] + size > _TABLES_MAX_BYTES:
            _TABS.clear()
            _TABS_BYTES[0] = 0
        _TABS_BYTES[0] += size
        hit = _TABS[key] = (vocab, tables, tabs)
    return hit[2]


_TABS: dict = {}
_TABS_BYTES = [0]


def _mid_cycle(
    schedule: Schedule, cycle: int, level: np.ndarray, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For a grade >= 3 event taken to strike mid-cycle under escalate_only_if_tolerated:
    the level reached on the last day on drug of the cycle's first half (steps after it
    are not taken), and the intensity (mg per day of the cycle) when the first half is
    taken as planned and the second half at that level."""
    on = np.flatnonzero(schedule.on[cycle])
    if on.size == 0:
        return np.asarray(level, np.int32), np.zeros(np.shape(level))
    top = schedule.top_level
    half = on.size // 2
    steps = schedule.steps[cycle][on]  # steps fallen by each day on drug
    day_level = np.minimum(level[:, None] + allowed[:, None] * steps[None, :], top)
    mid = day_level[:, max(half - 1, 0)]
    mg = schedule.levels_mg[day_level[:, :half]].sum(axis=1)
    mg += (on.size - half) * schedule.levels_mg[mid]
    return mid.astype(np.int32), mg / schedule.cycle_days[cycle]


class Tables:
    """The state tables of every cycle, stacked for the kernel, with one more state at
    the end, ``stop`` (index G): discontinued, absorbing, never exposed.

    ``next_state[c, s, o]`` is the state after cycle c of a patient who started it in
    state s with outcome o: 0 no grade >= 3 event, 1 grade >= 3 event with action
    continue, 2 hold, 3 reduce, 4 discontinue (see :data:`_OUTCOMES`). ``reduce_stops``
    marks the states where reduce has no level below (the lowest level) with what it
    becomes there: +1 (outcome 4, discontinue) or -1 (outcome 2, hold), as
    ``rules.on_lowest`` says."""

    def __init__(self, schedule: Schedule, tables: list[StateTable], rules: Rules, layout: Layout):
        escalate_only = bool(rules.escalate_only_if_tolerated)
        n_lev = schedule.levels_mg.size
        g = tables[0].end_level.size
        n_strata = tables[0].n_strata
        assert g + 1 == n_states(n_lev, n_strata)
        self.hazards = layout.hazards
        self.severity = layout.hazards[-1]
        self.n_states = g + 1  # the last one is "stop"
        self.exposed = np.array([t.exposed for t in tables], np.bool_)

        def stack(attr: str) -> np.ndarray:
            out = np.zeros((len(tables), g + 1))
            out[:, :g] = np.stack([getattr(t, attr) for t in tables])
            return out

        top = schedule.levels_mg[-1] - 1e-9
        at_target = np.zeros((len(tables), g + 1))
        at_target[:, :g] = np.stack([t.dose_max >= top for t in tables])
        # (C, 4, G + 1): mean dose, intensity, at target, intensity after a grade >= 3
        # event with action continue; 0 in the stop state.
        after = "intensity_after_event" if escalate_only else "intensity"
        self.dose = np.ascontiguousarray(
            np.stack([stack("dose_mean"), stack("intensity"), at_target, stack(after)], axis=1)
        )
        end = np.stack([t.end_level for t in tables]).astype(np.int64)  # (C, G)
        # The level a grade >= 3 event leaves the patient at: mid-cycle when later steps
        # wait for tolerance, else the cycle's end level.
        ref = np.stack([t.mid_level for t in tables]).astype(np.int64) if escalate_only else end
        lowest = 1 if rules.on_lowest in (None, "discontinue") else -1
        self.reduce_stops = np.zeros((len(tables), g + 1), np.int64)
        self.reduce_stops[:, :g] = ((ref == 0) & self.exposed[:, None]) * lowest
        # The transitions: the state machine of the module docstring, on every state.
        idx = np.arange(g)
        stratum = idx % n_strata
        high1 = (idx // n_strata) % (n_lev + 1)
        nxt = np.full((len(tables), g + 1, len(_OUTCOMES)), g, np.int64)
        for c, t in enumerate(tables):
            for o, (held, reduced, g3) in enumerate(_OUTCOMES[:4]):
                e = ref[c] if g3 else end[c]
                high = np.maximum(high1, e + 1) if t.exposed else high1
                level = e - reduced
                allowed = int(not (held or (escalate_only and g3)))
                new = t.index(np.maximum(level, 0), allowed, high - 1, stratum)
                nxt[c, :g, o] = np.where(level >= 0, new, g)
        self.next_state = nxt
        self._carry_inputs = (schedule, tables, escalate_only)
        self._carry: np.ndarray | None = None
        self.start = np.array(
            [tables[0].index(np.int64(schedule.start_level), 1, -1, s) for s in range(n_strata)],
            np.int64,
        )

        # The hazard's features of every (cycle, state); eta is computed per draw on the
        # distinct rows of each event's own terms only (see _rows).
        self._terms = active().terms
        self._rows = np.empty((len(tables) * g, len(self._terms)))
        for i, t in enumerate(tables):  # (assignment broadcasts a constant feature)
            for j, f in enumerate(self._terms):
                self._rows[i * g : (i + 1) * g, j] = t.features[f]
        self._unexposed = ~np.stack([np.asarray(t.features["exposed"], bool) for t in tables])
        self._by_terms: dict[tuple[str, ...], tuple[dict[str, np.ndarray], np.ndarray]] = {}

    def _distinct(self, terms: tuple[str, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The distinct (cycle, state) rows of these features, and a (C * (G + 1),) index
        into them with one more row, U, for "no lenalidomide" (cycles or states without
        it, and the stop state)."""
        if terms not in self._by_terms:
            n_cyc, g = self._unexposed.shape
            cols = [self._terms.index(t) for t in terms]
            if cols:
                # rows compared as bytes (np.unique's axis=0 sorts them field by field,
                # ~10x slower, ~1 ms a hazard at every simulate); each distinct row's eta
                # is computed alone, so their order changes no result
                sub = np.ascontiguousarray(self._rows[:, cols])
                as_bytes = sub.view(np.dtype((np.void, sub.itemsize * sub.shape[1]))).ravel()
                _, first, inverse = np.unique(as_bytes, return_index=True, return_inverse=True)
                unique = sub[first]
            else:  # an intercept only: one row
                unique, inverse = np.zeros((1, 0)), np.zeros(n_cyc * g, np.int64)
            inv = np.full((n_cyc, g + 1), unique.shape[0], np.int64)
            inv[:, :g] = inverse.reshape(n_cyc, g)
            inv[:, :g][self._unexposed] = unique.shape[0]
            features = {t: unique[:, i] for i, t in enumerate(terms)}
            self._by_terms[terms] = (features, inv.ravel())
        return self._by_terms[terms]

    @property
    def carry(self) -> np.ndarray:
        """(C, G + 1, 5, 2) the carried exposure's update of the cumulative-exposure term
        (:func:`lenasim.core.exposure.carry_exposure`) by cycle, state the patient started
        it in and outcome: E' = E K + A, (K, A) = carry[c, s, o]. The doses taken: the
        cycle's as planned (no grade >= 3 event, or continue); the first half of its days
        on drug for hold, reduce and discontinue (the event taken to strike mid-cycle, as
        the dose sums take it); under escalate_only_if_tolerated a continued event cycle's
        second half at the mid-cycle level. The stop state takes nothing (its exposure
        decays: it has no hazard anyway). Built on first use (only a model with the term
        needs it)."""
        if self._carry is None:
            schedule, tables, escalate_only = self._carry_inputs
            g = self.n_states - 1
            out = np.zeros((len(tables), g + 1, len(_OUTCOMES), 2))
            for c, t in enumerate(tables):
                taken = {
                    how: np.stack(carry_coefficients(
                        cycle_daily_mg(schedule, c, t.level, t.allowed, taken=how)), axis=-1)
                    for how in ("all", "first_half", "mid_level")
                }  # fmt: skip
                after = "mid_level" if escalate_only else "all"
                for o, how in enumerate(("all", after, "first_half", "first_half", "first_half")):
                    out[c, :g, o] = taken[how]
                out[c, g, :, 0] = np.exp(-1.0 / MARROW_MTT_DAYS) ** int(schedule.cycle_days[c])
            self._carry = np.ascontiguousarray(out)
        return self._carry

    def cum_beta(self, draws: HazardDraws) -> np.ndarray | None:
        """(S, K) each hazard's coefficient of the cumulative-exposure term (0 where a
        hazard does not use it), or None if no hazard does (the engine then runs without
        the per-patient carried exposure, as before the term existed)."""
        used = [k for k in self.hazards if CUM_TERM in draws.terms[k]]
        if not used:
            return None
        if self.severity in used:
            raise LenasimError(
                f"the posterior's {self.severity} uses the term {CUM_TERM!r}; the simulation "
                "engine supports it in the events' hazards only (issue 23 item 4): remove it "
                f"from the spec's severity terms and refit"
            )
        out = np.zeros((draws.n_draws, len(self.hazards)))
        for k_i, k in enumerate(self.hazards):
            if k in used:
                out[:, k_i] = draws.coefs[k][CUM_TERM]
        return out

    def hazard(self, draws: HazardDraws) -> np.ndarray:
        """(S, K, C, G + 1): exp(-eta) of each event (flare, TLS and neutropenia shipped)
        and the severity probability, in every state of every cycle, for every draw;
        exp(-eta) is +inf (p = 0) where there is no lenalidomide and in the stop state.

        eta is clipped to +-700 (p changes by < 1e-300) so that exp(-eta) stays finite.
        A cumulative-exposure term is left out here: it depends on each patient's own
        history, and the compiled engine multiplies it in per patient (:attr:`carry`,
        :meth:`cum_beta`)."""
        if draws.link != "logit":  # the C passes compute p = 1 / (1 + exp(-eta) w)
            raise LenasimError(
                f"the posterior was fitted with link {draws.link!r}; the simulation engine "
                "supports link 'logit' only so far (issue 23 item 3): refit with `link: logit`"
            )
        s, n_cyc, g = draws.n_draws, self.exposed.size, self.n_states
        n_k = len(self.hazards)
        out = np.empty((s, n_k, n_cyc * g))
        for k_i, k in enumerate(self.hazards):
            terms = tuple(t for t in draws.terms[k] if t != CUM_TERM)
            if terms != tuple(draws.terms[k]):
                draws = dataclasses.replace(draws, terms={**draws.terms, k: terms})
            features, index = self._distinct(terms)
            n_unique = int(index.max())  # the "no lenalidomide" row (the stop state has it)
            val = np.empty((s, n_unique + 1))
            v = val[:, :-1]
            np.clip(draws.eta(k, features).reshape(s, -1), -_ETA_CLIP, _ETA_CLIP, out=v)
            np.exp(np.negative(v, out=v), out=v)
            if k == self.severity:  # expit(eta) = 1 / (1 + exp(-eta))
                v += 1.0
                np.reciprocal(v, out=v)
            val[:, -1] = 0.0 if k == self.severity else np.inf
            # out[:, k_i, m] = val[:, index[m]]
            lib.lenasim_take_last(val, s, val.shape[1], index, index.size, out,
                                  n_k * n_cyc * g, k_i * n_cyc * g)  # fmt: skip
        return out.reshape(s, n_k, n_cyc, g)
