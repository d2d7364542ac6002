"""Fixtures shared by the outputs tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def scenario_pngs(tmp_path_factory):
    """The three run figures of ``builders.make_run_dataset()`` written once by
    ``scenario_plots`` (the collector enabled, no figure prepared ahead), for the tests
    that check them (test_plots) and the ones that draw them again another way
    (test_plot_prepared): each drawing is ~0.5 s of CPU (issue 22.12). A namespace:
    ``paths`` (as returned), ``pngs`` (file name -> bytes), ``gc_enabled`` (the
    collector's state after), ``figures`` (plotting function's name -> its figure) and
    ``saved`` (file name -> the figure saved under it). Read only."""
    import gc

    from builders import make_run_dataset
    from lenasim.outputs.figures import layout
    from lenasim.outputs.figures import run as plots

    made, saved = {}, {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(layout, "_PREPARED", {})
        # each plotting function's figure and the figure saved under each name, recorded
        # as they are made (instead of drawing each figure again for its size)
        for fn in (plots.plot_per_cycle, plots.plot_cumulative, plots.plot_dose):
            mp.setattr(plots, fn.__name__,
                       lambda d, _fn=fn: made.setdefault(_fn.__name__, _fn(d)))  # fmt: skip
        real_save = layout.save_png
        mp.setattr(layout, "save_png",
                   lambda fig, path: real_save(saved.setdefault(path.name, fig), path))  # fmt: skip
        was = gc.isenabled()
        gc.enable()
        try:
            paths = plots.scenario_plots(make_run_dataset(), tmp_path_factory.mktemp("pngs"))
            enabled = gc.isenabled()
        finally:
            (gc.enable if was else gc.disable)()
    return SimpleNamespace(
        paths=paths, pngs={p.name: p.read_bytes() for p in paths}, gc_enabled=enabled,
        figures=made, saved=saved,
    )  # fmt: skip
