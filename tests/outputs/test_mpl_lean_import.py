"""matplotlib imported without the help texts of its Artists' ``set()``
(lenasim.outputs.figures.mpl): same behaviour, same pixels."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

# One figure, the dose one (lines, markers, dashes, shaded intervals, legends, a percent
# axis): the lean import changes no drawing code, only docstrings, so the pixels of the
# other two (lines and shaded bands) prove nothing more. The dataset is the engine's
# RunDataset, pickled by the test: the fresh process does not import xarray.
# The fresh process also says whether pyplot is loaded by importing the figure modules and
# after drawing (never: the figures are drawn on Agg canvases; it was a process of its own
# in test_plots, ~0.2 s of CPU; issue 22.12).
DRAW = """
import pickle, sys
if {plain}:
    import matplotlib.figure  # imported first: matplotlib keeps its texts
import lenasim.outputs.figures.compare, lenasim.outputs.figures.run
print("matplotlib.pyplot" in sys.modules)
from lenasim.outputs.figures.mpl import mpl

mpl()
from matplotlib.lines import Line2D
from lenasim.outputs.figures import run as plots

line = Line2D([0, 1], [0, 1])
line.set(lw=3, color="r")  # aliases and properties still accepted
assert line.get_linewidth() == 3 and line.get_color() == "r"
print("set" in Line2D.set.__name__, "linewidth" in (Line2D.set.__doc__ or ""))
ds = pickle.loads(open({ds!r}, "rb").read())
plots.scenario_plots(ds, {out!r}, only=("dose.png",))
print("matplotlib.pyplot" in sys.modules)
"""


def _draw(tmp_path: Path, plain: bool) -> tuple[list[str], dict[str, bytes]]:
    """What the fresh process printed (pyplot loaded by the imports; the two texts flags;
    pyplot loaded after drawing) and the PNG it drew."""
    out = tmp_path / ("plain" if plain else "lean")
    code = DRAW.format(plain=plain, ds=str(tmp_path / "ds.pickle"), out=str(out))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return res.stdout.split(), {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


def _draw_here(tmp_path: Path) -> tuple[bool, dict[str, bytes]]:
    """The dose figure drawn in this process (its matplotlib lean or not, as the tests
    before this one imported it): whether it kept matplotlib's texts, and the PNG."""
    from lenasim.outputs.figures import run as plots
    from lenasim.outputs.figures.mpl import mpl

    mpl()
    from matplotlib.lines import Line2D

    line = Line2D([0, 1], [0, 1])
    line.set(lw=3, color="r")
    assert line.get_linewidth() == 3 and line.get_color() == "r"
    ds = pickle.loads((tmp_path / "ds.pickle").read_bytes())
    plots.scenario_plots(ds, tmp_path / "here", only=("dose.png",))
    pngs = {p.name: p.read_bytes() for p in sorted((tmp_path / "here").glob("*.png"))}
    return "linewidth" in (Line2D.set.__doc__ or ""), pngs


def test_lean_import_draws_the_same_pngs(tmp_path):
    """A fresh process draws the figure the other way than this one did (one process
    instead of two: ~0.8 s of CPU; issue 22.12)."""
    from builders import as_run_dataset, make_run_dataset

    (tmp_path / "ds.pickle").write_bytes(pickle.dumps(as_run_dataset(make_run_dataset())))
    plain_here, here = _draw_here(tmp_path)
    printed, there = _draw(tmp_path, plain=not plain_here)
    # matplotlib's own texts when imported first, left out when lenasim's mpl() imports it
    assert printed[1:3] == ["True", "False" if plain_here else "True"]
    assert printed[0] == printed[3] == "False"  # no pyplot: not by the imports, nor drawing
    assert list(here) == ["dose.png"] and here == there
