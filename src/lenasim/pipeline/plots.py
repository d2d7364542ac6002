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
search, the tests) draws the figures in its own process, as before. The command forks
the child once the configs are checked (:func:`lenasim.commands.run.cmd_run`); the child
then imports matplotlib while this process loads the posterior and simulates. This
module imports the standard library alone, so the fork could be anywhere; forking before
the command line's imports (``python -m lenasim``'s first lines) was tried and measured
near idle: the same wall time, ~0.1 s more CPU (benchmarks/README.md, run/e2e), so it is
not done.
"""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["PlotChild", "can_fork"]


def can_fork() -> bool:
    """Whether a plot child can be forked safely: a POSIX ``fork``, in a process with no
    other thread running (a fork copies only the calling thread; one holding a lock at
    that instant would leave it locked in the child)."""
    return hasattr(os, "fork") and threading.active_count() == 1


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
    from lenasim.outputs.figures.run import prepare_scenario_plots, scenario_plots

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
                scenario_plots(ds, folder / name)
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
        pid = os.fork()
        if pid == 0:  # the child: draw, and leave without running the parent's code
            code = 1
            try:
                os.close(self._requests)
                os.close(self._answers)
                _child(self.folder, requests_r, answers_w, runs)
                code = 0
            except BaseException:  # noqa: BLE001 - the parent sees its pipe close
                code = 1
            finally:
                os._exit(code)
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
