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
    ``Image``."""
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
