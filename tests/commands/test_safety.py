"""No data loss, no tracebacks (issue 11): what lenasim may replace, what an interrupt
leaves, and the messages (exit 2) for inputs and paths it refuses.

Every command is run through ``lenasim.cli.main`` (in process) or ``python -m lenasim``,
as a user would; "no traceback" is asserted on stderr each time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from helpers import cli
from lenasim.cli import main
from lenasim.core import writers
from lenasim.core.errors import ConfigError, EvidenceError, LenasimError
from lenasim.core.writers import check_output_folder, result_kind, write_atomically

REPO = Path(__file__).resolve().parents[2]
# The copy the posterior_workdir fixture makes: its paths lead to the synthetic posterior.
SLOW_CFG = Path("configs/slow_escalation.yaml")
TINY = ("--patients", "20", "--draws", "5", "--no-plots", "--quiet")


def config(folder: Path, file: str = "cfg", **changes) -> Path:
    """slow_escalation.yaml with keys changed: ``population__patients=5`` (``name__`` for
    the scenario name); written to ``folder/configs/<file>.yaml``."""
    data = yaml.safe_load(SLOW_CFG.read_text())
    for key, value in changes.items():
        *head, last = key.rstrip("_").split("__")
        node = data
        for k in head:
            node = node[k]
        node[last] = value
    path = folder / "configs" / f"{file}.yaml"  # beside the copies: its paths are ../
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def dead_pid() -> int:
    """The pid of a process that has finished."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------- what --overwrite replaces


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(posterior_workdir, capsys):
    """`name: models` with `--results . --overwrite` used to delete the model folder."""
    before = tree(posterior_workdir / "models")
    cfg = config(posterior_workdir, name__="models")
    rc, _, err = cli(capsys, "run", cfg, "--results", ".", "--overwrite", *TINY)
    assert rc == 2
    assert "models exists and is not a scenario run of lenasim" in err
    assert "with or without --overwrite" in err
    assert tree(posterior_workdir / "models") == before


def test_overwrite_never_replaces_a_users_folder_in_output(posterior_workdir, capsys):
    mine = posterior_workdir / "mine" / "slow_escalation"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--results", "mine", "--overwrite", *TINY)
    assert rc == 2 and "is not a scenario run of lenasim" in err
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in mine.parent.iterdir()) == ["slow_escalation"]


def test_a_file_is_never_turned_into_a_folder(posterior_workdir, capsys):
    """`name: README.md` used to turn the README into a folder."""
    readme = posterior_workdir / "README.md"
    readme.write_text("read me")
    cfg = config(posterior_workdir, name__="README.md")
    rc, _, err = cli(capsys, "run", cfg, "--results", ".", "--overwrite", *TINY)
    assert rc == 2 and "README.md exists and is a file" in err
    assert readme.read_text() == "read me"


def test_compare_out_never_replaces_a_run(posterior_workdir, finished_runs, capsys, monkeypatch):
    import shutil

    from lenasim.outputs.report import compare, comparison

    # what is checked is which folder is written, not its figures: compare draws none here
    monkeypatch.setattr(comparison, "comparison_plots", lambda *a, **k: None)
    monkeypatch.setattr(compare, "images", lambda *a, **k: [])
    shutil.copytree(finished_runs, posterior_workdir / "results")  # two tiny runs, made once
    run = posterior_workdir / "results" / "slow_escalation"
    other = "results/standard_25mg"
    before = tree(run)
    rc, _, err = cli(capsys, "compare", run, other, "--out", run, "--overwrite")
    assert rc == 2 and "is not a comparison of lenasim (it is a scenario run)" in err
    assert tree(run) == before
    # a comparison replaces a comparison with --overwrite
    out = posterior_workdir / "cmp"
    assert cli(capsys, "compare", run, other, "--out", out)[0] == 0
    assert result_kind(out) == "comparison"
    assert cli(capsys, "compare", run, other, "--out", out)[0] == 2
    assert cli(capsys, "compare", run, other, "--out", out, "--overwrite")[0] == 0


def test_run_replaces_its_own_result_but_not_a_look_alike(posterior_workdir, capsys):
    """Only the manifest's "lenasim_result" makes a folder a result (issue 21, item 1):
    a manifest with a run's keys but no kind is no longer taken for a run."""
    assert cli(capsys, "run", SLOW_CFG, *TINY)[0] == 0
    out = posterior_workdir / "results" / "slow_escalation"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["lenasim_result"] == "run"
    assert cli(capsys, "run", SLOW_CFG, *TINY)[0] == 2  # exists: needs --overwrite
    assert cli(capsys, "run", SLOW_CFG, "--overwrite", *TINY)[0] == 0
    del manifest["lenasim_result"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert result_kind(out) is None
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--overwrite", *TINY)
    assert rc == 2 and "has no manifest.json of lenasim" in err
    assert "lenasim_result" not in json.loads((out / "manifest.json").read_text())


def test_an_empty_folder_may_be_replaced(tmp_path):
    (tmp_path / "out").mkdir()
    write_atomically(tmp_path / "out", lambda t: (t / "a.txt").write_text("a"), kind="validation",
                     overwrite=False)  # fmt: skip
    assert (tmp_path / "out" / "a.txt").read_text() == "a"
    assert result_kind(tmp_path / "out") == "validation"


@pytest.mark.parametrize("kind", ["validation", "comparison"])
def test_writer_refuses_a_result_of_another_kind(posterior_workdir, capsys, kind):
    assert cli(capsys, "run", SLOW_CFG, *TINY)[0] == 0
    run = posterior_workdir / "results" / "slow_escalation"
    before = tree(run)
    built = []
    with pytest.raises(LenasimError, match="it is a scenario run"):
        write_atomically(run, built.append, kind=kind, overwrite=True)
    assert not built and tree(run) == before


def test_a_manifest_of_another_tool_is_not_a_result(tmp_path):
    out = tmp_path / "x"
    out.mkdir()
    (out / "manifest.json").write_text('{"kind": "run", "name": "webapp"}')
    assert result_kind(out) is None
    with pytest.raises(LenasimError, match="has no manifest.json of lenasim"):
        write_atomically(out, lambda t: None, kind="run", overwrite=True)
    assert (out / "manifest.json").read_text() == '{"kind": "run", "name": "webapp"}'


def test_a_link_is_never_replaced(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(LenasimError, match="symbolic link"):
        write_atomically(tmp_path / "link", lambda t: None, kind="run", overwrite=True)
    assert (tmp_path / "link").is_symlink()


# ------------------------------------------------------------------- paths, before work


def test_output_paths_are_checked_before_simulating(posterior_workdir, capsys, monkeypatch):
    from lenasim.pipeline import run as run_cmd

    monkeypatch.setattr(run_cmd, "load_posteriors", lambda *a, **k: pytest.fail("loaded"))
    (posterior_workdir / "afile").write_text("x")
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--results", "afile", *TINY)
    assert rc == 2 and "afile is a file, not a folder" in err
    assert str(SLOW_CFG) in err  # the config whose output it is
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--results", "afile/deeper/still", *TINY)
    assert rc == 2 and "afile is a file, not a folder" in err
    assert (posterior_workdir / "afile").read_text() == "x"


def test_an_unwritable_output_folder_is_refused_before_simulating(posterior_workdir, capsys,
                                                                  monkeypatch):  # fmt: skip
    from lenasim.pipeline import run as run_cmd

    monkeypatch.setattr(run_cmd, "load_posteriors", lambda *a, **k: pytest.fail("loaded"))
    locked = posterior_workdir / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(writers.os, "access",
                        lambda p, mode: Path(p) != locked and real_access(p, mode))  # fmt: skip
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--results", locked, *TINY)
    assert rc == 2 and f"no permission to write into {locked}" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_read_only_folder_is_refused(posterior_workdir, capsys):
    locked = posterior_workdir / "locked"
    locked.mkdir(mode=0o555)
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--results", locked, *TINY)
    assert rc == 2 and "no permission" in err


def test_a_name_too_long_for_the_file_system(tmp_path, capsys):
    out = tmp_path / ("x" * 250)
    rc, _, err = cli(capsys, "compare", tmp_path / "a", tmp_path / "b", "--out", out)
    assert rc == 2 and "too long for the file system" in err
    assert len(err) < 400  # the name is shortened in the message


def test_the_comparison_folder_of_run_a_b_is_checked_before_the_runs(posterior_workdir, capsys):
    other = config(posterior_workdir, "other", name__="other")
    mine = posterior_workdir / "results" / "compare-slow_escalation-vs-other"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    rc, _, err = cli(capsys, "run", SLOW_CFG, other, "--overwrite", *TINY)
    assert rc == 2 and "is not a comparison of lenasim" in err
    assert sorted(p.name for p in mine.parent.iterdir()) == [mine.name]  # no run started
    assert (mine / "notes.txt").read_text() == "mine"


# --------------------------------------------------- temporary folders, permissions


def test_temporary_folders_of_killed_runs_are_removed_by_the_next_run(posterior_workdir, capsys):
    results = posterior_workdir / "results"
    results.mkdir()
    dead, alive = dead_pid(), os.getppid()  # pytest's parent process is running
    stale = results / f".slow_escalation.partial-{dead}-0123abcd"
    legacy = results / ".slow_escalation.partial-k2j4h5g6"  # mkdtemp's, lenasim < 0.2
    running = results / f".slow_escalation.partial-{alive}-0123abcd"
    other = results / f".other.partial-{dead}-0123abcd"
    for d in (stale, legacy, running, other):
        d.mkdir()
        (d / "draws.nc").write_text("half")
    assert cli(capsys, "run", SLOW_CFG, *TINY)[0] == 0
    left = sorted(p.name for p in results.iterdir())
    assert left == sorted([running.name, other.name, "slow_escalation"])


def test_a_result_moved_aside_by_a_killed_replacement_is_put_back(tmp_path):
    out = tmp_path / "run"
    aside = tmp_path / f".run.old-{dead_pid()}-0123abcd"
    aside.mkdir()
    (aside / "manifest.json").write_text('{"lenasim_result": "run"}')
    partial = tmp_path / f".run.partial-{dead_pid()}-0123abcd"
    partial.mkdir()
    assert writers.remove_stale_siblings(out) == [aside, partial]
    assert result_kind(out) == "run" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with pytest.raises(LenasimError, match="already exists"):  # the result is back
        write_atomically(out, lambda t: None, kind="run", overwrite=False)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_result_folders_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_atomically(tmp_path / "a" / "out", lambda t: (t / "f.csv").write_text("x"),
                         kind="comparison", overwrite=False)  # fmt: skip
    finally:
        os.umask(old)
    for p, full in ((tmp_path / "a", 0o777), (tmp_path / "a/out", 0o777),
                    (tmp_path / "a/out/f.csv", 0o666)):  # fmt: skip
        assert p.stat().st_mode & 0o777 == full & ~umask, p


# --------------------------------------------------------------------------- interrupts


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_simulation_saves_nothing(posterior_workdir, capsys, monkeypatch,
                                                      sig):  # fmt: skip
    from lenasim.simulation import engine

    def simulate_scenario(*args, **kwargs):
        os.kill(os.getpid(), sig)
        pytest.fail("the signal did not interrupt")

    monkeypatch.setattr(engine, "simulate_scenario", simulate_scenario)
    rc, _, err = cli(capsys, "run", SLOW_CFG, *TINY)
    assert rc == 130 and f"interrupted ({sig.name})" in err
    assert not (posterior_workdir / "results").exists() or not any(
        (posterior_workdir / "results").iterdir()
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after main


def test_sigterm_while_writing_removes_the_partial_folder(posterior_workdir, capsys, monkeypatch):
    from lenasim.pipeline import run as run_cmd

    assert cli(capsys, "run", SLOW_CFG, *TINY)[0] == 0
    out = posterior_workdir / "results" / "slow_escalation"
    before = tree(out)

    def write_tables(ds, tmp):
        (tmp / "per_cycle.csv").write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(run_cmd, "write_tables", write_tables)
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--overwrite", *TINY)
    assert rc == 130 and "interrupted (SIGTERM)" in err
    assert tree(out) == before  # the earlier result is intact
    assert sorted(p.name for p in out.parent.iterdir()) == ["slow_escalation"]


# The SIGINT case hung once in 2 fresh-clone CI runs on 2026-12-07 (no exit within 60 s;
# it passed in every other run): marked a known flake until its cause is found (closing
# note of that session). The SIGTERM case and the in-process SIGINT tests still assert.
# SIGTERM with the plot child `python -m lenasim run` forks at its start (the parent's
# stderr reaches its end only once the child is gone too); SIGINT with --no-plots, which
# forks none: the child's warm-up (matplotlib's import, ~0.35 s of CPU) paid once (issue
# 22.12). The parent's path to the FIFO and its handling of the signal are the same.
@pytest.mark.parametrize(("sig", "plots"), [(signal.SIGTERM, []), (signal.SIGINT, ["--no-plots"])],
                         ids=[str(int(signal.SIGTERM)), str(int(signal.SIGINT))])  # fmt: skip
def test_python_dash_m_lenasim_exits_130_on_a_signal(tmp_path, sig, plots):
    """A real process, signalled while it waits to read its config (a FIFO): exit 130.

    The signal is sent as soon as lenasim has the FIFO open, which is when a blocking
    read would race it (a signal between open() and read() was handled only when the
    read returned: never; it hung once in a CI run; 240 runs under load did not repeat it,
    the next test makes the race on purpose). If it hangs again, the
    child's Python stack is dumped (faulthandler, on SIGABRT) into the failure."""
    fifo = tmp_path / "cfg.yaml"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lenasim", "run", str(fifo), *plots], cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        while True:  # opening for writing succeeds once lenasim has opened it to read
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.05)
        proc.send_signal(sig)  # lenasim is now blocked reading the config
        try:
            err = proc.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            pytest.fail(f"no exit 60 s after {sig.name}; its stack:\n{proc.communicate()[1]}")
        finally:
            os.close(fd)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert f"lenasim run: interrupted ({sig.name})" in err and "Traceback" not in err


RACE = """
import _thread, os, sys, threading, time
from lenasim.core.interrupts import handle_interrupts
from lenasim.core.yamlio import read_bytes
fifo = sys.argv[1]
def writer():  # a writer that connects and never writes: the reader waits
    fd = os.open(fifo, os.O_WRONLY)
    time.sleep(0.5)
    _thread.interrupt_main()  # the handler is due, but no syscall is interrupted
    time.sleep(120)
threading.Thread(target=writer, daemon=True).start()
with handle_interrupts():
    try:
        read_bytes(fifo, 100)
    except KeyboardInterrupt:
        print("interrupted")
"""


def test_a_signal_between_open_and_read_of_a_fifo_still_stops_the_wait(tmp_path):
    """The race behind a hang seen once in CI: a signal whose Python handler is due
    while the read has not begun. ``_thread.interrupt_main`` makes exactly that state (the
    handler is pending, no system call is interrupted); a plain blocking read then waits
    forever, ``read_bytes`` returns to Python within 0.2 s and the handler runs."""
    fifo = tmp_path / "cfg.yaml"
    os.mkfifo(fifo)
    res = subprocess.run([sys.executable, "-c", RACE, str(fifo)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert res.stdout.strip() == "interrupted", res.stderr[-2000:]


def _fit_workdir(tmp_path: Path, monkeypatch) -> Path:
    """models/default.yaml with a good (synthetic) posterior; PyMC and the model graph
    stubbed, so that only fit_spec's own logic runs."""
    import shutil

    from conftest import make_draws
    from lenasim.evidence.table import evidence_hash
    from lenasim.model.posterior import write_posterior
    from lenasim.model.spec import load_spec

    (tmp_path / "models").mkdir()
    spec = tmp_path / "models" / "default.yaml"
    shutil.copy(REPO / "models" / "default.yaml", spec)
    attrs = {"evidence_hash": evidence_hash(), "spec_hash": load_spec(spec).hash(), "converged": 1}
    write_posterior(tmp_path / "models" / "default.nc", make_draws(20), attrs)
    monkeypatch.chdir(tmp_path)
    # The real modules are imported before anything is stubbed: a module imported for the
    # first time under the stubs would keep them (its top-level `from ... import` binds
    # them) for the rest of the session. `load_data` is replaced wherever it was bound.
    import lenasim.commands.fit as command
    import lenasim.model.fit as fit

    monkeypatch.setitem(sys.modules, "pymc", types.ModuleType("pymc"))
    graph = types.ModuleType("lenasim.model.graph")  # reached only through Fitter (stubbed)
    monkeypatch.setitem(sys.modules, "lenasim.model.graph", graph)
    fake = lambda spec, rows=None, *a, **k: types.SimpleNamespace(  # noqa: E731
        rows=[1], trials=["t"], patients=None)  # fmt: skip
    monkeypatch.setattr(fit, "load_data", fake)
    monkeypatch.setattr(command, "load_data", fake)
    return tmp_path


def _partial_trace(chains: int, draws: int):
    post = xr.Dataset({"tau": (("chain", "draw"), np.zeros((chains, draws)))})
    return types.SimpleNamespace(posterior=post)


def _fake_fitter(sample):
    """A stand-in for lenasim.model.fit.Fitter whose sampling is ``sample()`` (a trace)."""

    class FakeFitter:
        def __init__(self, spec, data=None, **kw):
            pass

        def sample(self, **kw):
            return types.SimpleNamespace(idata=sample(), seconds={})

        def prior(self, *args, **kw):
            pytest.fail("an incomplete or interrupted sample reached the prior draws")

    return FakeFitter


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_fit_saves_nothing_even_allowed_unconverged(tmp_path, capsys,
                                                                   monkeypatch, sig):  # fmt: skip
    """nutpie and PyMC catch the interrupt and return the draws so far."""
    import lenasim.model.fit as fit

    work = _fit_workdir(tmp_path, monkeypatch)
    before = tree(work / "models")

    def sample():
        try:
            os.kill(os.getpid(), sig)
        except KeyboardInterrupt:  # as the samplers do: stop and return what there is
            return _partial_trace(4, 3)
        pytest.fail("the signal did not interrupt")

    monkeypatch.setattr(fit, "Fitter", _fake_fitter(sample))
    rc, _, err = cli(capsys, "fit", "models/default.yaml", "--allow-unconverged", "--no-plots",
                     "--quiet")  # the work folder's copy (default: the shipped spec)  # fmt: skip
    assert rc == 130 and f"interrupted ({sig.name})" in err
    assert tree(work / "models") == before  # the good posterior untouched, no temp file


def test_an_incomplete_sample_is_never_saved(tmp_path, capsys, monkeypatch):
    """A partial trace without a recorded signal (e.g. fit_spec called from Python
    outside the command line) is refused by its size."""
    import lenasim.model.fit as fit

    work = _fit_workdir(tmp_path, monkeypatch)
    before = tree(work / "models")
    monkeypatch.setattr(fit, "Fitter", _fake_fitter(lambda: _partial_trace(4, 0)))
    rc, _, err = cli(capsys, "fit", "models/default.yaml", "--allow-unconverged", "--no-plots",
                     "--quiet")  # the work folder's copy (default: the shipped spec)  # fmt: skip
    assert rc == 2 and "returned 4 chain(s) x 0 draws, not the 4 x 1000 asked for" in err
    assert tree(work / "models") == before
    with pytest.raises(LenasimError, match="nothing was saved"):
        fit.check_complete(_partial_trace(3, 1000), draws=1000, chains=4)
    fit.check_complete(_partial_trace(4, 1000), draws=1000, chains=4)  # complete: no error


# ------------------------------------------------------------- inputs: messages, exit 2


@pytest.fixture
def low_memory(monkeypatch):
    """1 GB of memory available, one thread; loading a posterior fails the test."""
    from lenasim.pipeline import memory
    from lenasim.pipeline import run as run_cmd

    monkeypatch.setattr(memory, "available_memory", lambda: 2**30)
    monkeypatch.setenv("LENASIM_THREADS", "1")
    monkeypatch.setattr(run_cmd, "load_posteriors", lambda *a, **k: pytest.fail("loaded"))
    return run_cmd


def test_a_cohort_too_large_for_memory_is_refused_with_the_estimate(posterior_workdir, capsys,
                                                                    low_memory):  # fmt: skip
    rc, _, err = cli(capsys, "run", SLOW_CFG, "--patients", "4000000000", "--no-plots")
    assert rc == 2
    # 112 bytes a patient (engine.memory_estimate): 4e9 x 112 B = 417.2 GiB
    assert "needs about 417.2 GB of memory at once (417.2 GB: 4,000,000,000 patients, 112 " in err
    assert "this machine has 1.0 GB available" in err
    assert "population.patients: use fewer patients (at most about 9,5" in err
    from argparse import Namespace

    ok = Namespace(configs=[str(SLOW_CFG)], patients=1_000_000, draws=5, results=None,
                   overwrite=False)  # fmt: skip
    assert (
        len(low_memory.prepare_jobs(ok.configs, patients=ok.patients, draws=ok.draws)) == 1
    )  # 1e6 patients (~100 MB) fit


def test_schedules_with_huge_state_tables_are_refused(posterior_workdir, capsys, low_memory):
    cfg = config(posterior_workdir, regimen={
        "cycle_days": 28, "days_on": [1, 21], "start_mg": 2.5, "target_mg": 80,
        "escalation": {"step_mg": 2.5, "every": 1, "unit": "weeks"}, "cycles": 120})  # fmt: skip
    rc, _, err = cli(capsys, "run", cfg, "--patients", "1000", "--draws", "1000", "--no-plots")
    assert rc == 2 and "for the state tables of 32 dose levels over 120 cycles" in err
    assert "regimen: use fewer dose levels" in err


@pytest.mark.parametrize("value", ["0", "abc", "1e3", "-2", "999", "2.5"])
def test_an_invalid_lenasim_threads_is_a_message(posterior_workdir, capsys, monkeypatch, value):
    monkeypatch.setenv("LENASIM_THREADS", value)
    rc, _, err = cli(capsys, "run", SLOW_CFG, *TINY)
    assert rc == 2 and f"LENASIM_THREADS={value!r}: must be a whole number" in err
    assert not (posterior_workdir / "results").exists()


def test_a_valid_lenasim_threads_is_used(monkeypatch):
    from lenasim.simulation.engine import thread_count

    monkeypatch.setenv("LENASIM_THREADS", "3")
    assert thread_count(None) == 3


def test_seed_too_large(posterior_workdir, capsys):
    rc, _, err = cli(capsys, "run", REPO / "tests/configs_bad/seed_too_large.yaml")
    assert rc == 2 and "seed: must be <=" in err


@pytest.mark.parametrize(
    "argv",
    [["fit", "--seed", str(2**64)], ["fit", "--seed", "-1"], ["fit", "--draws", "0"],
     ["fit", "--chains", "two"], ["validate", "--prior-scale", "inf"],
     ["validate", "--prior-scale", "0"], ["validate", "--tune", "-5"]],
)  # fmt: skip
def test_bad_command_line_numbers_are_messages(capsys, argv):
    with pytest.raises(SystemExit) as exc:  # argparse: a message and exit 2
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[1]}: must be" in err and "Traceback" not in err


def test_model_spec_errors_use_the_shared_formatter(tmp_path):
    from lenasim.model.spec import load_spec

    text = (REPO / "models" / "default.yaml").read_text()
    bad = tmp_path / "typo.yaml"
    bad.write_text(text + "\nsampler: {draw: 10}\n")
    with pytest.raises(ConfigError, match=r"sampler: given twice \(lines \d+ and \d+\)"):
        load_spec(bad)
    data = yaml.safe_load(text)
    data["sampler"] = {"draw": 10, "backend": "nutpy"}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_spec(bad)
    msg = str(err.value)
    assert f"{bad}: sampler.draw: unknown key; did you mean 'draws'?" in msg
    assert f"{bad}: sampler.backend: must be one of pymc, nutpie (got 'nutpy'); " in msg
    bad.write_bytes(text.encode("utf-8") + b"\n# \xff\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: line \d+: not UTF-8 text \(byte 0xff\)"):
        load_spec(bad)


def test_a_duplicate_arm_id_in_arms_yaml_names_both_lines(tmp_path):
    from lenasim.evidence.table import load_arms

    text = (REPO / "src/lenasim/evidence/data/arms.yaml").read_text()
    first = text.index("  chanan_khan_2006_a:")
    block = text[first : text.index("  chanan_khan_2006_b:")]
    p = tmp_path / "arms.yaml"
    p.write_text(text + block)
    line1 = text[:first].count("\n") + 1
    line2 = text.count("\n") + 1
    with pytest.raises(EvidenceError) as err:
        load_arms(p)
    assert str(err.value) == (
        f"{p}: arms.chanan_khan_2006_a: given twice (lines {line1} and {line2}); keep one "
        f"(line {line2})"
    )


def test_evidence_csv_never_overwrites_without_asking(tmp_path, capsys):
    dest = tmp_path / "table.csv"
    dest.write_text("mine")
    rc, _, err = cli(capsys, "evidence", "--csv", dest)
    assert rc == 2 and "already exists; pass --overwrite" in err
    assert dest.read_text() == "mine"
    assert cli(capsys, "evidence", "--csv", dest, "--overwrite")[0] == 0
    assert dest.read_text().startswith("row_id,")
    rc, _, err = cli(capsys, "evidence", "--csv", tmp_path)
    assert rc == 2 and "not a regular file" in err


def test_evidence_csv_never_writes_into_the_package(capsys):
    import lenasim

    data = Path(lenasim.__file__).parent / "evidence" / "data" / "evidence.csv"
    before = data.read_bytes()
    try:
        rc, _, err = cli(capsys, "evidence", "--csv", data, "--overwrite")
        assert rc == 2 and "inside the lenasim package" in err
        rc, _, err = cli(capsys, "evidence", "--csv", data.parent / "new.csv")
        assert rc == 2 and not (data.parent / "new.csv").exists()
        assert data.read_bytes() == before
    finally:  # should the guard ever break, leave the package's data as it was
        if data.read_bytes() != before:
            data.write_bytes(before)
        (data.parent / "new.csv").unlink(missing_ok=True)


def test_os_errors_are_messages(capsys, monkeypatch):
    """The file system's own refusals (disk full, ...) are a message, not a traceback."""
    from lenasim.commands import evidence

    def full(*a, **k):
        raise OSError(28, "No space left on device", "table.csv")

    monkeypatch.setattr(evidence, "load_evidence", full)  # --csv's reader
    monkeypatch.setattr(evidence, "evidence_rows", full)  # the printed table's
    rc, _, err = cli(capsys, "evidence")
    assert rc == 2 and err.strip() == (
        "lenasim evidence: error: No space left on device: table.csv"
    )


def test_a_restored_result_is_explained_before_any_work(tmp_path):
    """Issue 21 item 11: the earlier result that a killed replacement had moved aside is
    put back when the folder is checked (before any work), and the refusal says why the
    folder 'already exists' although the user saw it missing."""
    out = tmp_path / "run"
    aside = tmp_path / f".run.old-{dead_pid()}-0123abcd"
    aside.mkdir()
    (aside / "manifest.json").write_text('{"lenasim_result": "run"}')
    with pytest.raises(LenasimError, match="already exists \\(lenasim has just put back"):
        check_output_folder(out, "run", overwrite=False)
    assert result_kind(out) == "run" and not aside.exists()
    with pytest.raises(LenasimError, match="already exists; pass --overwrite"):
        check_output_folder(out, "run", overwrite=False)  # nothing restored this time
