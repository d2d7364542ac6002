"""Every figure lenasim draws.

Plot functions take data (an ``xarray.Dataset`` of run draws, a mapping of scenario
name to such datasets, or a comparison table) plus ``ax=None`` / ``axes=None``, and
return the :class:`matplotlib.figure.Figure`. Matplotlib is imported inside the
functions and figures are built without pyplot (no global figure registry, no GUI
backend: saving uses the Agg canvas), so importing this module is cheap and plotting
from a worker or a test leaves no state behind.

Probabilities are stored as fractions and shown as percent; differences between
scenarios are shown in percentage points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "EVENT_TITLES",
    "comparison_plots",
    "event_title",
    "plot_cumulative",
    "plot_cumulative_overlay",
    "plot_differences",
    "plot_dose",
    "plot_dose_overlay",
    "plot_event",
    "plot_per_cycle",
    "plot_per_cycle_overlay",
    "scenario_colors",
    "scenario_plots",
]

# ---------------------------------------------------------------------------
# Scenario plots
# ---------------------------------------------------------------------------

EVENT_TITLES: dict[str, str] = {
    "flare": "Tumor flare (any grade)",
    "flare_grade3plus": "Tumor flare grade >= 3",
    "tls": "Tumor lysis syndrome",
    "neutropenia": "Grade 3-4 neutropenia",
}

# Okabe-Ito, colour-blind safe, without the yellow that vanishes on white.
_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]

_VAR_LABEL = {
    "per_cycle": "Probability in the cycle (%)",
    "cumulative": "Cumulative incidence (%)",
}

# File names written by scenario_plots / comparison_plots (report.py embeds them).
SCENARIO_PNGS = ("per_cycle.png", "cumulative.png", "dose.png")
COMPARISON_PNGS = ("per_cycle_overlay.png", "cumulative_overlay.png", "differences.png", "dose_overlay.png")


def event_title(event: str) -> str:
    """The event in words, as a haematologist would title a panel."""
    return EVENT_TITLES.get(event, event.replace("_", " "))


def scenario_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per scenario, by position: the reference (first) is always blue.

    Pass the same ordered names to every figure of a comparison so a scenario keeps
    its colour across them.
    """
    out: dict[str, str] = {}
    for name in names:
        if name not in out:
            out[name] = _PALETTE[len(out) % len(_PALETTE)]
    return out


def _new_figure(nrows: int, ncols: int, figsize: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _axes_grid(axes: Any, n: int, ncols: int, figsize: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """Use the caller's axes (a sequence of at least n) or make a grid of n panels."""
    if axes is not None:
        flat = list(np.ravel(np.asarray(axes, dtype=object)))
        if len(flat) < n:
            raise ValueError(f"need {n} axes, got {len(flat)}")
        return flat[0].figure, flat[:n]
    nrows = int(np.ceil(n / ncols))
    fig, grid = _new_figure(nrows, ncols, figsize)
    flat = list(grid.ravel())
    for extra in flat[n:]:
        extra.set_visible(False)
    return fig, flat[:n]


def _style_cycle_axis(ax: Axes, cycles: np.ndarray) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("Cycle")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(len(cycles), 12)))
    if len(cycles):
        ax.set_xlim(cycles.min() - 0.3, cycles.max() + 0.3)
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _percent_axis(ax: Axes, axis: str = "y") -> None:
    """Fractions shown as percent; decimals follow the visible range (set lazily)."""
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(xmax=1, decimals=None))


def _anchor_zero(ax: Axes, x: float, artist: Any) -> None:
    """Make y autoscaling include 0 and never go below it, without freezing the limits.

    (``set_ylim(bottom=0)`` would switch autoscaling off, so scenarios overlaid later
    would be clipped.)
    """
    ax.update_datalim([(x, 0.0)])
    artist.sticky_edges.y.append(0.0)
    ax.autoscale_view()


def _draw_summary(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and quantiles over the first (draw) axis, ignoring NaN."""
    q = np.nanquantile(values, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    return {
        "mean": np.nanmean(values, axis=0),
        "q05": q[0], "q25": q[1], "q50": q[2], "q75": q[3], "q95": q[4],
    }


def _values(da: xr.DataArray) -> np.ndarray:
    """(draw, cycle) values of one variable for one event, draws first."""
    return np.asarray(da.transpose("draw", ...).values, dtype=float)


def plot_event(
    ds: xr.Dataset,
    event: str,
    var: str = "per_cycle",
    ax: Axes | None = None,
    *,
    color: str = _PALETTE[0],
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
    if ax is None:
        fig, grid = _new_figure(1, 1, (5.0, 3.6))
        ax = grid[0, 0]
    cycles = np.asarray(ds["cycle"].values)
    s = _draw_summary(_values(ds[var].sel(event=event)))
    x = cycles + offset
    alphas = {0.5: 0.35, 0.9: 0.15}
    for width in sorted(bands, reverse=True):
        lo_key, hi_key = {0.5: ("q25", "q75"), 0.9: ("q05", "q95")}[round(width, 2)]
        ax.fill_between(x, s[lo_key], s[hi_key], color=color, alpha=alphas[round(width, 2)],
                        linewidth=0, step=None,
                        label=f"{int(width * 100)}% interval" if label is None else None)
    (line,) = ax.plot(x, s["mean"], color=color, marker="o", markersize=3.5, linewidth=1.8,
                      label=label if label is not None else "Posterior mean")
    _anchor_zero(ax, float(x[0]), line)
    ax.set_title(event_title(event), fontsize=11)
    ax.set_ylabel(_VAR_LABEL.get(var, var))
    _style_cycle_axis(ax, cycles)
    _percent_axis(ax)
    return ax.figure


def _events(ds: xr.Dataset) -> list[str]:
    known = [e for e in EVENT_TITLES if e in ds["event"].values]
    others = [str(e) for e in ds["event"].values if str(e) not in EVENT_TITLES]
    return known + others


def _event_panels(runs: Mapping[str, xr.Dataset], var: str, colors: Mapping[str, str] | None,
                  axes: Any, title: str) -> Figure:
    names = list(runs)
    colors = dict(colors or scenario_colors(names))
    first = runs[names[0]]
    events = _events(first)
    fig, flat = _axes_grid(axes, len(events), 2, (10.0, 3.4 * int(np.ceil(len(events) / 2))))
    single = len(names) == 1
    n = len(names)
    for ax, event in zip(flat, events, strict=True):
        for i, name in enumerate(names):
            ds = runs[name]
            if event not in ds["event"].values:
                continue
            plot_event(ds, event, var, ax=ax, color=colors[name],
                       label=None if single else name,
                       bands=(0.5, 0.9) if single else (0.9,),
                       offset=0.0 if single else (i - (n - 1) / 2) * 0.08)
    flat[0].legend(loc="best", fontsize=8, frameon=False)
    if axes is None:
        fig.suptitle(title, fontsize=12)
    return fig


def plot_per_cycle(ds: xr.Dataset, axes: Any = None) -> Figure:
    """Per-cycle probability of each event, one panel per event, with 50% and 90% bands."""
    name = str(ds.attrs.get("scenario", "scenario"))
    return _event_panels({name: ds}, "per_cycle", None, axes,
                         f"{name}: probability of the event in each cycle (patients starting it)")


def plot_cumulative(ds: xr.Dataset, axes: Any = None) -> Figure:
    """Cumulative incidence (at least one event by the end of each cycle), with bands."""
    name = str(ds.attrs.get("scenario", "scenario"))
    return _event_panels({name: ds}, "cumulative", None, axes,
                         f"{name}: cumulative incidence (at least one event by the end of each cycle)")


def plot_per_cycle_overlay(runs: Mapping[str, xr.Dataset], colors: Mapping[str, str] | None = None,
                           axes: Any = None) -> Figure:
    """Per-cycle probability for several scenarios overlaid (mean and 90% band)."""
    return _event_panels(runs, "per_cycle", colors, axes,
                         "Probability of the event in each cycle: mean and 90% interval")


def plot_cumulative_overlay(runs: Mapping[str, xr.Dataset], colors: Mapping[str, str] | None = None,
                            axes: Any = None) -> Figure:
    """Cumulative incidence for several scenarios overlaid (mean and 90% band)."""
    return _event_panels(runs, "cumulative", colors, axes,
                         "Cumulative incidence: mean and 90% interval")


def _dose_panel(ax: Axes, ds: xr.Dataset, var: str, color: str, label: str, band: bool,
                linestyle: str = "-", offset: float = 0.0) -> None:
    if var not in ds:
        return
    cycles = np.asarray(ds["cycle"].values) + offset
    s = _draw_summary(_values(ds[var]))
    if band:
        ax.fill_between(cycles, s["q05"], s["q95"], color=color, alpha=0.15, linewidth=0)
    (line,) = ax.plot(cycles, s["mean"], color=color, marker="o", markersize=3.5, linewidth=1.8,
                      linestyle=linestyle, label=label)
    _anchor_zero(ax, float(cycles[0]), line)


def plot_dose(ds: xr.Dataset, axes: Any = None) -> Figure:
    """Dose delivered per cycle: mean dose, intensity against the plan, and dose changes."""
    fig, flat = _axes_grid(axes, 3, 3, (13.0, 3.8))
    cycles = np.asarray(ds["cycle"].values)
    ax_dose, ax_int, ax_share = flat
    _dose_panel(ax_dose, ds, "dose_mean_mg", _PALETTE[0], "Mean (90% interval)", True)
    ax_dose.set_title("Daily dose on the days on drug", fontsize=11)
    ax_dose.set_ylabel("Dose (mg/day on drug days)")

    _dose_panel(ax_int, ds, "dose_intensity", _PALETTE[0], "Delivered (90% interval)", True)
    if "planned_intensity" in ds:
        ax_int.plot(cycles, np.asarray(ds["planned_intensity"].values, dtype=float), color="0.35",
                    linestyle="--", marker="s", markersize=3, linewidth=1.3, label="Planned")
    ax_int.set_title("Dose intensity against the plan", fontsize=11)
    ax_int.set_ylabel("Dose intensity (mg/day over the cycle)")

    for var, color, label in (("share_at_target", _PALETTE[2], "At target dose"),
                              ("share_held", _PALETTE[4], "Held or reduced in the cycle"),
                              ("share_reduced", _PALETTE[3], "Reduced one level after it"),
                              ("share_stopped", _PALETTE[1], "Stopped (of all patients)")):
        _dose_panel(ax_share, ds, var, color, label, False)
    ax_share.set_title("Dose changes (of patients starting the cycle)", fontsize=11)
    ax_share.set_ylabel("Share of patients (%)")
    for ax in flat:
        _style_cycle_axis(ax, cycles)
        ax.legend(loc="best", fontsize=8, frameon=False)
    ax_share.set_ylim(0, 1.02)
    _percent_axis(ax_share)
    if axes is None:
        fig.suptitle(f"{ds.attrs.get('scenario', 'scenario')}: dose delivered", fontsize=12)
    return fig


def plot_dose_overlay(runs: Mapping[str, xr.Dataset], colors: Mapping[str, str] | None = None,
                      axes: Any = None) -> Figure:
    """Dose delivered for several scenarios: intensity against plan, held, reduced, stopped."""
    names = list(runs)
    colors = dict(colors or scenario_colors(names))
    fig, flat = _axes_grid(axes, 4, 2, (10.0, 6.8))
    panels = (("dose_intensity", "Dose intensity (dashed: planned)", "Dose intensity (mg/day over the cycle)"),
              ("share_held", "Held or reduced in the cycle", "Patients starting the cycle (%)"),
              ("share_reduced", "Reduced one level after the cycle", "Patients starting the cycle (%)"),
              ("share_stopped", "Stopped lenalidomide by end of cycle", "All patients (%)"))
    all_cycles = np.unique(np.concatenate([np.asarray(r["cycle"].values) for r in runs.values()]))
    for ax, (var, title, ylabel) in zip(flat, panels, strict=True):
        for i, name in enumerate(names):
            ds = runs[name]
            _dose_panel(ax, ds, var, colors[name], name, True,
                        offset=(i - (len(names) - 1) / 2) * 0.08)
            if var == "dose_intensity" and "planned_intensity" in ds:
                ax.plot(np.asarray(ds["cycle"].values), np.asarray(ds["planned_intensity"].values),
                        color=colors[name], linestyle="--", linewidth=1.1, alpha=0.9)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(ylabel)
        _style_cycle_axis(ax, all_cycles)
        if var.startswith("share_"):
            _percent_axis(ax)
    flat[0].legend(loc="best", fontsize=8, frameon=False)
    if axes is None:
        fig.suptitle("Dose delivered: mean and 90% interval", fontsize=12)
    return fig


def plot_differences(comparison: pd.DataFrame, colors: Mapping[str, str] | None = None,
                     axes: Any = None) -> Figure:
    """Forest plot of differences against the reference, one panel per event.

    Rows per event: cycle 1, cycle 2 and the cumulative incidence by the last common
    cycle; for each scenario the mean difference (dot) and 90% interval (bar), in
    percentage points, with P(riskier than the reference) printed at the right.

    ``comparison`` is the table returned by :func:`lenasim.compare.compare_runs`.
    """
    df = comparison[comparison["quantity"].isin(["per_cycle", "cumulative"])]
    reference = str(df["reference"].iloc[0]) if len(df) else "reference"
    scen_names = list(dict.fromkeys(df["scenario"]))
    colors = dict(colors or scenario_colors([reference, *scen_names]))
    events = [e for e in EVENT_TITLES if e in set(df["event"])] + sorted(
        set(df["event"]) - set(EVENT_TITLES))
    fig, flat = _axes_grid(axes, max(len(events), 1), 2,
                           (11.0, (1.2 + 0.3 * 3 * max(len(scen_names), 1)) * np.ceil(len(events) / 2) + 0.8))
    n = len(scen_names)
    for ax, event in zip(flat, events, strict=False):
        sub = df[df["event"] == event]
        pc = sub[sub["quantity"] == "per_cycle"]
        cu = sub[sub["quantity"] == "cumulative"]
        last = int(cu["cycle"].max()) if len(cu) else None
        rows = [("per_cycle", 1, "In cycle 1"), ("per_cycle", 2, "In cycle 2"),
                ("cumulative", last, f"By end of cycle {last}")]
        rows = [r for r in rows if r[1] is not None
                and ((pc if r[0] == "per_cycle" else cu)["cycle"] == r[1]).any()]
        labels = []
        for j, (qty, cyc, text) in enumerate(rows):
            labels.append(text)
            for i, name in enumerate(scen_names):
                r = sub[(sub["quantity"] == qty) & (sub["cycle"] == cyc) & (sub["scenario"] == name)]
                if not len(r):
                    continue
                r = r.iloc[0]
                y = j + (i - (n - 1) / 2) * 0.22
                mean, lo, hi = 100 * r["diff_mean"], 100 * r["diff_q05"], 100 * r["diff_q95"]
                unpaired = "paired" in r.index and not bool(r["paired"])
                ax.errorbar(mean, y, xerr=[[mean - lo], [hi - mean]], fmt="o", color=colors[name],
                            markersize=5, capsize=3, linewidth=1.6,
                            markerfacecolor="white" if unpaired else colors[name],
                            linestyle="none",
                            label=(f"{name} (unpaired)" if unpaired else name) if j == 0 else None)
                ax.annotate(f"P={r['p_riskier']:.2f}", xy=(1.0, y), xycoords=("axes fraction", "data"),
                            xytext=(4, 0), textcoords="offset points", va="center", fontsize=7.5,
                            color=colors[name])
        ax.axvline(0, color="0.3", linewidth=1)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_title(event_title(event), fontsize=11)
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
            fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 6),
                       fontsize=9, frameon=False)
        fig.suptitle(f"Difference from {reference}: mean and 90% interval; "
                     "P = share of posterior draws where the scenario is riskier", fontsize=11)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=130)
    return path


def scenario_plots(ds: xr.Dataset, out_dir: Path | str) -> list[Path]:
    """Write the PNGs of one run into ``out_dir``: per-cycle, cumulative, dose."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = (plot_per_cycle(ds), plot_cumulative(ds), plot_dose(ds))
    return [_save(f, out / name) for f, name in zip(figs, SCENARIO_PNGS, strict=True)]


def comparison_plots(runs: Mapping[str, xr.Dataset], comparison: pd.DataFrame,
                     out_dir: Path | str) -> list[Path]:
    """Write the PNGs of a comparison: overlaid per-cycle, cumulative, differences, dose."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colors = scenario_colors(list(runs))
    figs = (plot_per_cycle_overlay(runs, colors), plot_cumulative_overlay(runs, colors),
            plot_differences(comparison, colors), plot_dose_overlay(runs, colors))
    return [_save(f, out / name) for f, name in zip(figs, COMPARISON_PNGS, strict=True)]


# ---------------------------------------------------------------------------
# Posterior plots
# ---------------------------------------------------------------------------
