"""The layout of lenasim's figures (:mod:`lenasim.outputs.figures.run` for one run,
:mod:`lenasim.outputs.figures.compare` for comparisons): colours, fixed margins, panel
grids, titles, axes, grid lines, and the PNG writer. What is drawn in a panel is
:mod:`lenasim.outputs.figures.panels`.

Plot functions take data (an ``xarray.Dataset`` of run draws, a mapping of scenario
name to such datasets, or a comparison table) plus ``ax=None`` / ``axes=None``, and
return the :class:`matplotlib.figure.Figure`. Matplotlib is loaded by
:func:`lenasim.outputs.figures.mpl.mpl` on the first figure (the one place of outputs
that imports it) and figures are built without pyplot (no global figure registry, no GUI
backend: saving uses the Agg canvas), so importing these modules is cheap and plotting
from a worker or a test leaves no state behind.

Figures made here are laid out by fixed margins (no layout engine), with limits, ticks
and grid fixed once their data is drawn, and only the ticks that are drawn built: with
matplotlib 3.11 a tick takes about 1 ms to build and a label about 1 ms to draw, most of
what plotting costs now. Axes a caller passes keep matplotlib's autoscaling and grid.

Probabilities are stored as fractions and shown as percent; differences between
scenarios are shown in percentage points. Every event has its own panel and its own
y scale: TLS and grade >= 3 flare (a few per cent) are never drawn on the scale of
flare or neutropenia (tens of per cent).
"""

from __future__ import annotations

import gc
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenasim.outputs.figures.mpl import mpl

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Okabe-Ito, colour-blind safe, without the yellow that vanishes on white.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]


def scenario_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per scenario, by position: the reference (first) is always blue.

    Pass the same ordered names to every figure of a comparison so a scenario keeps
    its colour across them.
    """
    out: dict[str, str] = {}
    for name in names:
        if name not in out:
            out[name] = PALETTE[len(out) % len(PALETTE)]
    return out


@dataclass(frozen=True)
class Margins:
    """Fixed figure margins and gaps between panels, in inches.

    Figures are laid out by arithmetic instead of a layout engine: constrained layout
    measured every tick label several times per figure and took half the plotting
    time. The margins hold the text around a panel at the font sizes used here:
    ``left`` the y tick labels and y label, ``top`` the figure title and a panel
    title, ``bottom`` the x tick labels and x label, ``wgap`` the next panel's y tick
    labels and y label, ``hgap`` an x axis (tick labels and label) plus the next row's
    title. They do not adapt to text: a much longer label would be cut off.
    """

    left: float = 0.8
    right: float = 0.25
    top: float = 0.62
    bottom: float = 0.55
    wgap: float = 0.85
    hgap: float = 0.85


PANEL_MARGINS = Margins()
# Rows of panels over the same cycles: only the bottom panel of a column shows the
# cycle axis, so a row gap holds a title only.
SHARED_X_MARGINS = Margins(hgap=0.45)
# Forest plot: row labels ("By end of cycle 12") at the left, "P=0.93" at the right of
# each panel, the legend of scenarios under the panels.
FOREST_MARGINS = Margins(left=1.45, right=0.55, bottom=0.85, wgap=2.0)
# One panel without a figure title.
SINGLE_MARGINS = Margins(top=0.4)


# Figures built ahead of use by prepare_figure, by new_figure's arguments.
_PREPARED: dict[tuple, list[tuple[Figure, np.ndarray]]] = {}


def prepare_figure(
    nrows: int, ncols: int, figsize: tuple[float, float], margins: Margins = PANEL_MARGINS
) -> None:
    """Build now the empty figure that :func:`new_figure` with these arguments will return
    next: the plot child of ``lenasim run`` (:mod:`lenasim.pipeline.plots`) builds its
    figures' panels (~0.02 s of CPU each) before the run's data comes. The same figure
    either way: it is built by the same code."""
    key = (nrows, ncols, tuple(figsize), margins)
    _PREPARED.setdefault(key, []).append(_build_figure(nrows, ncols, figsize, margins))


def prepare_grid(n: int, ncols: int, figsize: tuple[float, float],
                 margins: Margins = PANEL_MARGINS) -> None:  # fmt: skip
    """:func:`prepare_figure` for the figure :func:`axes_grid` makes for n panels."""
    prepare_figure(int(np.ceil(n / ncols)), ncols, figsize, margins)


def new_figure(
    nrows: int, ncols: int, figsize: tuple[float, float], margins: Margins = PANEL_MARGINS
) -> tuple[Figure, np.ndarray]:
    """A figure (no pyplot, no layout engine) with an nrows x ncols grid of panels (one
    built ahead by :func:`prepare_figure` if there is one)."""
    prepared = _PREPARED.get((nrows, ncols, tuple(figsize), margins))
    if prepared:
        return prepared.pop()
    return _build_figure(nrows, ncols, figsize, margins)


def _build_figure(
    nrows: int, ncols: int, figsize: tuple[float, float], margins: Margins
) -> tuple[Figure, np.ndarray]:
    w, h = figsize
    m = margins
    panel_w = (w - m.left - m.right - (ncols - 1) * m.wgap) / ncols
    panel_h = (h - m.top - m.bottom - (nrows - 1) * m.hgap) / nrows
    if panel_w <= 0 or panel_h <= 0:
        raise ValueError(f"figure {w} x {h} in is too small for {nrows} x {ncols} panels")
    fig = mpl().Figure(figsize=figsize)
    axes = fig.subplots(
        nrows,
        ncols,
        squeeze=False,
        gridspec_kw={
            "left": m.left / w,
            "right": 1 - m.right / w,
            "bottom": m.bottom / h,
            "top": 1 - m.top / h,
            "wspace": m.wgap / panel_w,
            "hspace": m.hgap / panel_h,
        },
    )
    return fig, axes


def figure_title(fig: Figure, text: str, fontsize: float = 12) -> None:
    """Figure title a fixed distance below the top edge, whatever the figure height."""
    fig.suptitle(text, fontsize=fontsize, y=1 - 0.08 / fig.get_figheight(), va="top")


def panel_title(ax: Axes, text: str) -> None:
    """Panel title. A fixed position (y=1) skips matplotlib's search for top tick labels."""
    ax.set_title(text, fontsize=11, y=1.0)


def axes_grid(
    axes: Any, n: int, ncols: int, figsize: tuple[float, float], margins: Margins = PANEL_MARGINS
) -> tuple[Figure, list[Axes]]:
    """Use the caller's axes (a sequence of at least n) or make a grid of n panels."""
    if axes is not None:
        flat = list(np.ravel(np.asarray(axes, dtype=object)))
        if len(flat) < n:
            raise ValueError(f"need {n} axes, got {len(flat)}")
        return flat[0].figure, flat[:n]
    nrows = int(np.ceil(n / ncols))
    fig, grid = new_figure(nrows, ncols, figsize, margins)
    flat = list(grid.ravel())
    for extra in flat[n:]:
        extra.set_visible(False)
    return fig, flat[:n]


def style_cycle_axis(ax: Axes, cycles: np.ndarray, labelled: bool = True) -> np.ndarray:
    """Cycle on x: integer ticks, at most 12, only inside the view. Returns the tick positions.

    ``labelled=False`` is for a panel with another one below it over the same cycles:
    no tick labels and no axis label (the lower panel shows them), and no ticks built.
    """
    m = mpl()
    ticks = np.asarray(cycles[:0], dtype=float)
    if len(cycles):
        lo, hi = float(cycles.min()) - 0.3, float(cycles.max()) + 0.3
        ticks = m.MaxNLocator(integer=True, nbins=min(len(cycles), 12)).tick_values(lo, hi)
        ticks = ticks[(ticks >= lo) & (ticks <= hi)]
        ax.set_xlim(lo, hi)
    # (set_xticks would build the ticks now; a frozen panel never builds them)
    ax.xaxis.set_major_locator(m.FixedLocator(ticks if labelled else []))
    ax.set_xlabel("Cycle" if labelled else "")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ticks


def shows_cycle_axis(i: int, n: int, ncols: int, own: bool) -> bool:
    """Whether panel i of n (row-major, ncols per row) shows its cycle axis.

    In a figure this module made, only the lowest panel of each column does; axes a
    caller passes all do.
    """
    return not own or i + ncols >= n


_GRID = {"color": "0.9", "linewidth": 0.8}


def finish_panel(ax: Axes, freeze: bool, xgrid: np.ndarray, as_text: bool = False) -> None:
    """Grid lines (vertical at ``xgrid``) and, for ``freeze``, fixed y limits and ticks;
    ``as_text`` (with ``freeze``, for a panel its caller will not change any more): its
    tick and axis labels drawn as plain texts (:func:`axes_as_text`).

    ``freeze`` is for panels of a figure this module made, once all their data is
    drawn: the y limits and ticks are fixed at what autoscaling gives, so drawing runs
    no tick search and builds no tick outside the view, and the grid is two line
    collections instead of one line per tick. Axes a caller passes keep autoscaling
    and matplotlib's own grid, so data drawn on them later is not clipped.
    """
    if not freeze:
        ax.grid(True, **_GRID)
        ax.set_axisbelow(True)
        return
    m = mpl()
    lo, hi = ax.get_ylim()
    if lo < 0 <= ax.dataLim.y0:
        lo = 0.0  # all-zero data is centred on 0 by autoscaling: no negative shares
    locs = ax.yaxis.get_major_locator().tick_values(lo, hi)
    eps = 1e-9 * (hi - lo)
    yticks = locs[(locs >= lo - eps) & (locs <= hi + eps)]
    ax.yaxis.set_major_locator(m.FixedLocator(yticks))
    ax.set_ylim(lo, hi)
    if isinstance(ax.yaxis.get_major_formatter(), m.PercentFormatter):
        # as few decimals as the ticks need ("0.5%", not "0.50%"), the same on every tick
        pct = 100 * yticks
        decimals = next((d for d in range(4) if np.allclose(np.round(pct, d), pct, atol=1e-9)), 3)
        ax.yaxis.set_major_formatter(m.PercentFormatter(xmax=1, decimals=decimals))
    if not (as_text and axes_as_text(ax)):
        ax.tick_params(left=False, bottom=False)  # the grid marks the ticks
    for ticks, transform, to_segment in (
        (xgrid, ax.get_xaxis_transform(), lambda v: ((v, 0), (v, 1))),
        (yticks, ax.get_yaxis_transform(), lambda v: ((0, v), (1, v))),
    ):
        ax.add_collection(
            m.LineCollection(
                [to_segment(v) for v in ticks],
                colors=_GRID["color"],
                linewidths=_GRID["linewidth"],
                transform=transform,
                zorder=0.5,
                gid="grid",
            ),
            autolim=False,
        )


def axes_as_text(ax: Axes) -> bool:
    """Draw ``ax``'s tick labels and axis labels as plain texts where matplotlib puts them,
    and hide its two axes (their ticks are then never built, nor their labels measured).

    For a frozen panel (:func:`finish_panel`, whose grid marks the ticks: no tick line is
    drawn) once its ticks, limits and labels are final: ticks or labels set later are
    not drawn (the axes are hidden). Matplotlib builds each tick as five artists (~2 ms
    of CPU), measures every tick label twice to place the axis label beside them, and
    draws it once; a text is built and drawn once. The tick labels are the formatters'
    texts at the locators' positions, placed by the axes' own transforms
    (``get_xaxis_text1_transform``: the padding of matplotlib's ticks); an axis label sits
    ``labelpad`` beyond them, their width (y) or height (x) measured from the font. The
    positions stay readable from the axes (``get_xticks``, ``get_yticks``, the labels
    from ``get_xlabel``...), and the drawn texts carry the gids ``xticklabel``,
    ``yticklabel``, ``xlabel``, ``ylabel``.

    An axis whose formatter shows an offset ("1e3"), or mathtext, keeps matplotlib's
    drawing: nothing is changed then, and False returned.
    """
    m = mpl()
    rc = m.rcParams
    axes = []
    for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
        locs = axis.get_majorticklocs()
        formatter = axis.get_major_formatter()
        labels = formatter.format_ticks(locs) if len(locs) else []
        if formatter.get_offset() or any("$" in label for label in labels):
            return False
        out = {"in": 0.0, "out": 1.0, "inout": 0.5}.get(rc[f"{name}tick.direction"], 1.0)
        pad = rc[f"{name}tick.major.pad"] + out * rc[f"{name}tick.major.size"]  # points
        axes.append((axis, name, locs, labels, pad, rc[f"{name}tick.labelsize"]))
    inches = ax.figure.dpi_scale_trans
    for axis, name, locs, labels, pad, size in axes:
        transform, va, ha = (ax.get_xaxis_text1_transform if name == "x"
                             else ax.get_yaxis_text1_transform)(pad)  # fmt: skip
        for v, label in zip(locs, labels, strict=True):
            xy = (v, 0) if name == "x" else (0, v)
            ax.text(*xy, label, transform=transform, va=va, ha=ha, fontsize=size,
                    gid=f"{name}ticklabel")  # fmt: skip
        text = axis.label.get_text()
        if text:
            prop = m.FontProperties(size=size)
            if name == "x":  # the height of a line of tick labels
                extent = m.text_to_path.get_text_width_height_descent("lp", prop, False)[1]
            else:
                widths = [m.text_to_path.get_text_width_height_descent(s, prop, False)[0]
                          for s in labels]  # fmt: skip
                extent = max(widths, default=0.0)
            away = ((pad + extent) if len(labels) else 0.0) + axis.labelpad
            shift = (0, -away / 72) if name == "x" else (-away / 72, 0)
            label = ax.text(0.5 if name == "x" else 0, 0.5 if name == "y" else 0, text,
                            gid=f"{name}label")  # fmt: skip
            label.update_from(axis.label)
            label.set(transform=ax.transAxes + m.ScaledTranslation(*shift, inches),
                      rotation_mode=axis.label.get_rotation_mode())  # fmt: skip
        axis.set_visible(False)
    return True


def percent_axis(ax: Axes, axis: str = "y") -> None:
    """Fractions shown as percent; decimals follow the visible range (set lazily)."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(
        mpl().PercentFormatter(xmax=1, decimals=None)
    )


_DPI = 130


def save_png(fig: Figure, path: Path) -> Path:
    """Write the figure as an opaque RGB PNG (:func:`png_bytes`).

    ``savefig`` writes RGBA at zlib level 6; the figures are opaque white, and RGB at
    level 3 encodes in half the time into a file about 10% smaller. Text is drawn
    without font hinting: at 130 dpi it looks the same and draws a quarter faster
    (text is most of the drawing time).
    """
    m = mpl()
    fig.set_dpi(_DPI)
    canvas = m.FigureCanvasAgg(fig)
    with m.rc_context({"text.hinting": "no_hinting"}):
        canvas.draw()
    Path(path).write_bytes(png_bytes(np.asarray(canvas.buffer_rgba()), dpi=_DPI))
    return path


def png_bytes(rgba: np.ndarray, dpi: float | None = None) -> bytes:
    """An (height, width, 4) uint8 RGBA image of an opaque figure as an RGB PNG: alpha
    left out, rows unfiltered (PNG filter type 0), zlib level 3; with ``dpi``, the
    resolution in a pHYs chunk (pixels per metre, as Pillow writes it for ``savefig``), so
    that a figure prints at its size (a viewer without it assumes 72 dpi).

    Pillow's PNG encoder chooses a filter for every row (~18 ms of CPU of its ~27 ms per
    run figure, at any zlib level); unfiltered rows compress as well here, the figures
    being mostly flat colour (files within 2%), in ~10 ms. No text chunks: the file holds
    the pixels and their resolution alone, the same bytes on every machine with the same
    zlib.
    """
    h, w = rgba.shape[:2]
    rows = np.empty((h, 1 + 3 * w), dtype=np.uint8)
    rows[:, 0] = 0  # each row's filter type: none
    pixels = rows[:, 1:].reshape(h, w, 3)  # a view (splits the contiguous last axis)
    pixels[...] = rgba[:, :, :3]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8 bits, RGB, deflate, no interlace
    per_metre = int(dpi / 0.0254 + 0.5) if dpi else 0  # Pillow's rounding
    phys = chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)) if dpi else b""
    return b"".join((b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), phys,
                     chunk(b"IDAT", zlib.compress(rows, 3)), chunk(b"IEND", b"")))  # fmt: skip


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while figures are built and drawn.

    Matplotlib allocates some 10^5 objects per figure, which sets off full
    collections; each walks everything the process holds (posterior, draws) and took
    0.1 s of a 1 s plotting step in ``lenasim run``, to free nothing (the figures are
    still in use). The previous state is restored on exit.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
