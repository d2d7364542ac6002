"""Plots run on small synthetic results and draw what they promise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from lenasim import plots

EVENTS = ["flare", "flare_grade3plus", "tls", "neutropenia"]


def make_ds(name: str = "A", n_draws: int = 30, n_cycles: int = 5, scale: float = 1.0) -> xr.Dataset:
    rng = np.random.default_rng(3)
    p = np.clip(rng.uniform(0.01, 0.3, size=(n_draws, 4, n_cycles)) * scale, 0, 1)
    dose = np.tile(np.minimum(2.5 * 2.0 ** np.arange(n_cycles), 10.0), (n_draws, 1))
    share = rng.uniform(0, 0.2, size=(n_draws, n_cycles))
    return xr.Dataset(
        {"per_cycle": (("draw", "event", "cycle"), p),
         "cumulative": (("draw", "event", "cycle"), 1 - np.cumprod(1 - p, axis=2)),
         "dose_mean_mg": (("draw", "cycle"), dose),
         "dose_intensity": (("draw", "cycle"), dose * 0.7),
         "planned_intensity": (("cycle",), dose[0] * 0.75),
         **{v: (("draw", "cycle"), share) for v in
            ("share_on", "share_at_target", "share_held", "share_reduced", "share_stopped")}},
        coords={"draw": np.arange(n_draws), "event": EVENTS, "cycle": np.arange(1, n_cycles + 1)},
        attrs={"scenario": name})


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_scenario_colors_stable_and_distinct():
    c1 = plots.scenario_colors(["ref", "b", "c"])
    c2 = plots.scenario_colors(["ref", "b", "c", "d"])
    assert len(set(c1.values())) == 3
    assert all(c1[k] == c2[k] for k in c1)


def test_plot_event_single_axes():
    from matplotlib.figure import Figure

    ds = make_ds()
    fig = plots.plot_event(ds, "tls")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.lines) == 1 and len(ax.collections) == 2  # mean line, 50% and 90% bands
    assert ax.get_title() == "Tumor lysis syndrome"
    assert "%" in ax.get_ylabel()
    # drawing onto a given axes returns that axes' figure
    fig2 = Figure()
    ax2 = fig2.subplots()
    assert plots.plot_event(ds, "flare", "cumulative", ax=ax2) is fig2


@pytest.mark.parametrize("fn", [plots.plot_per_cycle, plots.plot_cumulative])
def test_event_panels(fn):
    fig = fn(make_ds())
    axes = _visible_axes(fig)
    assert len(axes) == 4
    titles = {ax.get_title() for ax in axes}
    assert titles == {"Grade 3-4 neutropenia", "Tumor flare (any grade)", "Tumor flare grade >= 3",
                      "Tumor lysis syndrome"}
    assert all(len(ax.lines) == 1 for ax in axes)


def test_dose_plot():
    fig = plots.plot_dose(make_ds())
    dose, intensity, shares = _visible_axes(fig)
    assert len(dose.lines) == 1
    assert len(intensity.lines) == 2  # delivered and planned
    assert len(shares.lines) == 4  # at target, held, reduced, stopped
    assert "mg/day" in intensity.get_ylabel()


def test_overlays_one_line_per_scenario():
    runs = {"A": make_ds("A"), "B": make_ds("B", scale=1.3), "C": make_ds("C", scale=0.5)}
    colors = plots.scenario_colors(list(runs))
    for fn in (plots.plot_per_cycle_overlay, plots.plot_cumulative_overlay):
        axes = _visible_axes(fn(runs, colors))
        assert len(axes) == 4
        for ax in axes:
            assert len(ax.lines) == 3
            assert [ln.get_color() for ln in ax.lines] == [colors[n] for n in runs]
    axes = _visible_axes(plots.plot_dose_overlay(runs, colors))
    assert len(axes) == 4
    assert len(axes[0].lines) == 6  # delivered and planned per scenario
    assert all(len(ax.lines) == 3 for ax in axes[1:])


def _comparison() -> pd.DataFrame:
    rows = []
    for scen in ("B", "C"):
        for qty in ("per_cycle", "cumulative"):
            for ev in EVENTS:
                for cyc in (1, 2, 3):
                    rows.append({"scenario": scen, "reference": "A", "quantity": qty, "event": ev,
                                 "cycle": cyc, "diff_mean": 0.01, "diff_q05": -0.02,
                                 "diff_q95": 0.05, "p_riskier": 0.7, "paired": True})
    return pd.DataFrame(rows)


def test_differences_forest():
    colors = plots.scenario_colors(["A", "B", "C"])
    fig = plots.plot_differences(_comparison(), colors)
    axes = _visible_axes(fig)
    assert len(axes) == 4
    for ax in axes:
        # three rows (cycle 1, cycle 2, by end of cycle 3) x two scenarios
        assert [t.get_text() for t in ax.get_yticklabels()] == [
            "In cycle 1", "In cycle 2", "By end of cycle 3"]
        assert len(ax.containers) == 6
        assert "percentage points" in ax.get_xlabel()


def test_scenario_plots_writes_pngs(tmp_path):
    paths = plots.scenario_plots(make_ds(), tmp_path / "out")
    assert [p.name for p in paths] == ["per_cycle.png", "cumulative.png", "dose.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_comparison_plots_writes_pngs(tmp_path):
    runs = {"A": make_ds("A", n_cycles=3), "B": make_ds("B", n_cycles=3),
            "C": make_ds("C", n_cycles=3)}
    paths = plots.comparison_plots(runs, _comparison(), tmp_path)
    assert len(paths) == 4 and all(p.stat().st_size > 1000 for p in paths)


def test_module_does_not_import_pyplot():
    import subprocess
    import sys

    code = "import sys, lenasim.plots; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_differences_marks_unpaired_scenarios():
    df = _comparison()
    df.loc[df["scenario"] == "C", "paired"] = False
    fig = plots.plot_differences(df)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["B", "C (unpaired)"]
