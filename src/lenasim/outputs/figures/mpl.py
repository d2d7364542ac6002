"""The one module of outputs that imports matplotlib (and Pillow, which writes the PNGs):
on the first call of :func:`mpl`, from a figure function, so that importing the figure
modules, and a run without plots, loads neither."""

from __future__ import annotations

import functools
from types import SimpleNamespace

__all__ = ["mpl"]


@functools.cache
def mpl() -> SimpleNamespace:
    """The parts of matplotlib the figures use: ``Figure``, ``FigureCanvasAgg``,
    ``LineCollection``, ``MaxNLocator``, ``PercentFormatter``, ``rc_context``, and Pillow's
    ``Image``.

    matplotlib writes, for each of its Artist classes, the docstring of its ``set()``
    listing every property (``matplotlib.artist.kwdoc``: an inspection of all their
    docstrings), as its modules are imported: ~0.1 s of CPU of the ~0.4 s the import
    takes, for help texts lenasim never shows. They are left empty here, in a process
    that has not imported matplotlib's figure yet (the plot child of ``lenasim run``,
    :mod:`lenasim.pipeline.plots`; a command drawing figures); a process that has keeps
    its texts. What is drawn does not change.
    """
    import sys

    if "matplotlib.figure" not in sys.modules:
        from matplotlib import artist

        artist.kwdoc = _no_kwdoc
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter
    from PIL import Image

    return SimpleNamespace(Figure=Figure, FigureCanvasAgg=FigureCanvasAgg,
                           LineCollection=LineCollection, MaxNLocator=MaxNLocator,
                           PercentFormatter=PercentFormatter, rc_context=rc_context,
                           Image=Image)  # fmt: skip


def _no_kwdoc(artist) -> str:
    """The empty property list of an Artist's docstrings (see :func:`mpl`)."""
    return ""
