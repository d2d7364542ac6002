"""The plot child's split of a run's figures (a grandchild draws each figure but the first
where there are two cores) and the early fork of ``python -m lenasim run`` (lenasim.pipeline.plots).

The drawing function is a stand-in that writes each file with the pid that drew it, so
the split is seen directly; the PNG bytes of the real split are checked against drawing in
process by test_run_imports.py::test_child_draws_every_run_as_in_process (the child splits
on a machine of two cores or more).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lenasim.pipeline import plots

NAMES = ("per_cycle.png", "cumulative.png", "dose.png")

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _writer(fail_in_grandchild: bool = False):
    me = os.getpid()

    def draw(ds, out: Path, only: tuple[str, ...] = NAMES) -> None:
        if fail_in_grandchild and os.getpid() != me:
            raise RuntimeError("the grandchild fails")
        for name in only:
            (out / name).write_text(str(os.getpid()))

    return draw


def test_two_cores_a_grandchild_draws_each_figure_but_the_first(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "_cores", lambda: 2)
    plots._draw_split(None, tmp_path, _writer(), NAMES)
    who = {n: int((tmp_path / n).read_text()) for n in NAMES}
    assert who["per_cycle.png"] == os.getpid()
    others = {who["cumulative.png"], who["dose.png"]}
    assert len(others) == 2 and os.getpid() not in others  # two grandchildren, now ended
    for pid in others:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # and reaped: no zombie left behind


def test_failing_grandchildren_leave_their_figures_to_the_child(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "_cores", lambda: 2)
    plots._draw_split(None, tmp_path, _writer(fail_in_grandchild=True), NAMES)
    assert {n: int((tmp_path / n).read_text()) for n in NAMES} == dict.fromkeys(NAMES, os.getpid())


def test_one_core_draws_all_in_process(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "_cores", lambda: 1)
    plots._draw_split(None, tmp_path, _writer(), NAMES)
    assert {int((tmp_path / n).read_text()) for n in NAMES} == {os.getpid()}


class _FakeChild:
    def __init__(self, runs: int = 1) -> None:
        self.runs = runs
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("argv", "runs"),
    [
        (["run", "configs/a.yaml"], 1),
        (["run", "a.yaml", "b.yml", "--results", "out"], 2),
        (["run", "a_config_without_suffix"], 1),
        (["run", "--no-plots", "a.yaml"], None),
        (["run", "--no", "a.yaml"], None),  # argparse's abbreviation of --no-plots
        (["run", "-h"], None),
        (["run", "--help"], None),
        (["search", "configs/search_relapsed.yaml"], None),
        ([], None),
    ],
)
def test_start_early_forks_only_for_a_run_with_plots(argv, runs, monkeypatch):
    registered = []
    monkeypatch.setattr(plots, "PlotChild", _FakeChild)
    monkeypatch.setattr(plots, "can_fork", lambda: True)  # earlier tests may leave threads
    monkeypatch.setattr(plots.atexit, "register", registered.append)
    monkeypatch.setattr(plots, "_EARLY", [])
    plots.start_early(argv)
    child = plots.take_early()
    if runs is None:
        assert child is None and not registered
    else:
        assert isinstance(child, _FakeChild) and child.runs == runs
        assert registered == [child.close]  # closed at exit if the command never takes it
    assert plots.take_early() is None  # taken once


def test_the_command_closes_an_early_child_it_cannot_use(tmp_path, monkeypatch):
    """A config error, or --no-plots given in a form start_early did not see, closes the
    early child; a good run takes it (here: a run of a config that fails to load)."""
    from lenasim.cli import main

    early = _FakeChild()
    monkeypatch.setattr(plots, "_EARLY", [early])
    rc = None
    try:
        rc = main(["run", str(tmp_path / "missing.yaml"), "--quiet"])
    except SystemExit as exc:  # argparse-style exits count too
        rc = exc.code
    assert rc not in (None, 0)
    assert early.closed and plots.take_early() is None
