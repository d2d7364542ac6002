"""The run figures' PNGs carry their resolution (a pHYs chunk), as matplotlib's savefig
(through Pillow) writes it, so that they print at the figure's size."""

import io

import numpy as np
from PIL import Image

from lenasim.outputs.figures import layout


def _rgba() -> np.ndarray:
    rgba = np.random.default_rng(5).integers(0, 256, size=(23, 31, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    return rgba


def test_the_resolution_reads_back_as_pillow_writes_it():
    rgba = _rgba()
    ours = Image.open(io.BytesIO(layout.png_bytes(rgba, dpi=130)))
    buf = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buf, format="png", dpi=(130, 130))
    pillows = Image.open(buf)
    assert ours.info["dpi"] == pillows.info["dpi"]  # both 129.9968 (5118 pixels per metre)
    assert round(ours.info["dpi"][0]) == 130
    assert np.array_equal(np.asarray(ours), rgba[..., :3])


def test_without_a_resolution_no_phys_chunk():
    data = layout.png_bytes(_rgba())
    assert b"pHYs" not in data
    assert "dpi" not in Image.open(io.BytesIO(data)).info


def test_the_run_figures_say_130_dpi(tmp_path):
    from lenasim.outputs.figures.mpl import mpl

    fig = mpl().Figure(figsize=(2.0, 1.0))
    path = layout.save_png(fig, tmp_path / "f.png")
    with Image.open(path) as img:
        assert img.size == (260, 130)
        assert round(img.info["dpi"][0]) == 130 and round(img.info["dpi"][1]) == 130
