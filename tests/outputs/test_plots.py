"""Plots run on small synthetic results and draw what they promise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from builders import make_run_dataset
from lenasim.core.vocabulary import OUTPUT_EVENTS
from lenasim.outputs.figures import compare as compare_plots
from lenasim.outputs.figures import layout
from lenasim.outputs.figures import run as plots

EVENTS = list(OUTPUT_EVENTS)


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def _data_collections(ax):
    """Collections drawn from data (bands), not the grid lines."""
    return [c for c in ax.collections if c.get_gid() != "grid"]


def _drawn_texts(fig):
    """(text, bbox in pixels) of every non-blank text the Agg renderer draws for the figure.
    Nothing is rasterised (matplotlib's draw_without_rendering): the texts and their places
    are the same, at ~2/3 of the CPU (issue 22.12)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    drawn = []

    def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            drawn.append(mtext)

    with renderer._draw_disabled():  # every draw_* a no-op, as draw_without_rendering
        renderer.draw_text = record
        fig.draw(renderer)
    return [(t, t.get_window_extent(renderer)) for t in dict.fromkeys(drawn)]


def _assert_laid_out(fig):
    """Fixed margins hold the text: nothing is cut off at the figure edge, no text runs
    into a panel it does not belong to, and texts of different panels (or of the figure)
    do not overlap."""
    texts = _drawn_texts(fig)
    assert texts
    page = fig.bbox
    for t, bb in texts:
        assert page.x0 - 1 <= bb.x0 and bb.x1 <= page.x1 + 1, f"{t.get_text()!r} cut off at a side"
        assert page.y0 - 1 <= bb.y0 and bb.y1 <= page.y1 + 1, f"{t.get_text()!r} cut off top/bottom"
    panels = _visible_axes(fig)
    for t, bb in texts:
        for ax in panels:
            if ax is not t.axes:
                assert not bb.overlaps(ax.bbox), (
                    f"{t.get_text()!r} runs into panel {ax.get_title()!r}"
                )
    for i, (t1, b1) in enumerate(texts):
        for t2, b2 in texts[i + 1 :]:
            if t1.axes is not t2.axes or t1.axes is None:
                assert not b1.overlaps(b2), f"{t1.get_text()!r} overlaps {t2.get_text()!r}"


def _shows_cycle_axis(ax) -> bool:
    return ax.get_xlabel() == "Cycle" and len(ax.get_xticks()) > 0


def test_scenario_colors_stable_and_distinct():
    c1 = layout.scenario_colors(["ref", "b", "c"])
    c2 = layout.scenario_colors(["ref", "b", "c", "d"])
    assert len(set(c1.values())) == 3
    assert all(c1[k] == c2[k] for k in c1)


def test_plot_event_single_axes():
    from matplotlib.figure import Figure

    ds = make_run_dataset()
    fig = plots.plot_event(ds, "tls")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    # mean and median lines (the risks are skewed), 50% and 90% bands
    assert len(ax.lines) == 2 and len(_data_collections(ax)) == 2
    assert [line.get_label() for line in ax.lines] == ["Posterior median", "Posterior mean"]
    assert ax.get_title() == "Tumor lysis syndrome"
    assert "%" in ax.get_ylabel()
    # drawing onto a given axes returns that axes' figure
    fig2 = Figure()
    ax2 = fig2.subplots()
    assert plots.plot_event(ds, "flare", "cumulative", ax=ax2) is fig2


def wide_ds(n_cycles: int = 12, events: tuple[str, ...] = tuple(EVENTS)) -> xr.Dataset:
    """12 cycles, events from ~80% (two-digit percent ticks) down to ~3% (half-percent ticks)."""
    top = {"flare": 0.8, "flare_grade3plus": 0.03, "tls": 0.035, "neutropenia": 0.75}
    rng = np.random.default_rng(5)
    p = (
        rng.uniform(0.2, 1.0, size=(200, len(events), n_cycles))
        * np.array([top.get(e, 0.3) for e in events])[:, None]
    )
    return make_run_dataset(p, events=events)


@pytest.mark.parametrize("fn", [plots.plot_per_cycle, plots.plot_cumulative])
def test_event_panels(fn):
    fig = fn(make_run_dataset())
    axes = _visible_axes(fig)
    assert len(axes) == 4
    titles = {ax.get_title() for ax in axes}
    assert titles == {
        "Grade 3-4 neutropenia",
        "Tumor flare (any grade)",
        "Tumor flare grade >= 3",
        "Tumor lysis syndrome",
    }
    assert all(len(ax.lines) == 2 for ax in axes)  # median and mean
    assert all(len(_data_collections(ax)) == 2 for ax in axes)  # 50% and 90% bands
    # the cycle axis is shown under each column, not repeated in the row above
    assert [_shows_cycle_axis(ax) for ax in axes] == [False, False, True, True]
    assert fig.get_layout_engine() is None


@pytest.mark.parametrize("fn", [plots.plot_per_cycle, plots.plot_cumulative, plots.plot_dose])
@pytest.mark.parametrize("n_cycles", [4, 12])
def test_scenario_figures_text_fits(fn, n_cycles):
    _assert_laid_out(fn(wide_ds(n_cycles)))


@pytest.mark.parametrize("events", [("flare",), ("flare", "tls", "neutropenia")])
def test_event_panels_odd_count(events):
    fig = plots.plot_per_cycle(wide_ds(events=events))
    axes = _visible_axes(fig)
    assert len(axes) == len(events)
    # a panel with no panel below it shows the cycle axis itself
    assert [_shows_cycle_axis(ax) for ax in axes] == [
        len(events) == 1 or i > 0 for i in range(len(events))
    ]
    _assert_laid_out(fig)


def test_frozen_y_axes_hold_the_data_and_label_ticks_exactly():
    """Own figures fix limits and ticks once: 0 at the bottom, the 95% quantile inside,
    ticks inside the limits, and percent labels exact with as few decimals as needed."""
    ds = wide_ds()
    fig = plots.plot_per_cycle(ds)
    for ax, event in zip(_visible_axes(fig), EVENTS, strict=True):
        lo, hi = ax.get_ylim()
        assert lo == 0 and not ax.get_autoscaley_on()
        assert float(ds["per_cycle"].sel(event=event).quantile(0.95, "draw").max()) <= hi
        ticks = ax.get_yticks()
        assert ticks.min() >= lo and ticks.max() <= hi
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert all(lab.endswith("%") for lab in labels)
        values = [float(lab.rstrip("%")) / 100 for lab in labels]
        assert values == pytest.approx(list(ticks), abs=1e-12)
        decimals = {len(lab.rstrip("%").partition(".")[2]) for lab in labels}
        assert len(decimals) == 1
        d = decimals.pop()  # minimal: one decimal fewer would misstate a tick
        assert d == 0 or any(
            round(100 * t, d - 1) != pytest.approx(100 * t, abs=1e-9) for t in ticks
        )
    small = dict(zip(EVENTS, _visible_axes(fig), strict=True))["flare_grade3plus"]
    assert any("." in t.get_text() for t in small.get_yticklabels())  # a 0-3% axis needs decimals


def test_own_figures_build_no_hidden_ticks():
    """Only the ticks that are drawn are built (each costs ~1 ms in matplotlib 3.11)."""
    for fig in (plots.plot_per_cycle(wide_ds()), plots.plot_dose(wide_ds())):
        for ax in _visible_axes(fig):
            for axis, locs in ((ax.xaxis, ax.get_xticks()), (ax.yaxis, ax.get_yticks())):
                assert len(axis.majorTicks) <= max(len(locs), 1)
                assert len(axis.minorTicks) <= 1


def test_grid_lines_at_the_ticks():
    fig = plots.plot_per_cycle(wide_ds())
    top_left, _, bottom_left, _ = _visible_axes(fig)
    cycles = np.arange(1, 13)
    for ax in (top_left, bottom_left):
        vertical, horizontal = [c for c in ax.collections if c.get_gid() == "grid"]
        assert [seg[0, 0] for seg in vertical.get_segments()] == list(cycles)
        assert [seg[0, 1] for seg in horizontal.get_segments()] == pytest.approx(
            list(ax.get_yticks())
        )
        assert not any(tick.gridline.get_visible() for tick in ax.yaxis.get_major_ticks())


def test_caller_axes_keep_autoscaling_and_every_axis_label():
    """Axes a caller passes are not frozen: data drawn later is not clipped."""
    from matplotlib.figure import Figure

    fig = Figure()
    axes = fig.subplots(2, 2)
    assert plots.plot_per_cycle(make_run_dataset(), axes=axes) is fig
    for ax in axes.ravel():
        assert ax.get_autoscaley_on()
        assert _shows_cycle_axis(ax)
        assert _data_collections(ax)
        assert [c for c in ax.collections if c.get_gid() == "grid"] == []
    ax = axes[0, 0]
    ax.plot([1, 2], [0.0, 5.0])
    assert ax.get_ylim()[1] >= 5.0


def test_dose_plot():
    fig = plots.plot_dose(make_run_dataset())
    dose, intensity, shares = _visible_axes(fig)
    assert len(dose.lines) == 1
    assert len(intensity.lines) == 2  # delivered and planned
    assert len(shares.lines) == 4  # at target, held, reduced, stopped
    assert "mg/day" in intensity.get_ylabel()
    assert all(_shows_cycle_axis(ax) for ax in (dose, intensity, shares))
    assert shares.get_ylim() == (0, 1.02)


def test_all_zero_share_has_no_negative_axis():
    ds = make_run_dataset()
    ds["share_reduced"] = ds["share_reduced"] * 0
    runs = {"A": ds, "B": make_run_dataset(scenario="B")}
    reduced = _visible_axes(compare_plots.plot_dose_overlay(runs))[2]
    assert reduced.get_title().startswith("Reduced")
    assert reduced.get_ylim()[0] == 0 and reduced.get_ylim()[1] > 0


def test_overlays_one_line_per_scenario():
    runs = {
        "A": make_run_dataset(scenario="A"),
        "B": make_run_dataset(scenario="B", scale=1.3),
        "C": make_run_dataset(scenario="C", scale=0.5),
    }
    colors = layout.scenario_colors(list(runs))
    for fn in (compare_plots.plot_per_cycle_overlay, compare_plots.plot_cumulative_overlay):
        axes = _visible_axes(fn(runs, colors))
        assert len(axes) == 4
        for ax in axes:
            # per scenario the mean and its 90% interval's two dotted edges (no fills: an
            # overlap of translucent fills turns grey)
            assert len(ax.lines) == 9 and not _data_collections(ax)
            means = [ln for ln in ax.lines if ln.get_marker() == "o"]
            assert [ln.get_color() for ln in means] == [colors[n] for n in runs]
    fig = compare_plots.plot_dose_overlay(runs, colors)
    axes = _visible_axes(fig)
    assert len(axes) == 4
    # delivered (with its interval's two dotted edges) and planned per scenario
    assert len(axes[0].lines) == 12 and not _data_collections(axes[0])
    assert all(len(ax.lines) == 9 for ax in axes[1:])
    assert [_shows_cycle_axis(ax) for ax in axes] == [False, False, True, True]
    _assert_laid_out(fig)


def _comparison() -> pd.DataFrame:
    rows = []
    for scen in ("B", "C"):
        for qty in ("per_cycle", "cumulative"):
            for ev in EVENTS:
                for cyc in (1, 2, 3):
                    rows.append(
                        {
                            "scenario": scen,
                            "reference": "A",
                            "quantity": qty,
                            "event": ev,
                            "cycle": cyc,
                            "diff_mean": 0.01,
                            "diff_q05": -0.02,
                            "diff_q95": 0.05,
                            "p_riskier": 0.7,
                            "paired": True,
                        }
                    )
    return pd.DataFrame(rows)


def test_differences_forest():
    colors = layout.scenario_colors(["A", "B", "C"])
    fig = compare_plots.plot_differences(_comparison(), colors)
    axes = _visible_axes(fig)
    assert len(axes) == 4
    for ax in axes:
        # three rows (cycle 1, cycle 2, by end of cycle 3) x two scenarios
        assert [t.get_text() for t in ax.get_yticklabels()] == [
            "In cycle 1",
            "In cycle 2",
            "By end of cycle 3",
        ]
        assert len(ax.containers) == 6
        assert "percentage points" in ax.get_xlabel()
    _assert_laid_out(fig)


@pytest.mark.parametrize("gc_enabled", [True, False])
def test_scenario_plots_writes_pngs(tmp_path, gc_enabled, monkeypatch, request):
    import gc

    from PIL import Image

    from lenasim.outputs.figures import layout

    if gc_enabled:
        # drawn once for the outputs tests (tests/conftest.py), with the collector enabled
        drawn = request.getfixturevalue("scenario_pngs")
        paths, enabled = drawn.paths, drawn.gc_enabled
    else:
        # this case checks the collector's state after the drawing, which does not depend
        # on what is drawn: no figure is made or saved (the gc-enabled case checks the
        # PNGs; ~0.7 s of CPU; issue 22.12)
        for name in ("plot_per_cycle", "plot_cumulative", "plot_dose"):
            monkeypatch.setattr(plots, name, lambda d: object())
        monkeypatch.setattr(layout, "save_png", lambda fig, path: path)
        was = gc.isenabled()
        gc.disable()
        try:
            paths = plots.scenario_plots(make_run_dataset(), tmp_path / "out")
            enabled = gc.isenabled()
        finally:
            (gc.enable if was else gc.disable)()
    assert enabled is gc_enabled  # paused while drawing, then as it was
    assert [p.name for p in paths] == ["per_cycle.png", "cumulative.png", "dose.png"]
    if not gc_enabled:
        return
    for p, name in zip(paths, ("plot_per_cycle", "plot_cumulative", "plot_dose"), strict=True):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert drawn.saved[p.name] == name  # the file holds that function's figure
        w, h = drawn.sizes[name]
        with Image.open(p) as img:
            assert img.mode == "RGB"
            assert img.size == (round(w * 130), round(h * 130))
            # not blank: the figure drew something besides the white background
            assert img.convert("L").getextrema()[0] < 100


@pytest.mark.slow  # fast twin: test_report's test_compare_report_embeds_every_plot (issue 22.12)
def test_comparison_plots_writes_pngs(tmp_path):
    runs = {
        "A": make_run_dataset(scenario="A", n_cycles=3),
        "B": make_run_dataset(scenario="B", n_cycles=3),
        "C": make_run_dataset(scenario="C", n_cycles=3),
    }
    paths = compare_plots.comparison_plots(runs, _comparison(), tmp_path)
    assert len(paths) == 4 and all(p.stat().st_size > 1000 for p in paths)


def test_differences_marks_unpaired_scenarios():
    df = _comparison()
    df.loc[df["scenario"] == "C", "paired"] = False
    fig = compare_plots.plot_differences(df)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["B", "C (unpaired)"]


def test_more_than_three_scenarios_are_small_multiples():
    """Five scenarios: one panel per event and scenario (not five bands piled up), each
    with its own mean and bands, the reference's mean dashed beside the others; an event's
    panels share a y scale, and events do not (TLS is not drawn on flare's scale)."""
    names = ["A", "B", "C", "D", "E"]
    runs = {n: wide_ds() for n in names}
    fig = compare_plots.plot_per_cycle_overlay(runs, layout.scenario_colors(names))
    axes = _visible_axes(fig)
    assert len(axes) == 4 * 5
    rows = [axes[i * 5 : (i + 1) * 5] for i in range(4)]
    assert [ax.get_title() for ax in rows[0]] == names
    for row in rows:
        assert len({ax.get_ylim() for ax in row}) == 1
        assert len(_data_collections(row[0])) == 2 and len(row[0].lines) == 2  # median, mean
        assert all(len(ax.lines) == 3 for ax in row[1:])  # own median and mean + the reference's
    tops = {row[0].get_ylabel(): row[0].get_ylim()[1] for row in rows}
    assert tops["Tumor lysis syndrome"] < 0.2 < tops["Tumor flare (any grade)"]
    _assert_laid_out(fig)
    # three or fewer stay overlaid
    assert (
        len(_visible_axes(compare_plots.plot_per_cycle_overlay({n: runs[n] for n in names[:3]})))
        == 4
    )


def test_dose_figures_leave_out_what_is_zero_everywhere():
    ds = make_run_dataset()
    for v in ("share_held", "share_reduced"):
        ds[v] = ds[v] * 0
    runs = {"A": ds, "B": ds.copy()}
    titles = [ax.get_title() for ax in _visible_axes(compare_plots.plot_dose_overlay(runs))]
    assert titles == ["Dose intensity (dashed: planned)", "Stopped lenalidomide by end of cycle"]
    fig = plots.plot_dose(ds)
    shares = _visible_axes(fig)[2]
    assert len([ln for ln in shares.lines if len(ln.get_xdata())]) == 2  # at target, stopped
    legend = [t.get_text() for t in shares.get_legend().get_texts()]
    assert "None held or reduced" in legend
    _assert_laid_out(fig)


def test_differences_say_identical():
    df = _comparison()
    df["identical"] = df["cycle"] == 1
    texts = [
        t.get_text() for ax in _visible_axes(compare_plots.plot_differences(df)) for t in ax.texts
    ]
    assert "identical" in texts and "P=0.70" in texts
