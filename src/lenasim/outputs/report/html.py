"""HTML from templates (Jinja2, as pandas' Styler and nbconvert render theirs): the
report templates live in ``lenasim/outputs/report/templates``; every value is escaped
(autoescape), a missing one is an error (StrictUndefined), PNGs are embedded as data
URIs, and nothing is loaded from the network."""

from __future__ import annotations

import base64
import functools
from typing import Any

from lenasim.outputs.tables.formats import interval, pct, signed_pp

__all__ = ["data_uri", "render"]


def data_uri(png: bytes | str) -> str:
    """A PNG as a data URI; a ``str`` is a placeholder put in its place now and replaced by
    the caller once the PNG exists (:func:`lenasim.outputs.report.page.later_images`)."""
    if isinstance(png, str):
        return png
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lenasim.outputs.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(pct=pct, data_uri=data_uri, signed_pp=signed_pp)
    env.globals.update(interval=interval)
    return env


def render(template: str, **context: Any) -> str:
    """Render one of the report templates with ``context``."""
    return _environment().get_template(template).render(**context)
