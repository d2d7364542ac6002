"""What is drawn in the panels of lenasim's figures: an event's posterior mean, median and
credible bands over cycles (:func:`draw_event`, one panel per event in
:func:`event_panels`) and a dose measure's line (:func:`dose_panel`). The layout they sit
in is :mod:`lenasim.outputs.figures.layout`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lenasim.core.vocabulary import TITLES, event_title
from lenasim.outputs.figures import layout

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "EVENT_TITLES",
    "anchor_zero",
    "dataset_events",
    "dose_panel",
    "draw_event",
    "event_figsize",
    "event_panels",
    "label_event_axes",
]

EVENT_TITLES = TITLES  # the vocabulary's titles (lenasim.core.vocabulary)

_VAR_LABEL = {
    "per_cycle": "Probability in the cycle (%)",
    "cumulative": "Cumulative incidence (%)",
}


def anchor_zero(ax: Axes, x: float, artist: Any) -> None:
    """Make y autoscaling include 0 and never go below it, without freezing the limits.

    (``set_ylim(bottom=0)`` would switch autoscaling off, so scenarios overlaid later
    would be clipped.)
    """
    ax.update_datalim([(x, 0.0)])
    artist.sticky_edges.y.append(0.0)
    ax.autoscale_view()


def _draw_summary(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and quantiles over the first (draw) axis, ignoring NaN."""
    has_nan = np.isnan(values).any()  # nanquantile is four times slower than quantile
    with warnings.catch_warnings():  # a cycle nobody reaches in any draw stays NaN: a gap
        warnings.simplefilter("ignore", RuntimeWarning)
        q = (np.nanquantile if has_nan else np.quantile)(values, [0.05, 0.25, 0.5, 0.75, 0.95],
                                                         axis=0)  # fmt: skip
        mean = np.nanmean(values, axis=0) if has_nan else values.mean(axis=0)
    return {
        "mean": mean,
        "q05": q[0],
        "q25": q[1],
        "q50": q[2],
        "q75": q[3],
        "q95": q[4],
    }


def _values(da: xr.DataArray) -> np.ndarray:
    """(draw, cycle) values of one variable for one event, draws first."""
    return np.asarray(da.transpose("draw", ...).values, dtype=float)


def draw_event(
    ax: Axes,
    ds: xr.Dataset,
    event: str,
    var: str,
    *,
    color: str,
    label: str | None,
    bands: Sequence[float],
    offset: float,
) -> None:
    """The data of :func:`lenasim.outputs.figures.run.plot_event`: one filled band per interval width and the mean line."""
    cycles = np.asarray(ds["cycle"].values)
    s = _draw_summary(_values(ds[var].sel(event=event)))
    x = cycles + offset
    alphas = {0.5: 0.35, 0.9: 0.15}
    for width in sorted(bands, reverse=True):
        lo_key, hi_key = {0.5: ("q25", "q75"), 0.9: ("q05", "q95")}[round(width, 2)]
        if label is not None:  # overlaid scenarios: band edges, so overlaps do not turn grey
            _band_edges(ax, x, s[lo_key], s[hi_key], color)
            continue
        ax.fill_between(
            x,
            s[lo_key],
            s[hi_key],
            color=color,
            alpha=alphas[round(width, 2)],
            linewidth=0,
            step=None,
            label=f"{int(width * 100)}% interval",
        )
    if label is None:  # one scenario: the median beside the mean (risks are skewed)
        ax.plot(x, s["q50"], color=color, linestyle="--", linewidth=1.2,
                label="Posterior median")  # fmt: skip
    (line,) = ax.plot(
        x,
        s["mean"],
        color=color,
        marker="o",
        markersize=3.5,
        linewidth=1.8,
        label=label if label is not None else "Posterior mean",
    )
    anchor_zero(ax, float(x[0]), line)


def _band_edges(ax: Axes, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, color: str) -> None:
    """A scenario's interval as its two edges (dotted, in its colour): overlaid scenarios'
    bands stay readable where they overlap, which translucent fills (blended to grey) do
    not."""
    for edge in (lo, hi):
        ax.plot(x, edge, color=color, linestyle=":", linewidth=1.3)


def label_event_axes(
    ax: Axes, event: str, var: str, cycles: np.ndarray, labelled: bool = True
) -> np.ndarray:
    layout.panel_title(ax, event_title(event))
    ax.set_ylabel(_VAR_LABEL.get(var, var))
    layout.percent_axis(ax)
    return layout.style_cycle_axis(ax, cycles, labelled)


def dataset_events(ds: xr.Dataset) -> list[str]:
    known = [e for e in EVENT_TITLES if e in ds["event"].values]
    others = [str(e) for e in ds["event"].values if str(e) not in EVENT_TITLES]
    return known + others


def event_figsize(n_events: int) -> tuple[float, float]:
    """The size of :func:`event_panels`' figure for ``n_events`` panels (two per row)."""
    return (10.0, 0.3 + 3.2 * int(np.ceil(n_events / 2)))


def event_panels(
    runs: Mapping[str, xr.Dataset],
    var: str,
    colors: Mapping[str, str] | None,
    axes: Any,
    title: str,
) -> Figure:
    names = list(runs)
    colors = dict(colors or layout.scenario_colors(names))
    first = runs[names[0]]
    events = dataset_events(first)
    fig, flat = layout.axes_grid(axes, len(events), 2, event_figsize(len(events)),
                                 layout.SHARED_X_MARGINS)  # fmt: skip
    single = len(names) == 1
    n = len(names)
    for ax, event in zip(flat, events, strict=True):
        for i, name in enumerate(names):
            ds = runs[name]
            if event not in ds["event"].values:
                continue
            draw_event(
                ax,
                ds,
                event,
                var,
                color=colors[name],
                label=None if single else name,
                bands=(0.5, 0.9) if single else (0.9,),
                offset=0.0 if single else (i - (n - 1) / 2) * 0.08,
            )
    all_cycles = np.unique(np.concatenate([np.asarray(r["cycle"].values) for r in runs.values()]))
    own = axes is None
    for i, (ax, event) in enumerate(zip(flat, events, strict=True)):
        xgrid = label_event_axes(
            ax, event, var, all_cycles, layout.shows_cycle_axis(i, len(flat), 2, own)
        )
        layout.finish_panel(ax, own, xgrid, as_text=own)
    flat[0].legend(loc="best", fontsize=8, frameon=False)
    if axes is None:
        layout.figure_title(fig, title)
    return fig


def dose_panel(
    ax: Axes,
    ds: xr.Dataset,
    var: str,
    color: str,
    label: str,
    band: bool,
    linestyle: str = "-",
    offset: float = 0.0,
    edges: bool = False,
) -> None:
    """One dose variable's mean line, with its 90% interval as a band (one run) or as its
    dotted edges (``edges``: overlaid runs, whose translucent bands would blend)."""
    if var not in ds:
        return
    cycles = np.asarray(ds["cycle"].values) + offset
    s = _draw_summary(_values(ds[var]))
    if band and edges:
        _band_edges(ax, cycles, s["q05"], s["q95"], color)
    elif band:
        ax.fill_between(cycles, s["q05"], s["q95"], color=color, alpha=0.15, linewidth=0)
    (line,) = ax.plot(
        cycles,
        s["mean"],
        color=color,
        marker="o",
        markersize=3.5,
        linewidth=1.8,
        linestyle=linestyle,
        label=label,
    )
    anchor_zero(ax, float(cycles[0]), line)
