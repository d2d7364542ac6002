"""HTML from templates (Jinja2, as pandas' Styler and nbconvert render theirs): the
report templates live in ``lenasim/outputs/templates``; every value is escaped
(autoescape), a missing one is an error (StrictUndefined), PNGs are embedded as data
URIs, and nothing is loaded from the network."""

from __future__ import annotations

import base64
import functools
import math
from typing import Any

__all__ = ["data_uri", "interval", "pct", "render"]


def pct(x: Any, digits: int = 1) -> str:
    """A fraction as a percent ('12.3%'), '-' when missing."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(v) else f"{100 * v:.{digits}f}%"


def interval(mean: Any, lo: Any, hi: Any, digits: int = 1) -> str:
    """'12.3% (4.5% to 20.1%)'."""
    return f"{pct(mean, digits)} ({pct(lo, digits)} to {pct(hi, digits)})"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lenasim.outputs", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(pct=pct, data_uri=data_uri)
    env.globals.update(interval=interval)
    return env


def render(template: str, **context: Any) -> str:
    """Render one of the report templates with ``context``."""
    return _environment().get_template(template).render(**context)
