"""A run's own figures draw their tick and axis labels as plain texts
(lenasim.outputs.figures.layout.axes_as_text): the same texts at the same places as
matplotlib's axes would draw, without building a tick."""

from __future__ import annotations

import numpy as np
import pytest

from builders import make_run_dataset
from lenasim.outputs.figures import run as plots

GIDS = ("xticklabel", "yticklabel", "xlabel", "ylabel")


def _ds():
    """12 cycles, risks from a few percent (decimal percent ticks) to ~80%."""
    rng = np.random.default_rng(5)
    top = np.array([0.8, 0.03, 0.035, 0.75])[:, None]
    return make_run_dataset(rng.uniform(0.2, 1.0, size=(200, 4, 12)) * top)


def _texts(ax, renderer, gid):
    return [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_gid() == gid]


@pytest.mark.parametrize("fn", [plots.plot_per_cycle, plots.plot_dose])
def test_labels_drawn_as_matplotlib_would(fn):
    from matplotlib import rc_context

    with rc_context({"text.hinting": "no_hinting"}):  # as layout.save_png draws
        _compare_with_matplotlib(fn(_ds()))


def _compare_with_matplotlib(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(130)
    renderer = FigureCanvasAgg(fig).get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    ours = {id(ax): {gid: _texts(ax, renderer, gid) for gid in GIDS} for ax in axes}
    for ax in axes:
        assert not ax.xaxis.get_visible() and not ax.yaxis.get_visible()
        assert ours[id(ax)]["yticklabel"] and ours[id(ax)]["ylabel"]
        # matplotlib's own axes instead of the texts
        for t in [t for t in ax.texts if t.get_gid() in GIDS]:
            t.remove()
        ax.xaxis.set_visible(True)
        ax.yaxis.set_visible(True)
    with renderer._draw_disabled():  # nothing rasterised, as draw_without_rendering
        fig.draw(renderer)  # places the axis labels beside the tick labels
    for ax in axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            theirs = [(t.get_text(), t.get_window_extent(renderer))
                      for t in axis.get_ticklabels() if t.get_text()]  # fmt: skip
            if axis.label.get_text():
                theirs_label = [(axis.label.get_text(), axis.label.get_window_extent(renderer))]
            else:
                theirs_label = []
            for mine, other in ((ours[id(ax)][f"{name}ticklabel"], theirs),
                                (ours[id(ax)][f"{name}label"], theirs_label)):  # fmt: skip
                assert [s for s, _ in mine] == [s for s, _ in other]
                for (s, a), (_, b) in zip(mine, other, strict=True):
                    assert np.allclose(a.extents, b.extents, atol=1.0), (s, a, b)


def test_no_tick_is_built():
    """Each matplotlib tick is five artists (~2 ms); the texts replace them: an axis keeps
    the one major and one minor tick that matplotlib builds with every Axes, although a
    labelled one has 5 to 12 tick labels."""
    for fig in (plots.plot_per_cycle(_ds()), plots.plot_cumulative(_ds()), plots.plot_dose(_ds())):
        fig.draw_without_rendering()  # every artist drawn, nothing rasterised
        for ax in fig.axes:
            assert len(ax.get_yticks()) >= 5
            for axis in (ax.xaxis, ax.yaxis):
                assert len(axis.majorTicks) <= 1 and len(axis.minorTicks) <= 1


def test_caller_axes_keep_matplotlibs_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    axes = fig.subplots(2, 2)
    plots.plot_per_cycle(make_run_dataset(), axes=axes)
    for ax in axes.ravel():
        assert ax.xaxis.get_visible() and ax.yaxis.get_visible()
        assert not [t for t in ax.texts if t.get_gid() in GIDS]
