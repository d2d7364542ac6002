"""Issue 22.11: `lenasim run` imports only what it uses, and its figures are drawn by a
forked child (src/lenasim/pipeline/plots.py) with the same bytes as in process, for
each run it expects. On the synthetic posterior of tests/conftest.py, with the
slow_escalation config (it ``mirrors`` a trial, so the mirrored-trial predictions are on
the path) and a copy of it without ``mirrors``. Speed itself is measured in
benchmarks/run.py (``e2e``), never here.

The cases share one fresh interpreter (the ``interpreter`` fixture; one process instead
of six: ~0.3-0.55 s of CPU each for Python, NumPy, pydantic and lenasim's imports; issue
22.12), run in turn by :data:`HARNESS`; after each, the modules it must not have loaded
are read from ``sys.modules``. What is loaded only grows, so a case that would load one
of its modules in a fresh interpreter is still caught (loaded by it, or already by an
earlier case); the order keeps what an earlier case may load out of each later case's
list (the modules' imports first; then without ``mirrors``, which forbids pandas; the
mirrored runs and the plot child's two runs; matplotlib last), and a failure names the
case that loaded each module first. Each case's stderr and the temporary folder's
content are recorded after it."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

SLOW_CFG = "configs/slow_escalation.yaml"
# Never on the run path: the model's sampler stack, Dask, SciPy (the mirrored trial's
# laws and the hazard's sigmoid are computed without it: model/predictive.py,
# core/hazard.py), xarray (the run's dataset is a lenasim.simulation.results.RunDataset,
# written to draws.nc with h5py). pandas: below, for a run without `mirrors` (the mirrored
# trial's predictions are another module's).
NEVER = ("pymc", "pytensor", "arviz", "dask", "distributed", "scipy", "xarray")
# A run's tables, terminal text and report page are built without pandas (outputs.tables.
# frame.Columns): without `mirrors` (whose predictions may use it), pandas and pyarrow
# stay out of the process.
TABLES = ("pandas", "pyarrow")
NOMIRROR_CFG = "configs/slow_nomirror.yaml"

# The harness: argv[1] the cases (JSON: name, code, modules it must not load), argv[2]
# the report written (JSON, per case: error, the listed modules loaded, where each
# loaded module was loaded first, stderr, the temporary folder's content). Standard
# library only, so that the first case starts from a fresh interpreter's modules.
HARNESS = """
import json, os, sys, traceback
cases, report, first, ns = json.loads(sys.argv[1]), {}, {}, {}
names = sorted({n for case in cases for n in case["never"]})
def loaded(listed):
    return sorted(m for m in sys.modules for n in listed if m == n or m.startswith(n + "."))
def by_whom(listed):  # each listed name loaded (itself or a submodule): the first case to
    found = {}
    for m in loaded(listed):
        n = next(n for n in listed if m == n or m.startswith(n + "."))
        found[n] = min(found.get(n, len(cases)), first[m])
    return {n: cases[i]["name"] for n, i in sorted(found.items())}
for i, case in enumerate(cases):
    err_file = f"stderr_{case['name']}.txt"
    sys.stdout.flush(); sys.stderr.flush()
    saved = os.dup(2)
    with open(err_file, "w+") as f:
        os.dup2(f.fileno(), 2)
        try:
            exec(case["code"], ns)
            error = None
        except BaseException:
            error = traceback.format_exc()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    for m in loaded(names):
        first.setdefault(m, i)
    report[case["name"]] = {
        "error": error,
        "loaded": by_whom(case["never"]),
        "stderr": open(err_file).read(),
        "tmp": sorted(os.listdir(os.environ["TMPDIR"])),
    }
    os.remove(err_file)
with open(sys.argv[2], "w") as f:
    json.dump(report, f)
"""


def _run(cfg: str, results: str, extra: str = "") -> str:
    return (
        "from lenasim.cli import main\n"
        f"rc = main(['run', {cfg!r}, '--draws', '5', '--patients', '20', '--quiet', "
        f"'--results', {results!r}{extra}])\n"
        "assert rc == 0, rc\n"
    )


# A run's own modules (importing them loads neither pandas, xarray, scipy.special nor
# matplotlib: each is imported where it is used, ~0.15-0.5 s apiece).
RUN_MODULES = (
    "import lenasim.cli, lenasim.commands.run, lenasim.model.posterior, "
    "lenasim.outputs.tables.summaries\n"
    "import lenasim.core.hazard, lenasim.simulation.scenario, lenasim.model.spec, "
    "lenasim.outputs.report.run\n"
)

# The figures' child replaced by one that hands back 1x1 PNGs without forking: the report
# page is built in this process whoever drew them (its imports are what is checked; the
# child's drawing is tested by the child and plot_child_two_runs cases below), and drawing
# the three figures in a child cost ~half of this case's CPU. Put back after the case.
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


real_child = command.PlotChild, command.can_fork
command.PlotChild, command.can_fork = Child, lambda: True
try:
"""

# With plots the figures come from the forked child: the process itself imports no more
# than without them (matplotlib included). Then the child made to fail (its drawing
# raises): the parent draws them instead, and says nothing.
FALLBACK = f"""
import os, sys
from lenasim.cli import main
from lenasim.outputs.figures import run as figures  # what the child draws with
parent, real = os.getpid(), figures.scenario_plots
def fails_in_child(ds, out):
    if os.getpid() != parent:
        raise RuntimeError('child fails')
    return real(ds, out)
figures.scenario_plots = fails_in_child
try:
    assert main(['run', {SLOW_CFG!r}, '--draws', '5', '--patients', '20', '--quiet',
                 '--results', 'fallback']) == 0
finally:
    figures.scenario_plots = real
assert 'matplotlib' in sys.modules  # the parent drew them
"""


# The plot child (lenasim.pipeline.plots) told to expect two runs: it draws each into the
# same PNGs as drawing in process (its figures built ahead of each), then ends; a third
# run is left to the caller (collect says so and copies nothing; the caller's drawing is
# scenario_plots itself, so it is not drawn here: the fallback case above tests it). The
# datasets: the engine's RunDataset (NumPy only, as `lenasim run` hands over), pickled by
# the fixture: this process imports neither xarray nor matplotlib for them.
PLOT_CHILD = """
import pickle
from pathlib import Path
from lenasim.pipeline import plots

child = plots.PlotChild(runs=2)
try:
    for i in range(3):  # a third run beyond the two expected
        ds = pickle.loads(Path(f"plot_child/ds{min(i, 1)}.pickle").read_bytes())
        name = child.draw(ds)
        Path(f"plot_child/child{i}").mkdir()
        drawn = child.collect(name, Path(f"plot_child/child{i}"))
        assert drawn == (i < 2), i
finally:
    child.close()
"""


def _indented(code: str) -> str:
    return "".join(f"    {line}" for line in code.splitlines(keepends=True))


# In this order (see the module docstring): name, code, modules it must not load.
CASES = [
    {"name": "modules", "code": RUN_MODULES,
     "never": ["pandas", "xarray", "h5netcdf", "scipy.special", "matplotlib", "pymc",
               "pytensor"]},
    {"name": "nomirror", "code": _run(NOMIRROR_CFG, "r1", ", '--no-plots'"),
     "never": [*NEVER, *TABLES, "matplotlib"]},
    {"name": "nomirror_report",
     "code": FAKE_CHILD + _indented(_run(NOMIRROR_CFG, "r2") + "assert Child.drawn == 1\n")
     + "finally:\n    command.PlotChild, command.can_fork = real_child\n",
     "never": [*NEVER, *TABLES, "matplotlib"]},
    {"name": "slow_no_plots", "code": _run(SLOW_CFG, "r3", ", '--no-plots'"),
     "never": [*NEVER, "matplotlib", "PIL"]},
    {"name": "child", "code": _run(SLOW_CFG, "child"), "never": [*NEVER, "matplotlib"]},
    {"name": "plot_child_two_runs", "code": PLOT_CHILD, "never": ["matplotlib", "xarray"]},
    {"name": "fallback", "code": FALLBACK, "never": []},
]  # fmt: skip


class Interpreter:
    """The harness's run: its folder (the cwd: configs, models, the results), its report
    per case and the process's own stderr."""

    def __init__(self, folder: Path, report: dict, stderr: str) -> None:
        self.folder, self.report, self.stderr = folder, report, stderr

    def passed(self, name: str) -> dict:
        """Assert that case ``name`` ran and loaded none of its modules; return its
        report."""
        case = self.report[name]
        assert case["error"] is None, case["error"]
        assert not case["loaded"], f"loaded (the case that loaded it first): {case['loaded']}"
        return case


def _without_mirrors(folder: Path) -> None:
    """configs/slow_nomirror.yaml: slow_escalation without its `mirrors:` line."""
    text = (folder / SLOW_CFG).read_text()
    assert "\nmirrors:" in text
    light = "".join(line for line in text.splitlines(keepends=True)
                    if not line.startswith("mirrors:"))  # fmt: skip
    (folder / NOMIRROR_CFG).write_text(light.replace("name: slow_escalation",
                                                     "name: slow_nomirror"))  # fmt: skip


def _plot_child_datasets() -> list:
    """The two runs the plot child case draws (builders' synthetic runs, two scales)."""
    from builders import as_run_dataset, make_run_dataset

    return [as_run_dataset(make_run_dataset(scenario=f"s{i}", scale=s))
            for i, s in enumerate((1.0, 0.5))]  # fmt: skip


@pytest.fixture(scope="module")
def interpreter(tmp_path_factory) -> Interpreter:
    """The cases of :data:`CASES` run by :data:`HARNESS` in one fresh interpreter, in a
    folder filled as ``posterior_workdir``'s (its TMPDIR a folder of its own)."""
    import os

    from conftest import make_posterior_workdir

    root = tmp_path_factory.mktemp("run_imports")
    with pytest.MonkeyPatch.context() as mp:
        make_posterior_workdir(root, mp)
    _without_mirrors(root)
    (root / "plot_child").mkdir()
    for i, ds in enumerate(_plot_child_datasets()):
        (root / "plot_child" / f"ds{i}.pickle").write_bytes(pickle.dumps(ds))
    (root / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(root / "tmp")}
    res = subprocess.run([sys.executable, "-c", HARNESS, json.dumps(CASES), "report.json"],
                         cwd=root, env=env, capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return Interpreter(root, json.loads((root / "report.json").read_text()), res.stderr)


def test_run_path_modules_import_no_heavy_libraries(interpreter):
    """Importing the run's own modules loads neither pandas, xarray, scipy.special nor
    matplotlib (each is imported where it is used: ~0.15-0.5 s apiece)."""
    interpreter.passed("modules")


def test_run_without_mirrors_imports_neither_pandas_nor_pyarrow(interpreter):
    interpreter.passed("nomirror")
    out = interpreter.folder / "r1/slow_nomirror"
    assert (out / "limits.csv").read_text().count("\n") == 3  # header and the two limits
    assert {p.name for p in out.glob("*.csv")} == {"bands.csv", "cumulative.csv", "dose.csv",
                                                   "limits.csv", "per_cycle.csv"}  # fmt: skip


def test_run_with_report_without_mirrors_imports_no_pandas(interpreter):
    """With plots, the report page too (its CSVs read back by frame.read_csv, the evidence
    table's rows read without pandas by the evidence stage's ``evidence_rows``)."""
    interpreter.passed("nomirror_report")
    page = (interpreter.folder / "r2/slow_nomirror/report.html").read_text()
    assert "Risk limits" in page and "EvidenceError" not in page
    assert page.count('src="data:image/png;base64,') == 3  # the three PNGs embedded


def test_run_without_plots_imports_no_plotting_sampling_or_stats_library(interpreter):
    interpreter.passed("slow_no_plots")
    assert not list((interpreter.folder / "r3/slow_escalation").glob("*.png"))


def _pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_run_with_plots_draws_them_in_a_child_with_the_in_process_bytes(
    interpreter, posterior_workdir, capfd
):
    """With plots the figures come from the forked child: the process itself imports no
    more than without them (matplotlib included). The same PNG bytes three ways: drawn by
    the child, drawn in process after the child failed (its drawing raises: the parent
    draws them instead, and says nothing), and drawn in process by ``write_run`` (the
    explorer's and the search's path: here, in this process, on the same posterior)."""
    from lenasim.pipeline import run as pipeline
    from lenasim.pipeline.posterior import posterior_for
    from lenasim.simulation.scenario import load_scenario

    for name in ("child", "fallback"):
        case = interpreter.passed(name)
        assert case["stderr"] == "", (name, case["stderr"])
        assert case["tmp"] == [], (name, case["tmp"])  # the child's private folders are gone
    assert interpreter.stderr == ""
    out = interpreter.folder / "child/slow_escalation"
    child = _pngs(out)
    assert sorted(child) == ["cumulative.png", "dose.png", "per_cycle.png"]
    assert (out / "report.html").stat().st_size > 10_000
    assert _pngs(interpreter.folder / "fallback/slow_escalation") == child

    capfd.readouterr()
    sc = load_scenario(Path(SLOW_CFG))
    sc = sc.model_copy(update={"population": sc.population.model_copy(update={"patients": 20}),
                               "posterior": sc.posterior.model_copy(update={"draws": 5})})  # fmt: skip
    post = posterior_for("x", sc.posterior.spec, 5)
    pipeline.write_run(pipeline.simulate_run(sc, post), Path("inproc/slow_escalation"),
                       config_file=Path(SLOW_CFG))  # fmt: skip
    assert capfd.readouterr().err == ""
    assert _pngs(posterior_workdir / "inproc/slow_escalation") == child


def test_child_draws_every_run_as_in_process(interpreter, tmp_path):
    """The plot child expecting two runs draws both as this process draws them, and copies
    nothing for a third (see :data:`PLOT_CHILD`); the process that forked it imported
    neither matplotlib nor xarray."""
    from lenasim.outputs.figures.run import scenario_plots

    case = interpreter.passed("plot_child_two_runs")
    assert case["tmp"] == [], case["tmp"]  # the child's private folder is gone
    folder = interpreter.folder / "plot_child"
    assert not list((folder / "child2").iterdir())  # the third run: nothing copied
    for i, ds in enumerate(_plot_child_datasets()):
        here = scenario_plots(ds, tmp_path / f"here{i}")
        drawn = sorted((folder / f"child{i}").glob("*.png"))
        assert [p.name for p in drawn] == sorted(p.name for p in here)
        for p in here:
            assert (folder / f"child{i}" / p.name).read_bytes() == p.read_bytes(), (i, p.name)
