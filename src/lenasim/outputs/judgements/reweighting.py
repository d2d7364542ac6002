"""Importance reweighting of posterior draws to a moved dose-slope prior, and where a
probability read from the draws crosses its threshold (a verdict's tipping point).

Had the dose-slope prior been different, the posterior would differ by the ratio of the
priors, so the same draws, reweighted, give any posterior probability under the other
prior (nothing is simulated again):

    w_s(k) = p_k(beta_s) / p_1(beta_s),    P_k = sum_s w_s(k) hit_s / sum_s w_s(k)

where beta_s are a draw's dose slopes, p_1 their prior in the model spec and p_k the
same prior with its median multiplied by k (for a log-normal slope, log(beta) ~
N(mu + log k, sigma); for a normal one, the spec's ``monotone: false``, beta ~
N(k mu, sigma)). k < 1 is a weaker dose effect than the prior expects, k > 1 a stronger.

The tipping factor on each side of k = 1 is the k nearest 1 at which P_k crosses the
threshold, found on a grid of log k (linear interpolation between grid points). The
reweighted estimate is only as good as its weights: the side ends, "beyond what
reweighting can tell" (a refit at that prior would be needed), where the effective
sample size falls below :data:`MIN_ESS` -- the smaller of the weights' own
(sum w)^2 / sum w^2, which is optimistic when the largest weights were never drawn, and
its value were the slopes' posterior normal -- or where PSIS's Pareto k-hat of the
largest weights exceeds :data:`KHAT_MAX`. A side without a flip up to :data:`K_RANGE`
says so. A verdict that flips within the prior's own 50% interval of the dose slope
(0.60x to 1.66x its median for the shipped log-normal prior with sigma 0.75:
exp(+-0.674 sigma)) is *fragile*.

:mod:`lenasim.outputs.judgements.tipping` applies this to a run's limits and a comparison's rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "K_RANGE",
    "KHAT_MAX",
    "MIN_ESS",
    "TIPPING_COLUMNS",
    "Shift",
    "Tipping",
    "ess",
    "find_tipping",
    "find_tippings",
    "pareto_khat",
    "short_words",
]

K_RANGE = (0.1, 10.0)  # the factors on the prior median searched (a tenth to ten times)
MIN_ESS = 100  # effective draws below which a reweighted P(.) is too noisy to read
# (its MCSE near 0.25 is then sqrt(0.25 x 0.75 / 100) = 0.043 or more)
KHAT_MAX = 0.7  # PSIS's Pareto k-hat beyond which reweighting is unreliable (Vehtari et al.)
GRID = 121  # points of log k on each side of 1: steps of ~2% in k, interpolated linearly
Z50 = 0.6744897501960817  # the standard normal's 75th percentile: a 50% interval is +-Z50 SD
TIPPING_COLUMNS = ("tipping_low", "tipping_low_kind", "tipping_high", "tipping_high_kind",
                   "tipping_fragile", "tipping")  # fmt: skip


@dataclass(frozen=True)
class Shift:
    """The dose slopes of the simulated draws and their prior, ready to reweight.

    ``beta``: (S, m) the slopes (positive for log-normal priors); ``mu``, ``sigma``: the
    prior's parameters per slope (of log(beta) when ``lognormal``); ``names``: which
    hazard's slope each column is."""

    beta: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    lognormal: np.ndarray
    names: tuple[str, ...] = ()
    # (end, grid points) -> what :meth:`grid` computes: a comparison asks for the same
    # event's slopes once per quantity (per cycle, cumulative)
    _grids: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _x(self) -> np.ndarray:
        """(S, m) the slopes on their prior's normal scale (log beta for a log-normal)."""
        ln = self.lognormal
        return np.where(ln, np.log(np.where(ln, self.beta, 1.0)), self.beta)

    def _moved(self, k: np.ndarray) -> np.ndarray:
        """(K, 1, m) the moved prior's mean on the normal scale, for each factor in ``k``."""
        k = np.asarray(k, float).reshape(-1, 1, 1)
        return np.where(self.lognormal, self.mu + np.log(k), k * self.mu)

    def log_weights(self, k: np.ndarray) -> np.ndarray:
        """(K, S) log of p_k(beta) / p_1(beta) for each factor in ``k``."""
        # (x - mu)^2 - (x - mu - d)^2 = d (2 (x - mu) - d), d the move of the prior mean
        d = self._moved(k)[:, 0, :] - self.mu  # (K, m)
        z = (self._x() - self.mu) / self.sigma**2  # (S, m)
        return d @ z.T - (d**2 / (2 * self.sigma**2)).sum(axis=1, keepdims=True)

    def ess_fraction(self, k: np.ndarray) -> np.ndarray:
        """(K,) ESS / S of the weights if the slopes' posterior were normal on the prior's
        scale with the draws' mean and variance: the weights are then log-normal and
        S / ESS = E[w^2] / E[w]^2 = exp(sum_j d_j^2 v_j / s_j^4), d_j the move of the prior
        mean, v_j the slope's posterior variance. Unlike the ESS computed from the weights
        themselves, it does not miss the large weights the draws did not reach."""
        v = self._x().var(axis=0)
        d = self._moved(k)[:, 0, :] - self.mu
        return np.exp(-np.sum(d**2 * v / self.sigma**4, axis=1))

    def grid(self, end: float, points: int) -> tuple:
        """The factors k from 1 to ``end`` (``points`` of them, evenly spaced in log k),
        their log weights (K, S), the weights scaled by each row's largest, their squares,
        :meth:`ess_fraction` and the Pareto k-hat of each row (computed when asked): what
        :func:`find_tippings` reads for one side, whatever the hits, computed once."""
        key = (float(end), int(points))
        if key not in self._grids:
            ks = np.exp(np.linspace(0.0, math.log(end), points))
            lw = self.log_weights(ks)
            w = np.exp(lw - lw.max(axis=1, keepdims=True))  # (K, S)
            self._grids[key] = (ks, lw, w, w**2, self.ess_fraction(ks), _khats(lw))
        return self._grids[key]

    def interval50(self) -> tuple[float, float]:
        """The prior's 50% interval of the (first) dose slope, as factors on its median."""
        mu, sd = float(self.mu[0]), float(self.sigma[0])
        if bool(self.lognormal[0]):
            return math.exp(-Z50 * sd), math.exp(Z50 * sd)
        if mu == 0:
            return 0.0, math.inf
        half = Z50 * sd / abs(mu)
        return max(1 - half, 0.0), 1 + half


@dataclass(frozen=True)
class Tipping:
    """Where a verdict flips on each side of k = 1.

    ``low``/``high``: the flip factor, or where the search ended without one;
    ``low_kind``/``high_kind``: ``flip``, ``none`` (no flip up to the end of
    :data:`K_RANGE`) or ``beyond`` (the effective sample size fell below the minimum
    there); ``ess_low``/``ess_high``: effective draws at that point; ``interval``: the
    prior's 50% interval as factors; ``fragile``: a flip inside it."""

    low: float
    low_kind: str
    high: float
    high_kind: str
    ess_low: float
    ess_high: float
    interval: tuple[float, float]

    @property
    def fragile(self) -> bool:
        lo, hi = self.interval
        return (self.low_kind == "flip" and self.low >= lo) or (
            self.high_kind == "flip" and self.high <= hi
        )

    def words(self, what: str = "holds") -> str:
        """The tipping point in a haematologist's words, e.g. 'holds unless the dose effect
        is less than 0.31x its prior median'."""
        parts, reach = [], []
        if self.low_kind == "flip":
            parts.append(f"less than {_x(self.low)}")
        if self.high_kind == "flip":
            parts.append(f"more than {_x(self.high)}")
        if parts:
            text = f"{what} unless the dose effect is {' or '.join(parts)} its prior median"
        else:
            text = (f"{what} for any dose effect from {_x(self.low)} to {_x(self.high)} its "
                    "prior median")  # fmt: skip
        if self.low_kind == "beyond":
            reach.append(f"below {_x(self.low)}")
        if self.high_kind == "beyond":
            reach.append(f"above {_x(self.high)}")
        if reach:
            text += (f"; {' and '.join(reach)} is beyond what reweighting can tell (too "
                     "few effective draws; a refit would tell)")  # fmt: skip
        if self.fragile:
            lo, hi = self.interval
            text = (f"fragile: flips within the prior's own 50% interval ({_x(lo)} to "
                    f"{_x(hi)} its median); {text}")  # fmt: skip
        return text

    def row(self, what: str = "holds") -> dict:
        """The columns of :data:`TIPPING_COLUMNS`."""
        return {"tipping_low": round(self.low, 4), "tipping_low_kind": self.low_kind,
                "tipping_high": round(self.high, 4), "tipping_high_kind": self.high_kind,
                "tipping_fragile": self.fragile, "tipping": self.words(what)}  # fmt: skip


def _x(k: float) -> str:
    return f"{k:.2g}x" if k < 10 else f"{k:.0f}x"


def ess(log_w: np.ndarray) -> np.ndarray:
    """Effective sample size of importance weights given as logs (last axis: draws)."""
    lw = log_w - log_w.max(axis=-1, keepdims=True)
    w = np.exp(lw)
    return w.sum(axis=-1) ** 2 / (w**2).sum(axis=-1)


def pareto_khat(log_w: np.ndarray) -> float:
    """The Pareto shape k-hat of the largest importance weights (PSIS: Vehtari, Simpson,
    Gelman, Yao and Gabry, JMLR 2024, "Pareto smoothed importance sampling"): the tail of
    M = min(S / 5, 3 sqrt(S)) weights fitted by a generalized Pareto distribution with
    the estimator of Zhang and Stephens (Technometrics 2009) and its weak prior, as
    ArviZ's ``psislw`` does. Above ~0.7 the reweighted estimates are unreliable, whatever
    the effective sample size computed from the weights says (it is optimistic when the
    largest weights were not drawn)."""
    lw = np.sort(np.asarray(log_w, float))
    n_tail = int(math.ceil(min(0.2 * lw.size, 3 * math.sqrt(lw.size))))
    if n_tail < 5:
        return math.inf
    top = lw[-1]
    x = np.exp(lw[-n_tail:] - top) - math.exp(lw[-n_tail - 1] - top)
    if not np.any(x > 0):
        return 0.0  # equal weights in the tail: nothing heavy
    x = x[x > 0] if np.count_nonzero(x > 0) >= 5 else x + 1e-300
    n = x.size
    m_est = 30 + int(math.sqrt(n))
    b = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1) - 0.5))
    b = b / (3 * x[int(n / 4 + 0.5) - 1]) + 1 / x[-1]
    k = np.log1p(-b[:, None] * x).mean(axis=1)
    len_scale = n * (np.log(-(b / k)) - k - 1)
    weights = 1 / np.exp(len_scale - len_scale[:, None]).sum(axis=1)
    b_post = float(np.sum(b * weights) / np.sum(weights))
    k_post = float(np.log1p(-b_post * x).mean())
    return (n * k_post + 10 * 0.5) / (n + 10)  # the weak prior on the shape


def _side(ks: np.ndarray, p: np.ndarray, e: np.ndarray, khat, threshold: float,
          min_ess: float) -> tuple[float, str, float]:  # fmt: skip
    """Walk from k = 1 (index 0) outward: the first crossing, or where the reweighting
    gives out (ESS below ``min_ess``, or ``khat(i)``, the Pareto k-hat at grid point i,
    above :data:`KHAT_MAX`: then the side ends at the last point before it)."""
    above0 = bool(p[0] > threshold)
    end, kind = ks.size - 1, "none"
    beyond = e[1:] < min_ess  # at grid point i + 1; before a flip at the same point
    stops = beyond | ((p[1:] > threshold) != above0)
    if stops.any():
        i = int(stops.argmax()) + 1  # the first point where the walk stops
        end, kind = (i - 1, "beyond") if beyond[i - 1] else (i, "flip")
    return _side_end(ks, p, e, khat, threshold, end, kind)


def _side_end(ks: np.ndarray, p: np.ndarray, e: np.ndarray, khat, threshold: float,
              end: int, kind: str) -> tuple[float, str, float]:  # fmt: skip
    """Where a side's walk stopped (grid point ``end``, ``kind`` none, beyond or flip):
    cut back to the last point whose k-hat is within :data:`KHAT_MAX`, or the crossing
    interpolated on log k."""
    if not khat(end) <= KHAT_MAX:  # k-hat grows with |log k|: the last point below it
        lo, hi = 0, end
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if khat(mid) <= KHAT_MAX else (lo, mid)
        return float(ks[lo]), "beyond", float(e[lo])
    if kind == "flip":
        a, b = p[end - 1] - threshold, p[end] - threshold
        t = a / (a - b) if a != b else 1.0
        lk = math.log(ks[end - 1]) + t * (math.log(ks[end]) - math.log(ks[end - 1]))
        return math.exp(lk), "flip", float(e[end])
    return float(ks[end]), kind, float(e[end])


def find_tippings(
    hits: np.ndarray,
    shift: Shift,
    threshold: float,
    *,
    mask: np.ndarray | None = None,
    k_range: tuple[float, float] = K_RANGE,
    min_ess: float = MIN_ESS,
) -> list[Tipping]:
    """:func:`find_tipping` for the R columns of ``hits`` (S, R) at once; ``mask`` (S, R):
    the draws where each column is defined (all by default)."""
    hits = np.asarray(hits, float)
    mask = np.ones_like(hits) if mask is None else np.asarray(mask, float)
    hits = np.where(mask > 0, hits, 0.0)
    sides = []
    for end in k_range:
        ks, _, w, w2, ess_fraction, khat = shift.grid(end, GRID)
        total = w @ mask
        with np.errstate(invalid="ignore", divide="ignore"):
            p = (w @ (hits * mask)) / total  # (K, R)
            e = total**2 / (w2 @ mask)
        # the smaller of the ESS of the weights and of their normal approximation
        e = np.minimum(e, ess_fraction[:, None] * mask.sum(axis=0)[None, :])
        e = np.nan_to_num(e)
        sides.append([_side(ks, p[:, j], e[:, j], khat, threshold, min_ess)
                      for j in range(hits.shape[1])])  # fmt: skip
    iv = shift.interval50()
    return [Tipping(lo, lk, hi, hk, el, eh, iv)
            for (lo, lk, el), (hi, hk, eh) in zip(*sides, strict=True)]  # fmt: skip


def _khats(lw: np.ndarray):
    """i -> the Pareto k-hat of the log weights ``lw[i]`` (0 at k = 1), computed once."""
    cache = {0: 0.0}

    def khat(i: int) -> float:
        if i not in cache:
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                cache[i] = pareto_khat(lw[i])
        return cache[i]

    return khat


def find_tipping(
    hits: np.ndarray,
    shift: Shift,
    threshold: float,
    *,
    k_range: tuple[float, float] = K_RANGE,
    min_ess: float = MIN_ESS,
) -> Tipping:
    """The factors on the dose-slope prior median at which the reweighted mean of ``hits``
    (one value per draw, 0/1 or 1/2 for a tie) crosses ``threshold``, on each side of
    k = 1 (the verdict is "above" when the mean exceeds it: for a limit, P(exceed) >
    max_probability, not acceptable)."""
    h = np.asarray(hits, float).reshape(-1, 1)
    return find_tippings(h, shift, threshold, k_range=k_range, min_ess=min_ess)[0]


def short_words(row) -> str:
    """A tipping point in a table cell, from the columns of :data:`TIPPING_COLUMNS` (a
    mapping or a row): 'holds 0.3x-3.3x', 'flips below 0.45x', 'FRAGILE: flips above 1.4x'
    (the factors on the prior median of the dose slope)."""
    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
    lo, lo_kind = float(get("tipping_low", 1.0)), str(get("tipping_low_kind", ""))
    hi, hi_kind = float(get("tipping_high", 1.0)), str(get("tipping_high_kind", ""))
    if lo_kind in ("identical", "not computed"):
        return lo_kind
    flips = [f"below {_x(lo)}"] * (lo_kind == "flip") + [f"above {_x(hi)}"] * (hi_kind == "flip")
    text = f"flips {' or '.join(flips)}" if flips else f"holds {_x(lo)}-{_x(hi)}"
    fragile = str(get("tipping_fragile", False)) in ("True", "true", "1")
    return f"FRAGILE: {text}" if fragile else text
