"""Rules that move a trial between candidates.

Each rule has ``decide(data, current, highest) -> Decision`` (after a cohort's
follow-up) and ``select(data, current, highest) -> int`` (the candidate recommended when
the trial stops for a reason of its own: sample size, enough patients). Candidates are
indexed from 0 (the least intense); ``highest`` is the highest tried so far.

- :class:`ThreePlusThree`: the 3+3 design without de-escalation (the "A+B" design with
  A = B = 3 of Lin and Shih, Biostatistics 2001;2:203, with escalation only).
- :class:`Boin`: the Bayesian optimal interval design (Liu and Yuan, J R Stat Soc C
  2015;64:507), with its elimination rule and isotonic selection.
- :class:`OverdoseControl`: escalation with overdose control (Babb, Rogatko and Zacks,
  Stat Med 1998) on the in-trial posterior of :mod:`lenasim.design.update`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lenasim.design.trial import Data, Decision, lower
from lenasim.design.update import DrawModel

__all__ = ["Boin", "OverdoseControl", "ThreePlusThree", "boin_boundaries", "isotonic"]


@dataclass(frozen=True)
class ThreePlusThree:
    """3 patients; 0/3 with a DLT: escalate; 1/3: 3 more at the same candidate, then
    escalate if 1/6; 2 or more: stop and select the candidate below (none below the
    lowest). Escalating from the highest candidate selects it. DLT: any event in cycle 1
    (``Data.dlt_complete``), on patients with a complete first cycle."""

    def decide(self, data: Data, current: int, highest: int) -> Decision:
        n, y = int(data.n_complete[current]), int(data.dlt_complete[current])
        top = data.n_treated.size - 1
        if y >= 2:
            return Decision(current, "too_toxic" if current == 0 else "design_end", current - 1)
        if n == 3 and y == 1:
            return Decision(current)
        if current == top:
            return Decision(current, "design_end", current)
        return Decision(current + 1)

    def select(self, data: Data, current: int, highest: int) -> int:
        return current - 1  # the last candidate escalated from


def boin_boundaries(target: float, low: float | None = None, high: float | None = None):
    """BOIN's escalation and de-escalation boundaries (lambda_e, lambda_d) on the observed
    DLT rate, for the target and the highest rate deemed underdosing (``low``, default
    0.6 x target) and the lowest deemed overdosing (``high``, 1.4 x target): Liu and
    Yuan 2015, eq. 2.3 and their recommended defaults."""
    p1 = 0.6 * target if low is None else low
    p2 = 1.4 * target if high is None else high
    lam_e = math.log((1 - p1) / (1 - target)) / math.log(target * (1 - p1) / (p1 * (1 - target)))
    lam_d = math.log((1 - target) / (1 - p2)) / math.log(p2 * (1 - target) / (target * (1 - p2)))
    return lam_e, lam_d


def isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weighted isotonic (non-decreasing) regression of y (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for yi, wi in zip(np.asarray(y, float), np.asarray(w, float), strict=True):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([[m] * c for m, _, c in blocks])


@dataclass(frozen=True)
class Boin:
    """BOIN: at the current candidate with n patients (complete first cycle) and y DLTs,
    escalate when y / n <= lambda_e, de-escalate when y / n >= lambda_d, else stay;
    eliminate the candidate and those above when P(rate > target | y, n) > ``eliminate``
    under a Beta(1, 1) prior with n >= 3 (Liu and Yuan's safety rule; eliminating the
    lowest stops the trial). Selection: the isotonic estimate (weighted by patients) of
    the rates of the candidates tried, (y + 0.05) / (n + 0.1) as the BOIN package
    smooths them, closest to the target, the lower on ties."""

    target: float
    eliminate: float = 0.95

    def boundaries(self) -> tuple[float, float]:
        return boin_boundaries(self.target)

    def _eliminated(self, data: Data) -> int:
        """The lowest eliminated candidate (J when none)."""
        from scipy.stats import beta

        n, y = data.n_complete, data.dlt_complete
        bad = (n >= 3) & (beta.sf(self.target, 1 + y, 1 + n - y) > self.eliminate)
        return int(np.argmax(bad)) if bad.any() else n.size

    def decide(self, data: Data, current: int, highest: int) -> Decision:
        lam_e, lam_d = self.boundaries()
        n, y = int(data.n_complete[current]), int(data.dlt_complete[current])
        cut = self._eliminated(data)
        if cut == 0:
            return Decision(current, "too_toxic", -1)
        if n == 0:
            return Decision(min(current, cut - 1))
        rate = y / n
        if current >= cut:
            nxt = cut - 1
        elif rate <= lam_e:
            nxt = min(current + 1, cut - 1)
        elif rate >= lam_d:
            nxt = max(current - 1, 0)
        else:
            nxt = current
        return Decision(nxt)

    def select(self, data: Data, current: int, highest: int) -> int:
        n, y = data.n_complete.astype(float), data.dlt_complete.astype(float)
        tried = np.flatnonzero(n[: self._eliminated(data)] > 0)
        if tried.size == 0:
            return -1
        est = isotonic((y[tried] + 0.05) / (n[tried] + 0.1), n[tried])
        return int(tried[np.argmin(np.abs(est - self.target) + 1e-9 * np.arange(tried.size))])


@dataclass(frozen=True)
class OverdoseControl:
    """Escalation with overdose control on the in-trial posterior
    (:class:`lenasim.design.update.DrawModel`): a candidate is acceptable when P(its risk
    > limit) <= the limits' max_probability for every limit. Next: the candidate below
    the least intense unacceptable one, at most one above the highest tried (no
    skipping). The lowest unacceptable stops the trial (too toxic) when the stop rule
    fires too: P(its risk > limit) > ``stop_probability`` (None: the limits'
    max_probability, so that escalation and stopping are one rule) for some limit, with at
    least ``min_patients_to_stop`` patients on it (None: any number); otherwise the next
    cohort goes to the lowest (stopping for toxicity on stronger evidence than blocks
    escalation, as crmPack's StoppingTargetProb and StoppingMinPatients). When the weights'
    effective sample size is below ``min_ess`` the update is not trusted to escalate:
    the decision is the same except that an escalation becomes a stay (de-escalations
    and stops, the cautious moves, are kept), and it is counted as ``low_ess``.
    Selection: the most intense acceptable candidate tried, below the least intense
    unacceptable one. With ``below`` (a partial order of the candidates), see
    :meth:`_partial`."""

    model: DrawModel
    min_ess: float = 50.0
    below: tuple[tuple[int, ...], ...] | None = None  # a partial order (see _partial)
    stop_probability: float | None = None
    min_patients_to_stop: int | None = None

    def _stops(self, data: Data, roots: list[int]) -> bool:
        """The stop rule, given that every candidate in ``roots`` (the least intense) is
        unacceptable for escalation: each has P(risk > limit) > stop_probability for some
        limit, and together they hold at least min_patients_to_stop patients."""
        if self.stop_probability is None and self.min_patients_to_stop is None:
            return True  # today's rule: unacceptable at the lowest is the stop
        if self.min_patients_to_stop is not None:
            if int(data.n_treated[roots].sum()) < self.min_patients_to_stop:
                return False
        if self.stop_probability is None:
            return True
        od = self.model.overdose(self.model.weights(data)[0])[roots]
        return bool((od > self.stop_probability).any(axis=1).all())

    def _first_bad(self, data: Data) -> tuple[int, float]:
        w, ess = self.model.weights(data)
        acc = self.model.acceptable(w)
        return (int(np.argmin(acc)) if not acc.all() else acc.size), ess

    def decide(self, data: Data, current: int, highest: int) -> Decision:
        if self.below is not None:
            return self._partial(data, current)
        bad, ess = self._first_bad(data)
        low = ess < self.min_ess
        if bad == 0:
            if self._stops(data, [0]):
                return Decision(current, "too_toxic", -1, low_ess=low)
            return Decision(0, low_ess=low)  # not (yet) a stop: the next cohort on the lowest
        nxt = min(bad - 1, highest + 1)
        return Decision(min(nxt, current) if low else nxt, low_ess=low)

    def select(self, data: Data, current: int, highest: int) -> int:
        if self.below is not None:
            blocked, _, _ = self._blocked(data)
            ok = np.flatnonzero((data.n_treated > 0) & ~blocked)
            return self._most_intense([int(j) for j in ok], data) if ok.size else -1
        bad, _ = self._first_bad(data)
        tried = np.flatnonzero(data.n_treated[:bad] > 0)
        return int(tried[-1]) if tried.size else -1

    def _blocked(self, data: Data) -> tuple[np.ndarray, np.ndarray, float]:
        """Unacceptable, or above an unacceptable candidate (risk is taken to rise along
        the order); and the acceptability, and the ESS."""
        w, ess = self.model.weights(data)
        acc = self.model.acceptable(w)
        blocked = np.zeros(acc.size, bool)
        for j in range(acc.size):  # the list is a topological order
            blocked[j] = (not acc[j]) or any(blocked[k] for k in self.below[j])
        return blocked, acc, ess

    def _partial(self, data: Data, current: int) -> Decision:
        """Over a partial order: a candidate may be given when it is not blocked and is
        below a candidate tried, or is a least intense one, or one of the candidates it is
        immediately above was tried (no skipping along the order; requiring all of them
        would stall a trial that never tries a side branch); the next is the most intense
        such (:meth:`_most_intense`). When every least intense candidate is blocked, the trial stops
        if the stop rule fires on them (:meth:`_stops`); otherwise the next cohort goes to
        the current candidate if it is a least intense one, else to the least intense
        with the smallest largest P(risk > limit). Selection: the most intense, in the same
        sense, of the candidates tried and not blocked."""
        blocked, _, ess = self._blocked(data)
        low = ess < self.min_ess
        n = blocked.size
        roots = [j for j in range(n) if not self.below[j]]
        if all(blocked[j] for j in roots):
            if self._stops(data, roots):
                return Decision(current, "too_toxic", -1, low_ess=low)
            if current in roots:
                return Decision(current, low_ess=low)
            od = self.model.overdose(self.model.weights(data)[0])[roots].max(axis=1)
            return Decision(roots[int(np.argmin(od))], low_ess=low)
        tried = data.n_treated > 0
        down = {j for j in range(n) if tried[j]}
        for j in list(down):
            down |= lower(self.below, j)
        allowed = [j for j in range(n) if not blocked[j]
                   and (j in down or not self.below[j]
                        or any(tried[k] for k in self.below[j]))]  # fmt: skip
        nxt = self._most_intense(allowed, data)
        if low and nxt not in down:  # not trusted to escalate: stay, or step down
            kept = [j for j in allowed if j in down]
            nxt = current if not blocked[current] else (
                self._most_intense(kept, data) if kept else allowed[0])  # fmt: skip
        return Decision(nxt, low_ess=low)

    def _most_intense(self, cands: list[int], data: Data) -> int:
        """Of ``cands`` (in listed order), the most intense: those with none of the others
        above them (the order decides where it can; on a chain, the highest), then, among
        such candidates the order does not compare, the one with the largest posterior mean
        risk relative to its limit (the largest over the limits of mean risk / limit), the
        later listed on a tie. So the choice between branches is the in-trial model's, not
        the config's listing (any listing consistent with the order gives the same trial)."""
        top = [j for j in cands if not any(j in lower(self.below, k) for k in cands if k != j)]
        if len(top) == 1:
            return top[0]
        w, _ = self.model.weights(data)
        rel = (self.model.mean_risk(w)[top] / self.model.limit_max[None, :]).max(axis=1)
        best = np.flatnonzero(rel == rel.max())
        return top[int(best[-1])]
