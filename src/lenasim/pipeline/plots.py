"""A run's PNGs drawn by a forked child process, beside the parent's other work.

Importing matplotlib and drawing the three figures of a run take about as long as the
rest of `lenasim run` after its imports. On a machine with two cores the two can proceed
at once. :class:`PlotChild` forks a child that imports what drawing needs (the figure
modules, matplotlib) while the parent goes on with its own work. Right after each
simulation
the parent hands the run's dataset to the child (:meth:`PlotChild.draw`: a pickle in the
child's private temporary folder, its name through a pipe) and goes on with the mirrored
trial, the caveats, the tables, draws.nc and the manifest; :meth:`PlotChild.collect`
then waits for the child's answer and copies its PNGs into the results folder being
built, before the report (which embeds them) is written.

The figures are drawn by the same function as in process
(:func:`lenasim.outputs.figures.scenario_plots`), so the files are byte-identical either
way. A child that fails, or dies, or a platform without ``fork``, changes nothing but
the time: the parent then draws the figures itself. The child never prints, never runs
the parent's exit handlers (it leaves by ``os._exit``), dies on SIGINT and SIGTERM, and
ends once it has answered the number of runs it was told to expect, or when the parent
closes its pipe (:meth:`PlotChild.close`, also at the parent's exit); its folder is
removed by the parent's close.

Only the command line forks (``lenasim run``): an in-process caller (the explorer, the
search, the tests) draws the figures in its own process, as before. ``python -m lenasim
run`` forks the child once NumPy and the dataset's module are imported (both processes
need them: imported once), before the rest of the command line's imports
(:func:`start_early`, from ``lenasim.__main__``; this module imports the standard library
alone), so that
matplotlib's import uses the core the imports leave idle; the command takes it
(:func:`take_early`) or closes it (a config error), and forks one itself once the configs
are checked when it was not started so (another caller of ``lenasim.cli.main``). Once the
dataset comes, the child draws one figure and a grandchild each of the others
(:func:`_draw_split`). Measured near idle on 2 cores (2026-12-07, 21 alternated rounds,
with BLAS on one thread as ``__main__`` sets it for ``run``): 1.01 s against 1.09 s for
the fork after the config checks (benchmarks/README.md, run/e2e). An earlier A/B of the
early fork (same day, before pandas left the run path) found no gain: the parent's own
work was then the longer path.
"""

from __future__ import annotations

import atexit
import gc
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["PlotChild", "can_fork", "start_early", "take_early"]


def can_fork() -> bool:
    """Whether a plot child can be forked safely: a POSIX ``fork``, in a process with no
    other thread running (a fork copies only the calling thread; one holding a lock at
    that instant would leave it locked in the child)."""
    return hasattr(os, "fork") and threading.active_count() == 1


_EARLY: list[PlotChild] = []  # the child forked by start_early, until the command takes it


def start_early(argv: list[str]) -> None:
    """Fork the plot child now, before the command line's imports, if ``argv`` (``python
    -m lenasim``'s arguments) asks for a run with plots: no option starting ``--n``
    (argparse would read it as ``--no-plots``), no ``-h``. It expects one run per YAML
    file named (more are drawn by the parent; fewer leave it waiting until closed). A
    child the command does not use is closed by it, or at exit (bad arguments)."""
    if argv[:1] != ["run"] or any(a.startswith("--n") or a in ("-h", "--help") for a in argv):
        return
    if can_fork() and not _EARLY:
        runs = sum(a.endswith((".yaml", ".yml")) for a in argv[1:]) or 1
        child = PlotChild(runs=runs)
        atexit.register(child.close)
        _EARLY.append(child)


def take_early() -> PlotChild | None:
    """The child :func:`start_early` forked, once (None if it forked none)."""
    return _EARLY.pop() if _EARLY else None


def _child(folder: Path, requests: int, answers: int, runs: int) -> None:
    """The child's loop: warm up, then draw each dataset named on ``requests``; answer
    one byte per request (0 drawn, 1 failed) on ``answers``. Returns after ``runs``
    requests (the number expected: the empty figures are built ahead for each), or at
    end of file."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # No cyclic garbage collection while importing and drawing (~0.05-0.08 s of this
    # process's ~1.2 s of CPU: matplotlib's objects set off collections that free
    # nothing); the figures' reference cycles are collected after an answer when another
    # run is expected (~0.05 s), while the parent writes the report; not after the last:
    # this process then ends.
    gc.disable()
    # What drawing needs, imported now, beside the parent's imports and simulation, not
    # once the dataset has come: the figures, what a run's dataset unpickles with (NumPy
    # only), and all of matplotlib the figures use (its figure, axes and Agg canvas,
    # Pillow: ~0.3 s of CPU); and the figures' empty panels built (~0.05 s). This module
    # imports none of them at its top: `run --no-plots` imports no figure module.
    import lenasim.simulation.dataset  # noqa: F401
    from lenasim.outputs.figures.mpl import mpl
    from lenasim.outputs.figures.run import (
        SCENARIO_PNGS,
        prepare_scenario_plots,
        scenario_plots,
    )

    mpl()
    prepare_scenario_plots()

    with os.fdopen(requests, "rb", buffering=0) as inbox:
        while True:
            line = b""
            while not line.endswith(b"\n"):
                chunk = inbox.read(1)
                if not chunk:
                    return
                line += chunk
            name = line.decode().strip()
            ds = None
            try:
                ds = pickle.loads((folder / f"{name}.pickle").read_bytes())
                _draw_split(ds, folder / name, scenario_plots, SCENARIO_PNGS)
                status = b"\0"
            except Exception:  # noqa: BLE001 - the parent draws them instead
                status = b"\1"
            os.write(answers, status)
            del ds
            runs -= 1
            if runs <= 0:
                # the last run expected: this process ends now, its teardown (~0.02 s)
                # beside the parent's report, not in the parent's wait at its end; a
                # request after it fails (the pipe is closed) and the parent draws
                return
            gc.collect()
            prepare_scenario_plots()  # for the next run


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _forked(work) -> int:
    """Fork a process that runs ``work()`` and leaves by ``os._exit`` (0 done, 1 failed),
    never running this process's code or exit handlers; return its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        except BaseException:  # noqa: BLE001 - the exit code says it
            code = 1
        finally:
            os._exit(code)
    return pid


def _draw_split(ds, out: Path, draw, names: tuple[str, ...]) -> None:
    """``draw(ds, out, only=...)`` of ``names`` in several processes where there are two
    cores or more: one grandchild per figure but the first, forked now (matplotlib
    imported and the empty figures built: a cheap copy-on-write fork), while this process
    draws the first.

    Measured near idle on 2 cores (2026-12-07, slow_escalation): each figure takes
    ~0.17 s of CPU. With the three drawn in this process the run ended ~0.12 s later than
    with the last in a grandchild; with each of the last two in a grandchild of its own,
    ~0.03 s sooner than that (25 alternated rounds: 0.966 s against 1.000 s; CPU 1.71 s
    against 1.64 s): this process, drawing two, was the last to finish while the parent,
    done with its own work, waited for it (benchmarks/README.md, run/e2e). A grandchild
    that fails leaves its figure to this process (the same bytes: each figure is drawn on
    its own)."""
    if len(names) < 2 or _cores() < 2:
        draw(ds, out)
        return
    mine, others = names[:1], [names[i : i + 1] for i in range(1, len(names))]
    # each failure: drawn here (below)
    forked = [(_forked(lambda only=only: draw(ds, out, only=only)), only) for only in others]
    failed = []
    try:
        draw(ds, out, only=mine)
    finally:
        for pid, only in forked:
            _, status = os.waitpid(pid, 0)
            if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                failed.append(only)
    for only in failed:
        draw(ds, out, only=only)


class PlotChild:
    """A forked child that draws runs' PNGs (see the module docstring)."""

    def __init__(self, runs: int = 1) -> None:
        """Fork the child; ``runs``: the number of runs it draws (it builds each one's
        empty figures ahead, and ends after the last; the parent draws any more)."""
        self.folder = Path(tempfile.mkdtemp(prefix="lenasim-plots-"))
        self._sent = 0
        requests_r, self._requests = os.pipe()
        self._answers, answers_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()

        def work() -> None:  # (a failure: the parent sees its pipe close)
            os.close(self._requests)
            os.close(self._answers)
            _child(self.folder, requests_r, answers_w, runs)

        pid = _forked(work)
        os.close(requests_r)
        os.close(answers_w)
        self.pid: int | None = pid

    def draw(self, ds) -> str | None:
        """Hand ``ds`` to the child; return the request's name for :meth:`collect` (None if
        the child is gone: the caller draws the figures itself)."""
        if self.pid is None:
            return None
        self._sent += 1
        name = f"run{self._sent}"
        try:
            (self.folder / f"{name}.pickle").write_bytes(
                pickle.dumps(ds, protocol=pickle.HIGHEST_PROTOCOL)
            )
            os.write(self._requests, f"{name}\n".encode())
        except (OSError, pickle.PicklingError):
            return None
        return name

    def collect(self, name: str | None, into: Path) -> bool:
        """Wait for the child's answer to request ``name``; copy its PNGs into ``into``.
        False (nothing copied) if it failed: the caller then draws the figures itself.
        Requests are answered in the order they were made: collect each before the next
        :meth:`draw`."""
        if name is None or self.pid is None:
            return False
        try:
            ok = os.read(self._answers, 1) == b"\0"
        except OSError:
            ok = False
        pngs = sorted((self.folder / name).glob("*.png")) if ok else []
        ok = ok and bool(pngs)
        if ok:
            for p in pngs:
                shutil.copyfile(p, Path(into) / p.name)
        return ok

    def close(self) -> None:
        """End the child (closing its pipe; killed if it does not end at once) and remove
        its folder. Idempotent."""
        if self.pid is not None:
            pid, self.pid = self.pid, None
            for fd in (self._requests, self._answers):
                try:
                    os.close(fd)
                except OSError:
                    pass
            try:
                os.kill(pid, signal.SIGKILL)  # it may be drawing; its work is not needed
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
        shutil.rmtree(self.folder, ignore_errors=True)
