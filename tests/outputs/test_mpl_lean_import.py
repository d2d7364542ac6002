"""matplotlib imported without the help texts of its Artists' ``set()``
(lenasim.outputs.figures.mpl): same behaviour, same pixels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

DRAW = """
import sys
sys.path.insert(0, {tests!r})
if {plain}:
    import matplotlib.figure  # imported first: matplotlib keeps its texts
from lenasim.outputs.figures.mpl import mpl

mpl()
from matplotlib.lines import Line2D
from builders import make_run_dataset
from lenasim.outputs.figures import run as plots

line = Line2D([0, 1], [0, 1])
line.set(lw=3, color="r")  # aliases and properties still accepted
assert line.get_linewidth() == 3 and line.get_color() == "r"
print("set" in Line2D.set.__name__, "linewidth" in (Line2D.set.__doc__ or ""))
plots.scenario_plots(make_run_dataset(), {out!r})
"""


def _draw(tmp_path: Path, plain: bool) -> tuple[str, dict[str, bytes]]:
    out = tmp_path / ("plain" if plain else "lean")
    code = DRAW.format(tests=str(TESTS), plain=plain, out=str(out))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return res.stdout.split(), {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


def test_lean_import_draws_the_same_pngs(tmp_path):
    plain_flags, plain = _draw(tmp_path, plain=True)
    lean_flags, lean = _draw(tmp_path, plain=False)
    assert plain_flags == ["True", "True"]  # matplotlib's own texts when imported first
    assert lean_flags == ["True", "False"]  # left out
    assert len(plain) == 3 and plain == lean
