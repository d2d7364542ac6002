"""The figures of a comparison: per-cycle risk and cumulative incidence of several
scenarios (overlaid for up to three, small multiples beyond), dose delivered, and the
forest plot of the differences from the reference. Layout:
:mod:`lenasim.outputs.figures.layout`; the panels: :mod:`lenasim.outputs.figures.panels`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lenasim.core.vocabulary import event_title
from lenasim.outputs.figures import layout, panels

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure

__all__ = [
    "COMPARISON_PNGS",
    "comparison_plots",
    "plot_cumulative_overlay",
    "plot_differences",
    "plot_dose_overlay",
    "plot_per_cycle_overlay",
]

# File names written by comparison_plots (the comparison report embeds them).
COMPARISON_PNGS = (
    "per_cycle_overlay.png",
    "cumulative_overlay.png",
    "differences.png",
    "dose_overlay.png",
)


# Up to this many scenarios share a panel (overlaid bands); more get one panel each.
MAX_OVERLAID = 3


def plot_per_cycle_overlay(
    runs: Mapping[str, xr.Dataset], colors: Mapping[str, str] | None = None, axes: Any = None
) -> Figure:
    """Per-cycle probability of several scenarios: overlaid (mean and 90% band) for up
    to three, small multiples beyond (see :func:`plot_small_multiples`)."""
    title = "Probability of the event in each cycle: mean (line) and 90% interval (dotted)"
    if axes is None and len(runs) > MAX_OVERLAID:
        return plot_small_multiples(runs, "per_cycle", colors, title)
    return panels.event_panels(runs, "per_cycle", colors, axes, title)


def plot_cumulative_overlay(
    runs: Mapping[str, xr.Dataset], colors: Mapping[str, str] | None = None, axes: Any = None
) -> Figure:
    """Cumulative incidence of several scenarios: overlaid (mean and 90% band) for up to
    three, small multiples beyond."""
    title = "Cumulative incidence: mean (line) and 90% interval (dotted)"
    if axes is None and len(runs) > MAX_OVERLAID:
        return plot_small_multiples(runs, "cumulative", colors, title)
    return panels.event_panels(runs, "cumulative", colors, axes, title)


def plot_small_multiples(
    runs: Mapping[str, xr.Dataset],
    var: str,
    colors: Mapping[str, str] | None = None,
    title: str = "",
) -> Figure:
    """One panel per event (rows) and scenario (columns): each scenario's mean with its
    50% and 90% bands, the reference's (first) mean dashed in grey for comparison; the
    panels of an event share its y scale, each event has its own."""
    names = list(runs)
    colors = dict(colors or layout.scenario_colors(names))
    ref = runs[names[0]]
    events = panels.dataset_events(ref)
    n_ev, n_sc = len(events), len(names)
    margins = layout.Margins(left=0.85, wgap=0.18, hgap=0.5, top=0.8)
    width = min(16.0, margins.left + margins.right + n_sc * 2.1 + (n_sc - 1) * margins.wgap)
    fig, grid = layout.new_figure(n_ev, n_sc, (width, margins.top + margins.bottom + 2.1 * n_ev
                                         + (n_ev - 1) * margins.hgap), margins)  # fmt: skip
    all_cycles = np.unique(np.concatenate([np.asarray(r["cycle"].values) for r in runs.values()]))
    for i, event in enumerate(events):
        row = grid[i]
        for j, name in enumerate(names):
            ax, ds = row[j], runs[name]
            if event in ds["event"].values:
                panels.draw_event(ax, ds, event, var, color=colors[name], label=None,
                            bands=(0.5, 0.9), offset=0.0)  # fmt: skip
            if j > 0:
                r = ref[var].sel(event=event).transpose("draw", "cycle").values
                ax.plot(np.asarray(ref["cycle"].values), np.nanmean(r, axis=0), color="0.45",
                        linestyle="--", linewidth=1.0, label=f"{names[0]} (mean)")  # fmt: skip
        hi = max(ax.get_ylim()[1] for ax in row)
        for j, ax in enumerate(row):
            xgrid = panels.label_event_axes(ax, event, var, all_cycles, labelled=i == n_ev - 1)
            ax.set_title(names[j] if i == 0 else "", fontsize=10, y=1.0, color=colors[names[j]])
            ax.set_ylabel(event_title(event) if j == 0 else "", fontsize=9)
            ax.set_ylim(0, hi)
            layout.finish_panel(ax, True, xgrid)
            if i == n_ev - 1 and len(xgrid) > 6:  # narrow panels: every other cycle labelled
                ax.set_xticks(xgrid[::2])
            if j > 0:
                ax.tick_params(labelleft=False)
    grid[0][min(1, n_sc - 1)].legend(loc="upper right", fontsize=7, frameon=False)
    layout.figure_title(fig, f"{title} (one panel per scenario)" if title else "")
    return fig


def plot_dose_overlay(
    runs: Mapping[str, xr.Dataset], colors: Mapping[str, str] | None = None, axes: Any = None
) -> Figure:
    """Dose delivered for several scenarios: intensity against plan, held, reduced, stopped."""
    names = list(runs)
    colors = dict(colors or layout.scenario_colors(names))
    shown = (
        (
            "dose_intensity",
            "Dose intensity (dashed: planned)",
            "Dose intensity (mg/day over the cycle)",
        ),
        ("share_held", "Held or reduced in the cycle", "Patients starting the cycle (%)"),
        ("share_reduced", "Reduced one level after the cycle", "Patients starting the cycle (%)"),
        ("share_stopped", "Stopped lenalidomide by end of cycle", "All patients (%)"),
    )
    # A share that is zero in every run and draw (no rule holds, reduces or stops) would
    # be an empty panel: left out, and said so in the title.
    empty = [
        title
        for var, title, _ in shown[1:]
        if axes is None and not any(var in ds and np.nanmax(np.abs(ds[var].values)) > 0
                                    for ds in runs.values())
    ]  # fmt: skip
    shown = tuple(p for p in shown if p[1] not in empty)
    bands = len(names) <= MAX_OVERLAID
    fig, flat = layout.axes_grid(axes, len(shown), 2,
                           (10.0, 0.3 + 3.2 * int(np.ceil(len(shown) / 2))), layout.SHARED_X_MARGINS)  # fmt: skip
    all_cycles = np.unique(np.concatenate([np.asarray(r["cycle"].values) for r in runs.values()]))
    own = axes is None
    for k, (ax, (var, title, ylabel)) in enumerate(zip(flat, shown, strict=True)):
        for i, name in enumerate(names):
            ds = runs[name]
            panels.dose_panel(
                ax, ds, var, colors[name], name, bands,
                offset=(i - (len(names) - 1) / 2) * 0.08, edges=True,
            )  # fmt: skip
            if var == "dose_intensity" and "planned_intensity" in ds:
                ax.plot(
                    np.asarray(ds["cycle"].values),
                    np.asarray(ds["planned_intensity"].values),
                    color=colors[name],
                    linestyle="--",
                    linewidth=1.1,
                    alpha=0.9,
                )
        layout.panel_title(ax, title)
        ax.set_ylabel(ylabel)
        if var.startswith("share_"):
            layout.percent_axis(ax)
        layout.finish_panel(
            ax,
            own,
            layout.style_cycle_axis(ax, all_cycles, layout.shows_cycle_axis(k, len(flat), 2, own)),
        )
    flat[0].legend(loc="best", fontsize=8, frameon=False)
    if axes is None:
        what = "mean and 90% interval (dotted)" if bands else "mean (intervals in dose.csv)"
        if empty:  # said in the legend, not in a title that a long list would cut
            text = "\n".join(textwrap.wrap(
                f"Zero in every scenario, not drawn: {', '.join(empty).lower()}", 40))  # fmt: skip
            flat[0].plot([], [], " ", label=text)
            flat[0].legend(loc="best", fontsize=8, frameon=False)
        layout.figure_title(fig, f"Dose delivered: {what}")
    return fig


def plot_differences(
    comparison: pd.DataFrame, colors: Mapping[str, str] | None = None, axes: Any = None
) -> Figure:
    """Forest plot of differences against the reference, one panel per event.

    Rows per event: cycle 1, cycle 2 and the cumulative incidence by the last common
    cycle; for each scenario the mean difference (dot) and 90% interval (bar), in
    percentage points, with P(riskier than the reference) printed at the right.

    ``comparison`` is the table returned by :func:`lenasim.outputs.report.comparison.compare_runs`.
    """
    df = comparison[comparison["quantity"].isin(["per_cycle", "cumulative"])]
    reference = str(df["reference"].iloc[0]) if len(df) else "reference"
    scen_names = list(dict.fromkeys(df["scenario"]))
    colors = dict(colors or layout.scenario_colors([reference, *scen_names]))
    events = [e for e in panels.EVENT_TITLES if e in set(df["event"])] + sorted(
        set(df["event"]) - set(panels.EVENT_TITLES)
    )
    fig, flat = layout.axes_grid(
        axes,
        max(len(events), 1),
        2,
        (11.0, (1.2 + 0.3 * 3 * max(len(scen_names), 1)) * np.ceil(len(events) / 2) + 0.8),
        layout.FOREST_MARGINS,
    )
    n = len(scen_names)
    step = min(0.22, 0.8 / max(n, 1))  # scenarios' rows within a quantity's band
    for ax, event in zip(flat, events, strict=False):
        sub = df[df["event"] == event]
        pc = sub[sub["quantity"] == "per_cycle"]
        cu = sub[sub["quantity"] == "cumulative"]
        last = int(cu["cycle"].max()) if len(cu) else None
        rows = [
            ("per_cycle", 1, "In cycle 1"),
            ("per_cycle", 2, "In cycle 2"),
            ("cumulative", last, f"By end of cycle {last}"),
        ]
        rows = [
            r
            for r in rows
            if r[1] is not None and ((pc if r[0] == "per_cycle" else cu)["cycle"] == r[1]).any()
        ]
        labels = []
        first: dict[tuple, int] = {}  # (quantity, cycle, scenario) -> its first row in sub
        for k, key in enumerate(zip(sub["quantity"], sub["cycle"], sub["scenario"], strict=True)):
            first.setdefault(key, k)
        for j, (qty, cyc, text) in enumerate(rows):
            labels.append(text)
            for i, name in enumerate(scen_names):
                if (qty, cyc, name) not in first:
                    continue
                r = sub.iloc[first[qty, cyc, name]]
                y = j + (i - (n - 1) / 2) * step
                mean, lo, hi = 100 * r["diff_mean"], 100 * r["diff_q05"], 100 * r["diff_q95"]
                unpaired = "paired" in r.index and not bool(r["paired"])
                ax.errorbar(
                    mean,
                    y,
                    xerr=[[mean - lo], [hi - mean]],
                    fmt="o",
                    color=colors[name],
                    markersize=5,
                    capsize=3,
                    linewidth=1.6,
                    markerfacecolor="white" if unpaired else colors[name],
                    linestyle="none",
                    label=(f"{name} (unpaired)" if unpaired else name) if j == 0 else None,
                )
                same = "identical" in r.index and bool(r["identical"])
                ax.annotate(
                    "identical" if same else f"P={r['p_riskier']:.2f}",
                    xy=(1.0, y),
                    xycoords=("axes fraction", "data"),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=7.5,
                    color=colors[name],
                )
        ax.axvline(0, color="0.3", linewidth=1)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        layout.panel_title(ax, event_title(event))
        ax.set_xlabel(f"Difference vs {reference} (percentage points)")
        ax.grid(True, axis="x", color="0.9")
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        lo, hi = ax.get_xlim()
        m = max(abs(lo), abs(hi))
        ax.set_xlim(-m, m)
    handles, labels = flat[0].get_legend_handles_labels() if len(flat) else ([], [])
    if axes is None:
        if handles:
            fig.legend(
                handles,
                labels,
                loc="lower center",
                bbox_to_anchor=(0.5, 0.04 / fig.get_figheight()),
                ncols=min(len(handles), 6),
                fontsize=9,
                frameon=False,
            )
        layout.figure_title(
            fig,
            f"Difference from {reference}: mean and 90% interval; "
            "P = share of posterior draws where the scenario is riskier",
            fontsize=11,
        )
    return fig


def comparison_plots(
    runs: Mapping[str, xr.Dataset], comparison: pd.DataFrame, out_dir: Path | str
) -> list[Path]:
    """Write the PNGs of a comparison: overlaid per-cycle, cumulative, differences, dose."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colors = layout.scenario_colors(list(runs))
    plots = (
        lambda: plot_per_cycle_overlay(runs, colors),
        lambda: plot_cumulative_overlay(runs, colors),
        lambda: plot_differences(comparison, colors),
        lambda: plot_dose_overlay(runs, colors),
    )
    with layout.gc_paused():
        return [
            layout.save_png(plot(), out / name)
            for plot, name in zip(plots, COMPARISON_PNGS, strict=True)
        ]
