"""HTML from templates (Jinja2, as pandas' Styler and nbconvert render theirs): the
report templates live in ``lenasim/outputs/report/templates``; every value is escaped
(autoescape), a missing one is an error (StrictUndefined), PNGs are embedded as data
URIs, and nothing is loaded from the network.

Compiling the three templates of a run's report (Jinja2 source -> Python -> bytecode)
took ~0.04 s of CPU at every ``lenasim run``. Jinja2's own bytecode cache keeps the
compiled templates in a per-user cache folder (:func:`cache_dir`) and reuses them while
a template's source is unchanged (Jinja2 checks a checksum of the source, the Python
version and its own format); the environment's options and Jinja2's version are part of
the file names, so a change of either compiles afresh. When no cache folder can be
created or written, templates are compiled at every run, as before: the page is the same.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from lenasim.outputs.tables.formats import interval, pct, signed_pp

__all__ = ["cache_dir", "data_uri", "render"]

# The options of the report's environment: part of the cache files' names (the compiled
# code depends on them, the bytecode cache's check does not look at them).
_OPTIONS = {
    "autoescape": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
}


def data_uri(png: bytes | str) -> str:
    """A PNG as a data URI; a ``str`` is a placeholder put in its place now and replaced by
    the caller once the PNG exists (:func:`lenasim.outputs.report.page.later_images`)."""
    if isinstance(png, str):
        return png
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def cache_dir() -> Path | None:
    """The folder of the compiled templates: ``$LENASIM_CACHE_DIR/templates`` if that
    variable is set (empty: no cache), else ``$XDG_CACHE_HOME/lenasim/templates``
    (``~/.cache/lenasim/templates`` by default). None when it cannot be created or is not
    writable: the templates are then compiled at every run."""
    own = os.environ.get("LENASIM_CACHE_DIR")
    if own is not None:
        if not own:
            return None
        folder = Path(own) / "templates"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = Path(base) / "lenasim" / "templates"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: code is loaded from it
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


def _bytecode_cache(jinja2):
    """Jinja2's FileSystemBytecodeCache in :func:`cache_dir` (None without one); a file it
    cannot read or write is not an error: that template is compiled (again)."""
    folder = cache_dir()
    if folder is None:
        return None

    class _Cache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # noqa: BLE001 - a damaged file: compiled again
                bucket.reset()

        def dump_bytecode(self, bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    key = hashlib.sha1(repr((jinja2.__version__, sorted(_OPTIONS.items()))).encode())
    return _Cache(str(folder), f"lenasim-{key.hexdigest()[:12]}-%s.cache")


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lenasim.outputs.report", "templates"),
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_bytecode_cache(jinja2),
        **_OPTIONS,
    )
    env.filters.update(pct=pct, data_uri=data_uri, signed_pp=signed_pp)
    env.globals.update(interval=interval)
    return env


def render(template: str, **context: Any) -> str:
    """Render one of the report templates with ``context``."""
    return _environment().get_template(template).render(**context)
