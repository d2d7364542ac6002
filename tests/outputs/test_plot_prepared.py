"""Figures built ahead of a run's data (layout.prepare_figure, run.prepare_scenario_plots:
the plot child builds them while the parent simulates) give the same PNGs; the PNG
writer (layout.png_bytes)."""

from __future__ import annotations

from builders import make_run_dataset
from lenasim.outputs.figures import layout
from lenasim.outputs.figures import run as plots


def _pngs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_prepared_figures_are_used_and_draw_the_same(tmp_path, monkeypatch, scenario_pngs):
    """The figures built anew (tests/conftest.py scenario_pngs, no figure prepared) and the
    prepared ones draw the same PNGs."""
    monkeypatch.setattr(layout, "_PREPARED", {})
    plots.prepare_scenario_plots()
    assert sum(len(v) for v in layout._PREPARED.values()) == 3
    plots.scenario_plots(make_run_dataset(), tmp_path / "prepared")
    assert sum(len(v) for v in layout._PREPARED.values()) == 0  # all three used
    assert _pngs(tmp_path / "prepared") == scenario_pngs.pngs
    assert len(scenario_pngs.pngs) == 3


def test_figures_prepared_for_other_panels_are_left(tmp_path, monkeypatch):
    """Which prepared figures a run takes (what they draw: the test above); the PNGs are
    not written (~0.3 s of CPU; issue 22.12)."""
    monkeypatch.setattr(layout, "_PREPARED", {})
    plots.prepare_scenario_plots(n_events=5)  # 3 rows; the run has 4 events: 2
    monkeypatch.setattr(layout, "save_png", lambda fig, path: path)
    plots.scenario_plots(make_run_dataset(), tmp_path)
    assert sum(len(v) for v in layout._PREPARED.values()) == 2  # only dose's was used


def test_png_bytes_decode_to_the_pixels():
    """The PNG writer (rows unfiltered, alpha left out) as Pillow reads it back."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, size=(37, 51, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    with Image.open(io.BytesIO(layout.png_bytes(rgba))) as img:
        img.load()
        assert img.mode == "RGB" and img.size == (51, 37)
        assert np.array_equal(np.asarray(img), rgba[..., :3])
