"""The plot child draws each run it expects into the same PNGs as drawing in process
(its figures built ahead of each), then ends: a run beyond them is left to the caller
(collect says so and copies nothing; the caller's drawing is scenario_plots itself, so
this test does not draw it: lenasim.pipeline.run's fallback is tested in
tests/pipeline/test_run_imports.py)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

# The datasets are the engine's RunDataset (NumPy only, as `lenasim run` hands over),
# pickled by the test: the process that forks the child imports neither xarray nor
# matplotlib.
CODE = """
import pickle, sys
from pathlib import Path
from lenasim.pipeline import plots

out = Path({out!r})
child = plots.PlotChild(runs=2)
try:
    for i in range(3):  # a third run beyond the two expected
        ds = pickle.loads((out / f"ds{{min(i, 1)}}.pickle").read_bytes())
        name = child.draw(ds)
        (out / f"child{{i}}").mkdir()
        drawn = child.collect(name, out / f"child{{i}}")
        assert drawn == (i < 2), i
finally:
    child.close()
bad = [m for m in ("matplotlib", "xarray") if m in sys.modules]
assert not bad, bad  # this process drew nothing
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_draws_every_run_as_in_process(tmp_path):
    from builders import as_run_dataset, make_run_dataset
    from lenasim.outputs.figures.run import scenario_plots

    datasets = [as_run_dataset(make_run_dataset(scenario=f"s{i}", scale=s))
                for i, s in enumerate((1.0, 0.5))]  # fmt: skip
    for i, ds in enumerate(datasets):
        (tmp_path / f"ds{i}.pickle").write_bytes(pickle.dumps(ds))
    code = CODE.format(out=str(tmp_path))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert not list((tmp_path / "child2").iterdir())  # the third run: nothing copied
    for i, ds in enumerate(datasets):
        here = scenario_plots(ds, tmp_path / f"here{i}")
        drawn = sorted((tmp_path / f"child{i}").glob("*.png"))
        assert [p.name for p in drawn] == sorted(p.name for p in here)
        for p in here:
            assert (tmp_path / f"child{i}" / p.name).read_bytes() == p.read_bytes(), (i, p.name)
