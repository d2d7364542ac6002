"""The figures of one run (per-cycle risk, cumulative incidence, dose delivered); the
comparison figures are in :mod:`lenasim.outputs.figures.compare`, the layout in
:mod:`lenasim.outputs.figures.layout` (which says how figures are built) and what the
panels draw in :mod:`lenasim.outputs.figures.panels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenasim.core.vocabulary import OUTPUT_EVENTS
from lenasim.outputs.figures import layout, panels

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "SCENARIO_PNGS",
    "plot_cumulative",
    "plot_dose",
    "plot_event",
    "plot_per_cycle",
    "prepare_scenario_plots",
    "scenario_plots",
]

# File names written by scenario_plots (the run report embeds them).
SCENARIO_PNGS = ("per_cycle.png", "cumulative.png", "dose.png")
_DOSE_FIGSIZE = (13.0, 3.8)


def plot_event(
    ds: xr.Dataset,
    event: str,
    var: str = "per_cycle",
    ax: Axes | None = None,
    *,
    color: str = layout.PALETTE[0],
    label: str | None = None,
    bands: Sequence[float] = (0.5, 0.9),
    offset: float = 0.0,
) -> Figure:
    """One event over cycles: posterior mean line with central credible bands.

    Parameters
    ----------
    ds : run draws (``per_cycle`` or ``cumulative`` with dims draw, event, cycle).
    event : event coordinate, e.g. ``"neutropenia"``.
    var : ``"per_cycle"`` or ``"cumulative"``.
    bands : central interval widths to shade (0.5 and 0.9 by default).
    offset : horizontal shift in cycles, to keep overlaid scenarios apart.
    """
    own = ax is None
    if own:
        fig, grid = layout.new_figure(1, 1, (5.0, 3.6), layout.SINGLE_MARGINS)
        ax = grid[0, 0]
    panels.draw_event(ax, ds, event, var, color=color, label=label, bands=bands, offset=offset)
    xgrid = panels.label_event_axes(ax, event, var, np.asarray(ds["cycle"].values))
    layout.finish_panel(ax, own, xgrid, as_text=own)
    return ax.figure


def _one_run_panels(ds: xr.Dataset, var: str, what: str, axes: Any) -> Figure:
    """One panel per event of ``var``, titled with the run's name and ``what``."""
    name = str(ds.attrs.get("scenario", "scenario"))
    return panels.event_panels({name: ds}, var, None, axes, f"{name}: {what}")


def plot_per_cycle(ds: xr.Dataset, axes: Any = None) -> Figure:
    """Per-cycle probability of each event, one panel per event, with 50% and 90% bands."""
    what = "probability of the event in each cycle (patients starting it)"
    return _one_run_panels(ds, "per_cycle", what, axes)


def plot_cumulative(ds: xr.Dataset, axes: Any = None) -> Figure:
    """Cumulative incidence (at least one event by the end of each cycle), with bands."""
    what = "cumulative incidence (at least one event by the end of each cycle)"
    return _one_run_panels(ds, "cumulative", what, axes)


def plot_dose(ds: xr.Dataset, axes: Any = None) -> Figure:
    """Dose delivered per cycle: mean dose, intensity against the plan, and dose changes."""
    fig, flat = layout.axes_grid(axes, 3, 3, _DOSE_FIGSIZE)
    cycles = np.asarray(ds["cycle"].values)
    ax_dose, ax_int, ax_share = flat
    panels.dose_panel(ax_dose, ds, "dose_mean_mg", layout.PALETTE[0], "Mean (90% interval)", True)
    layout.panel_title(ax_dose, "Daily dose on the days on drug")
    ax_dose.set_ylabel("Dose (mg/day on drug days)")

    panels.dose_panel(
        ax_int, ds, "dose_intensity", layout.PALETTE[0], "Delivered (90% interval)", True
    )
    if "planned_intensity" in ds:
        ax_int.plot(
            cycles,
            np.asarray(ds["planned_intensity"].values, dtype=float),
            color="0.35",
            linestyle="--",
            marker="s",
            markersize=3,
            linewidth=1.3,
            label="Planned",
        )
    layout.panel_title(ax_int, "Dose intensity against the plan")
    ax_int.set_ylabel("Dose intensity (mg/day over the cycle)")

    never = []
    for var, color, label in (
        ("share_at_target", layout.PALETTE[2], "At target dose"),
        ("share_held", layout.PALETTE[4], "Held or reduced in the cycle"),
        ("share_reduced", layout.PALETTE[3], "Reduced one level after it"),
        ("share_stopped", layout.PALETTE[1], "Stopped (of all patients)"),
    ):
        if var in ds and axes is None and not np.nanmax(np.abs(ds[var].values)) > 0:
            never.append(var.removeprefix("share_").replace("_", " "))  # said, not drawn at 0
            continue
        panels.dose_panel(ax_share, ds, var, color, label, False)
    if never:
        ax_share.plot([], [], " ", label=f"None {' or '.join(never)}")
    layout.panel_title(ax_share, "Dose changes (of patients starting the cycle)")
    ax_share.set_ylabel("Share of patients (%)")
    ax_share.set_ylim(0, 1.02)
    layout.percent_axis(ax_share)
    for ax in flat:
        own = axes is None
        layout.finish_panel(ax, own, layout.style_cycle_axis(ax, cycles), as_text=own)
        ax.legend(loc="best", fontsize=8, frameon=False)
    if axes is None:
        layout.figure_title(fig, f"{ds.attrs.get('scenario', 'scenario')}: dose delivered")
    return fig


def prepare_scenario_plots(n_events: int = len(OUTPUT_EVENTS)) -> None:
    """Build the empty figures of :func:`scenario_plots` for a run of ``n_events`` events
    now (:func:`lenasim.outputs.figures.layout.prepare_figure`): the plot child does it
    before a run's data comes. A run with another number of events builds its own."""
    for _ in ("per_cycle", "cumulative"):
        layout.prepare_grid(n_events, 2, panels.event_figsize(n_events), layout.SHARED_X_MARGINS)
    layout.prepare_grid(3, 3, _DOSE_FIGSIZE)


def scenario_plots(
    ds: xr.Dataset, out_dir: Path | str, only: tuple[str, ...] = SCENARIO_PNGS
) -> list[Path]:
    """Write the PNGs of one run into ``out_dir``: per-cycle, cumulative, dose (``only``:
    those of :data:`SCENARIO_PNGS` named; each figure is drawn on its own, so a subset's
    files are the whole set's)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = (plot_per_cycle, plot_cumulative, plot_dose)
    with layout.gc_paused():
        return [
            layout.save_png(plot(ds), out / name)
            for plot, name in zip(plots, SCENARIO_PNGS, strict=True)
            if name in only
        ]
