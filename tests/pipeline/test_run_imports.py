"""Issue 22.11: `lenasim run` imports only what it uses, and its figures are drawn by a
forked child (src/lenasim/pipeline/plots.py) with the same bytes as in process. Each
case runs in a fresh interpreter (``sys.modules`` read at the end), on the synthetic
posterior of tests/conftest.py, with the slow_escalation config (it ``mirrors`` a trial,
so the mirrored-trial predictions are on the path). Speed itself is measured in
benchmarks/run.py (``e2e``), never here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import assert_leaves_unimported

SLOW_CFG = "configs/slow_escalation.yaml"
# Never on the run path: the model's sampler stack, Dask, SciPy (the mirrored trial's
# laws and the hazard's sigmoid are computed without it: model/predictive.py,
# core/hazard.py), xarray (the run's dataset is a lenasim.simulation.results.RunDataset,
# written to draws.nc with h5py). pandas: below, for a run without `mirrors` (the mirrored
# trial's predictions are another module's).
NEVER = ("pymc", "pytensor", "arviz", "dask", "distributed", "scipy", "xarray")


def _run(extra: str, name: str) -> str:
    return (
        "from lenasim.cli import main\n"
        f"rc = main(['run', {SLOW_CFG!r}, '--draws', '5', '--patients', '20', '--quiet', "
        f"'--results', {name!r}{extra}])\n"
        "assert rc == 0, rc\n"
    )


def test_run_without_plots_imports_no_plotting_sampling_or_stats_library(posterior_workdir):
    assert_leaves_unimported(_run(", '--no-plots'", "r"), (*NEVER, "matplotlib", "PIL"),
                             cwd=posterior_workdir)  # fmt: skip
    assert not list((posterior_workdir / "r/slow_escalation").glob("*.png"))


def _pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_run_with_plots_draws_them_in_a_child_with_the_in_process_bytes(posterior_workdir):
    """With plots the figures come from the forked child: the process itself imports no
    more than without them (matplotlib included). The same PNG bytes three ways: drawn by
    the child, drawn in process by ``write_run`` (the explorer's and the search's path),
    and drawn in process after the child failed (its drawing raises: the parent draws
    them instead, and says nothing)."""
    code = (
        "import os, sys\n"
        "from lenasim.cli import main\n"
        "from lenasim.pipeline import run as pipeline\n"
        "from lenasim.pipeline.posterior import posterior_for\n"
        "from lenasim.simulation.scenario import load_scenario\n"
        "from pathlib import Path\n"
        "common = ['--draws', '5', '--patients', '20', '--quiet']\n"
        f"assert main(['run', {SLOW_CFG!r}, *common, '--results', 'child']) == 0\n"
        f"never = {(*NEVER, 'matplotlib')!r}\n"
        "bad = sorted(m for m in sys.modules for n in never if m == n or m.startswith(n + '.'))\n"
        "assert not bad, bad\n"
        "from lenasim.outputs.figures import run as figures\n"  # what the child draws with
        "parent, real = os.getpid(), figures.scenario_plots\n"
        "def fails_in_child(ds, out):\n"
        "    if os.getpid() != parent:\n"
        "        raise RuntimeError('child fails')\n"
        "    return real(ds, out)\n"
        "figures.scenario_plots = fails_in_child\n"
        f"assert main(['run', {SLOW_CFG!r}, *common, '--results', 'fallback']) == 0\n"
        "assert 'matplotlib' in sys.modules\n"  # the parent drew them
        "figures.scenario_plots = real\n"
        f"sc = load_scenario(Path({SLOW_CFG!r}))\n"
        "sc = sc.model_copy(update={'population': sc.population.model_copy("
        "update={'patients': 20}), 'posterior': sc.posterior.model_copy(update={'draws': 5})})\n"
        "post = posterior_for('x', sc.posterior.spec, 5)\n"
        "pipeline.write_run(pipeline.simulate_run(sc, post), Path('inproc/slow_escalation'),"
        " config_file=Path(" + repr(SLOW_CFG) + "))\n"
    )
    tmp = posterior_workdir / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    res = subprocess.run([sys.executable, "-c", code], cwd=posterior_workdir, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    out = posterior_workdir / "child/slow_escalation"
    child = _pngs(out)
    assert sorted(child) == ["cumulative.png", "dose.png", "per_cycle.png"]
    assert (out / "report.html").stat().st_size > 10_000
    assert _pngs(posterior_workdir / "fallback/slow_escalation") == child
    assert _pngs(posterior_workdir / "inproc/slow_escalation") == child
    assert not list(tmp.iterdir())  # the child's private folders are gone


# A run's tables, terminal text and report page are built without pandas (outputs.tables.
# frame.Columns): without `mirrors` (whose predictions may use it), pandas and pyarrow
# stay out of the process.
TABLES = ("pandas", "pyarrow")


def _without_mirrors(folder: Path) -> str:
    """configs/slow_nomirror.yaml: slow_escalation without its `mirrors:` line."""
    text = (folder / SLOW_CFG).read_text()
    assert "\nmirrors:" in text
    light = "".join(line for line in text.splitlines(keepends=True)
                    if not line.startswith("mirrors:"))  # fmt: skip
    (folder / "configs/slow_nomirror.yaml").write_text(light.replace("name: slow_escalation",
                                                                     "name: slow_nomirror"))  # fmt: skip
    return "configs/slow_nomirror.yaml"


def test_run_without_mirrors_imports_neither_pandas_nor_pyarrow(posterior_workdir):
    cfg = _without_mirrors(posterior_workdir)
    code = _run(", '--no-plots'", "r").replace(SLOW_CFG, cfg)
    assert_leaves_unimported(code, (*NEVER, *TABLES, "matplotlib"), cwd=posterior_workdir)
    out = posterior_workdir / "r/slow_nomirror"
    assert (out / "limits.csv").read_text().count("\n") == 3  # header and the two limits
    assert {p.name for p in out.glob("*.csv")} == {"bands.csv", "cumulative.csv", "dose.csv",
                                                   "limits.csv", "per_cycle.csv"}  # fmt: skip


# The figures' child replaced by one that hands back 1x1 PNGs without forking: the report
# page is built in this process whoever drew them (its imports are what is checked; the
# child's drawing is tested above and in test_plot_child_runs.py), and drawing the three
# figures in a child cost ~half of this test's CPU.
FAKE_CHILD = """
import struct, zlib
import lenasim.commands.run as command


def _png():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    head = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"\\0\\0"))
            + chunk(b"IEND", b""))


class Child:
    drawn = 0

    def __init__(self, runs=1):
        pass

    def draw(self, ds):
        return "run1"

    def collect(self, name, into):
        for png in ("per_cycle.png", "cumulative.png", "dose.png"):
            (into / png).write_bytes(_png())
        Child.drawn += 1
        return True

    def close(self):
        pass


command.PlotChild, command.can_fork = Child, lambda: True
"""


def test_run_with_report_without_mirrors_imports_no_pandas(posterior_workdir):
    """With plots, the report page too (its CSVs read back by frame.read_csv, the evidence
    table's rows read without pandas by the evidence stage's ``evidence_rows``)."""
    from lenasim.evidence import table

    if not hasattr(table, "evidence_rows"):
        pytest.skip("the evidence stage has no pandas-free evidence_rows yet")
    cfg = _without_mirrors(posterior_workdir)
    code = FAKE_CHILD + _run("", "r").replace(SLOW_CFG, cfg) + "assert Child.drawn == 1\n"
    assert_leaves_unimported(code, (*NEVER, *TABLES, "matplotlib"), cwd=posterior_workdir)
    page = (posterior_workdir / "r/slow_nomirror/report.html").read_text()
    assert "Risk limits" in page and "EvidenceError" not in page
    assert page.count('src="data:image/png;base64,') == 3  # the three PNGs embedded
