"""The preview's charts as inline SVG: drawn in a millisecond from the run's draws (a
matplotlib PNG of the same panels takes half a second), so the preview redraws within
about a second of a change. The full run's report keeps the matplotlib figures.

Each panel shows, per cycle, the posterior mean (line), the 50% and 90% central
intervals across draws (bands) and, when given, the reference schedule's mean (dashed)
on the same random numbers. Every point carries its value in ``data-value`` (tests and
screen readers read the numbers, not the pixels).
"""

from __future__ import annotations

from html import escape

import numpy as np

__all__ = ["dose_svg", "risk_svg"]

_W, _H = 250, 170  # one panel, in px
_L, _R, _T, _B = 44, 8, 22, 26  # margins
_MAIN, _REF = "#1f6fb4", "#c0392b"
_TITLES = {
    "flare": "Tumour flare",
    "flare_grade3plus": "Flare, grade >= 3",
    "tls": "TLS",
    "neutropenia": "Neutropenia, grade 3-4",
}


def _nice_top(top: float) -> float:
    """A round upper limit for a probability axis (1%, 2%, 5%, 10%, ... 100%)."""
    for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0):
        if top <= t:
            return t
    return float(np.ceil(top))


def _summary(a: np.ndarray) -> dict[str, np.ndarray]:
    """mean and the 5/25/75/95% quantiles over axis 0 (draws), ignoring NaN."""
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanquantile(a, (0.05, 0.25, 0.75, 0.95), axis=0)
            return {"mean": np.nanmean(a, axis=0), "q05": q[0], "q25": q[1], "q75": q[2],
                    "q95": q[3]}  # fmt: skip


def _panel(title: str, cycles: np.ndarray, main: dict, ref: dict | None, *, top: float,
           percent: bool, key: str, unit: str = "") -> str:  # fmt: skip
    n = len(cycles)
    pw, ph = _W - _L - _R, _H - _T - _B

    def x(i: float) -> float:
        return _L + (pw * (i / (n - 1)) if n > 1 else pw / 2)

    def y(v: float) -> float:
        v = 0.0 if not np.isfinite(v) else min(max(v, 0.0), top)
        return _T + ph * (1 - v / top)

    def poly(lo: np.ndarray, hi: np.ndarray) -> str:
        pts = [(x(i), y(hi[i])) for i in range(n)] + [(x(i), y(lo[i])) for i in reversed(range(n))]
        return " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)

    def line(v: np.ndarray) -> str:
        return " ".join(f"{x(i):.1f},{y(v[i]):.1f}" for i in range(n))

    fmt = (lambda v: f"{100 * v:g}%") if percent else (lambda v: f"{v:g}{unit}")
    parts = [f'<svg class="panel" data-key="{escape(key)}" width="{_W}" height="{_H}" '
             f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}">',
             f'<text x="{_L}" y="14" font-size="12" font-weight="600">{escape(title)}</text>']  # fmt: skip
    for frac in (0, 0.5, 1):
        yy = y(top * frac)
        parts.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>'
                     f'<text x="{_L - 4}" y="{yy + 4:.1f}" font-size="10" text-anchor="end">'
                     f"{fmt(round(top * frac, 6))}</text>")  # fmt: skip
    step = max(1, int(np.ceil(n / 6)))
    for i in range(0, n, step):
        parts.append(f'<text x="{x(i):.1f}" y="{_H - 10}" font-size="10" '
                     f'text-anchor="middle">{int(cycles[i])}</text>')  # fmt: skip
    parts.append(f'<text x="{_L + pw / 2:.1f}" y="{_H - 1}" font-size="10" '
                 'text-anchor="middle" fill="#555">cycle</text>')  # fmt: skip
    parts.append(f'<polygon points="{poly(main["q05"], main["q95"])}" fill="{_MAIN}" '
                 'fill-opacity="0.15"/>')  # fmt: skip
    parts.append(f'<polygon points="{poly(main["q25"], main["q75"])}" fill="{_MAIN}" '
                 'fill-opacity="0.25"/>')  # fmt: skip
    if ref is not None:
        parts.append(f'<polyline points="{line(ref["mean"])}" fill="none" stroke="{_REF}" '
                     'stroke-width="1.5" stroke-dasharray="4 3"/>')  # fmt: skip
    parts.append(f'<polyline points="{line(main["mean"])}" fill="none" stroke="{_MAIN}" '
                 'stroke-width="2"/>')  # fmt: skip
    for i in range(n):
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(main["mean"][i]):.1f}" r="2" '
                     f'fill="{_MAIN}" data-cycle="{int(cycles[i])}" '
                     f'data-value="{float(main["mean"][i]):.6g}"><title>cycle {int(cycles[i])}: '
                     f'{fmt(float(np.round(main["mean"][i], 4)))} (90%: '
                     f'{fmt(float(np.round(main["q05"][i], 4)))} to '
                     f'{fmt(float(np.round(main["q95"][i], 4)))})</title></circle>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def risk_svg(ds, var: str, ref=None) -> str:
    """One panel per event of ``var`` (``per_cycle`` or ``cumulative``) over cycles."""
    cycles = np.asarray(ds["cycle"].values)
    out = []
    for ev in ds["event"].values:
        a = ds[var].sel(event=ev).transpose("draw", "cycle").values
        main = _summary(a)
        r = None
        if ref is not None and len(ref["cycle"]) == len(cycles):
            r = _summary(ref[var].sel(event=ev).transpose("draw", "cycle").values)
        top = np.nanmax([np.nanmax(main["q95"]), np.nanmax(r["mean"]) if r else 0, 1e-4])
        out.append(_panel(_TITLES.get(str(ev), str(ev)), cycles, main, r,
                          top=_nice_top(float(top)), percent=True, key=f"{var}-{ev}"))  # fmt: skip
    return f'<div class="panels" id="svg-{var}">{"".join(out)}</div>'


def dose_svg(ds, ref=None) -> str:
    """Dose delivered: mean mg per day on drug days, and the share of patients stopped."""
    cycles = np.asarray(ds["cycle"].values)
    out = []
    for var, title, percent in (("dose_mean_mg", "Daily dose on drug days", False),
                                ("dose_intensity", "Dose intensity (mg/day of cycle)", False),
                                ("share_stopped", "Stopped (of all patients)", True)):  # fmt: skip
        a = ds[var].transpose("draw", "cycle").values
        main = _summary(a)
        r = None
        if ref is not None and len(ref["cycle"]) == len(cycles):
            r = _summary(ref[var].transpose("draw", "cycle").values)
        top = float(np.nanmax([np.nanmax(main["q95"]), np.nanmax(r["mean"]) if r else 0, 1e-4]))
        top = _nice_top(top) if percent else float(np.ceil(top / 5) * 5 or 5)
        out.append(_panel(title, cycles, main, r, top=top, percent=percent, key=var,
                          unit="" if percent else " mg"))  # fmt: skip
    return f'<div class="panels" id="svg-dose">{"".join(out)}</div>'
