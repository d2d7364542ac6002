"""Shared fixtures: a synthetic posterior (builders.make_draws), in memory or written to
disk with lenasim.model.posterior.write_posterior when a test needs a file."""

from __future__ import annotations

import pytest

from builders import make_draws
from lenasim.core.hazard import HazardDraws


def pytest_configure(config):
    """One garbage collection at the session's end instead of pytest's five: pytest
    collects five times before it reports unraisable exceptions, and over the heap of
    the whole fast suite that took 3.8 s of CPU (issue 22.12). Unraisable exceptions of
    each test are still reported at the test; only ones freed at the very end may need
    another pass to show. A private pytest key: skipped if pytest renames it.

    The youngest generation is collected every 10,000 net allocations instead of 700:
    collection and the tests' pandas/xarray work allocate many short-lived containers,
    which refcounting frees anyway (GC time of tests/outputs + tests/model 1.75 -> 0.98 s
    with the freezing below; gc.callbacks, load 5, 16:48 UTC 2026-12-07; issue 22.12)."""
    import gc

    _private_cache(config)
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    try:
        from _pytest.unraisableexception import gc_collect_iterations_key
    except ImportError:
        return
    config.stash[gc_collect_iterations_key] = 1


def _private_cache(config) -> None:
    """The report's compiled templates (lenasim.outputs.report.html.cache_dir) go to a
    folder of this session, removed at its end, not the user's ~/.cache (subprocesses
    inherit it); unless the caller set LENASIM_CACHE_DIR."""
    import os
    import tempfile

    if "LENASIM_CACHE_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="lenasim-test-cache-")
        os.environ["LENASIM_CACHE_DIR"] = folder
        config.stash[_CACHE_KEY] = folder


_CACHE_KEY = pytest.StashKey[str]()


def pytest_unconfigure(config):
    import os
    import shutil

    folder = config.stash.get(_CACHE_KEY, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("LENASIM_CACHE_DIR", None)


def pytest_collection_finish(session):
    """The heap after collection (the libraries the test modules import, the test items)
    is moved out of the collector's sight: see :func:`pytest_runtest_teardown`."""
    _settle_heap()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After each test module (its module fixtures torn down), a full collection of what
    the module left, then ``gc.freeze()``: what survives (imported libraries, caches,
    session fixtures, pytest's reports) is not traversed again by later full collections.
    Without this, the full collections that Python starts as the heap grows walked the
    whole heap each time: 51 of them took 10.3 s of the fast suite's ~90 s of CPU, all
    collections 11.9 s; with it 106 (most of a small heap) took 2.5 s, all 3.5 s (measured
    with gc.callbacks, 16:32 and 16:36 UTC 2026-12-07, load 3-5; issue 22.12); peak RSS
    0.76 -> 0.77 GB. Garbage is still collected (each module's, before the freeze); only
    objects alive at a module's end that become cyclic garbage later wait for the
    unfreeze at the session's end."""
    yield
    if nextitem is None or nextitem.path != item.path:
        _settle_heap()


def pytest_sessionfinish(session):
    """The heap back in the collector's sight for pytest's last collection (unraisable
    exceptions of objects freed at the end)."""
    import gc

    gc.unfreeze()


def _settle_heap() -> None:
    import gc

    gc.collect()
    gc.freeze()


def pytest_report_header(config):
    """Say at the top of every session whether the browser tests can run."""
    import browser

    if browser.chromium() is not None:
        return [f"browser tests: Chromium at {browser.chromium()}"]
    if browser.in_ci():
        return ["browser tests: Chromium NOT FOUND and CI=true: they will fail"]
    return [f"browser tests: SKIPPED, Chromium not found; {browser.HOW_TO_RUN}"]


@pytest.fixture
def draws() -> HazardDraws:
    return make_draws()


@pytest.fixture
def posterior_workdir(tmp_path, monkeypatch):
    """A working folder with models/default.yaml (the repo's spec), a synthetic,
    up-to-date posterior models/default.nc of 60 draws and a copy of the shipped configs
    (configs/*.yaml, each naming ``posterior.spec: ../models/default.yaml``, which the
    shipped ones leave to the default); the cwd is set to it.

    Returns the folder. The configs refer to ../models/default.yaml and ../results,
    relative to themselves: this folder's.
    ``lenasim.model.fit`` is replaced by a stub that refuses to fit, so a test that reaches a
    missing or stale posterior fails fast instead of fitting (and PyMC is never loaded).
    Never call ``monkeypatch.undo()`` in a test using this fixture (it would leave the
    folder); use ``pytest.MonkeyPatch.context()``.
    """
    make_posterior_workdir(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory):
    """A results/ folder with two tiny finished runs of the shipped configs on the
    synthetic posterior (``slow_escalation``, ``standard_25mg``: 20 patients x 5 draws),
    made once per session. Tests copy it; never change it in place. Each run by its own
    command: ``run A B`` would also write their comparison, which no test reads (~0.3 s)."""
    from lenasim.cli import main

    root = tmp_path_factory.mktemp("finished_runs")
    with pytest.MonkeyPatch.context() as mp:
        make_posterior_workdir(root, mp)
        mp.chdir(root)
        for cfg in ("configs/slow_escalation.yaml", "configs/standard_25mg.yaml"):
            argv = ["run", cfg, "--patients", "20", "--draws", "5", "--no-plots", "--quiet"]
            assert main(argv) == 0
    return root / "results"


@pytest.fixture(scope="session")
def scenario_pngs(tmp_path_factory):
    """The three run figures of ``builders.make_run_dataset()`` written once by
    ``scenario_plots`` (the collector enabled, no figure prepared ahead), for the tests
    that check them (test_plots) and the ones that draw them again another way
    (test_plot_prepared): each drawing is ~0.5 s of CPU (issue 22.12). A namespace:
    ``paths`` (as returned), ``pngs`` (file name -> bytes), ``gc_enabled`` (the
    collector's state after), ``sizes`` (plotting function's name -> its figure's size in
    inches) and ``saved`` (file name -> the name of the plotting function whose figure was
    saved under it). Read only; the figures themselves are not kept."""
    import gc
    from types import SimpleNamespace

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
    maker = {id(fig): name for name, fig in made.items()}
    return SimpleNamespace(
        paths=paths, pngs={p.name: p.read_bytes() for p in paths}, gc_enabled=enabled,
        sizes={name: tuple(fig.get_size_inches()) for name, fig in made.items()},
        saved={file: maker.get(id(fig)) for file, fig in saved.items()},
    )  # fmt: skip


def make_posterior_workdir(folder, monkeypatch) -> None:
    """Fill ``folder`` as :func:`posterior_workdir` describes (without changing the cwd)
    and stub ``lenasim.model.fit`` through ``monkeypatch``. The synthetic posterior is
    written once per session and copied."""
    import shutil
    import sys
    import types

    from lenasim.core.errors import PosteriorError

    def fit_spec(*args, **kwargs):
        raise PosteriorError("fitting is disabled in the tests (tests/conftest.py)")

    stub = types.ModuleType("lenasim.model.fit")
    stub.fit_spec = fit_spec
    monkeypatch.setitem(sys.modules, "lenasim.model.fit", stub)

    # copied from a folder filled once per session (the configs' texts rewritten once)
    shutil.copytree(_workdir_template(), folder, dirs_exist_ok=True)


def name_local_spec(text: str) -> str:
    """A shipped config's text with ``posterior.spec: ../models/default.yaml`` added (if it
    names no spec): the shipped configs name none (they use the model shipped with
    lenasim); the copies in a test's folder use that folder's synthetic posterior."""
    import re

    line = "  spec: ../models/default.yaml\n"
    if re.search(r"^\s*spec:|[{,]\s*spec:", text, flags=re.M):
        return text  # names its spec already
    if re.search(r"^posterior:[ \t]*\{", text, flags=re.M):  # flow style
        return re.sub(r"^(posterior:[ \t]*\{)", r"\g<1>spec: ../models/default.yaml, ", text,
                      count=1, flags=re.M)  # fmt: skip
    if re.search(r"^posterior:[ \t]*\n", text, flags=re.M):
        return re.sub(r"^(posterior:[ \t]*\n)", r"\g<1>" + line, text, count=1, flags=re.M)
    return text.rstrip("\n") + "\nposterior:\n" + line


_POSTERIOR_CACHE: dict = {}


def _workdir_template():
    """What :func:`make_posterior_workdir` copies: configs/ (the shipped configs naming
    ../models/default.yaml; their paths: ../models, ../results) and models/ (the repo's
    spec and the synthetic posterior), made once per session."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    if "workdir" not in _POSTERIOR_CACHE:
        repo = Path(__file__).resolve().parents[1]
        folder = Path(tempfile.mkdtemp(prefix="lenasim-test-workdir-"))
        atexit.register(shutil.rmtree, folder, True)
        shutil.copytree(repo / "configs", folder / "configs")
        for cfg in (folder / "configs").glob("*.yaml"):
            cfg.write_text(name_local_spec(cfg.read_text()))
        (folder / "models").mkdir()
        shutil.copy(repo / "models" / "default.yaml", folder / "models" / "default.yaml")
        shutil.copy(_synthetic_posterior(repo), folder / "models" / "default.nc")
        _POSTERIOR_CACHE["workdir"] = folder
    return _POSTERIOR_CACHE["workdir"]


def _synthetic_posterior(repo):
    """models/default.nc for the repo's spec and evidence: 60 synthetic draws, written
    once per session (the attrs hold the hashes of the spec and evidence the run checks)."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    if "path" not in _POSTERIOR_CACHE:
        from lenasim.evidence.table import evidence_hash
        from lenasim.model.posterior import write_posterior
        from lenasim.model.spec import load_spec

        attrs = {
            "evidence_hash": evidence_hash(),
            "spec_hash": load_spec(repo / "models" / "default.yaml").hash(),
            "converged": 1,
            "created": "synthetic (tests/conftest.py)",
        }
        folder = Path(tempfile.mkdtemp(prefix="lenasim-test-posterior-"))
        atexit.register(shutil.rmtree, folder, True)
        _POSTERIOR_CACHE["path"] = write_posterior(
            folder / "default.nc", make_draws(60, seed=11), attrs
        )
    return _POSTERIOR_CACHE["path"]
