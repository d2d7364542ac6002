"""Numbers as a reader sees them, in every table, page and terminal line: percents
(never '-0.0%'), differences in percentage points, intervals, skewed risks (median and
mean) and ratios."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["interval", "pct", "ratio", "signed_pp", "skewed"]


def pct(x: Any, digits: int = 1) -> str:
    """A fraction as a percent ('12.3%'), '-' when missing. Never '-0.0%': a value that
    rounds to zero is '0%' when it is zero and '<0.1%' (at ``digits``) when it is not."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(v):
        return "-"
    step = 0.5 * 10.0**-digits
    if abs(100 * v) < step:
        if v == 0 or abs(100 * v) < 1e-9:
            return "0%"
        tiny = f"{10.0**-digits:.{digits}f}%"
        return f"<{tiny}" if v > 0 else f"-<{tiny}"
    return f"{100 * v:.{digits}f}%"


def signed_pp(x: Any, digits: int = 1) -> str:
    """A difference of two probabilities in percentage points ('+1.2', '-0.3', '0.0'),
    never '-0.0'."""
    try:
        v = 100 * float(x)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(v):
        return "-"
    text = f"{v:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def interval(mean: Any, lo: Any, hi: Any, digits: int = 1) -> str:
    """'12.3% (4.5% to 20.1%)'."""
    return f"{pct(mean, digits)} ({pct(lo, digits)} to {pct(hi, digits)})"


def skewed(median: Any, mean: Any, lo: Any, hi: Any, digits: int = 1) -> str:
    """A risk whose draws may be skewed: 'median 1.2%, mean 5.3% (90%: 0.2% to 61.8%)'."""
    return (f"median {pct(median, digits)}, mean {pct(mean, digits)} "
            f"(90%: {pct(lo, digits)} to {pct(hi, digits)})")  # fmt: skip


def ratio(median: Any, lo: Any, hi: Any, cap: float = 100.0) -> str:
    """A ratio of risks: '2.9 (1.3 to 8.1)'; bounds beyond ``cap`` (or below 1/cap) are
    written '>100' ('<0.01'): a ratio of two small probabilities is unstable there."""

    def one(v: Any) -> str:
        try:
            v = float(v)
        except (TypeError, ValueError):
            return "-"
        if not math.isfinite(v):
            return "-"
        if v > cap:
            return f">{cap:g}"
        if v < 1 / cap:
            return f"<{1 / cap:g}"
        return f"{v:.2g}" if v < 1 else f"{v:.1f}" if v < 10 else f"{v:.0f}"

    return f"{one(median)} ({one(lo)} to {one(hi)})"
