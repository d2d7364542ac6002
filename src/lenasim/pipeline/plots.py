"""A run's PNGs drawn in a forked child process, beside the parent's other work.

Importing matplotlib and drawing the three figures of a run is about as long as the rest of
`lenasim run` after the simulation (the mirrored trial, the caveats, the tables,
draws.nc, the manifest). On a machine with two cores the two can proceed at once: right
after the simulation, :class:`PlotChild` forks; the child (which shares the parent's
memory, the run's dataset included, copy-on-write) imports matplotlib and writes the PNGs
into a private temporary folder, while the parent carries on. :meth:`PlotChild.collect`
waits for the child and copies its PNGs into the results folder being built, before the
report (which embeds them) is written.

The figures are drawn by the same function as in process
(:func:`lenasim.outputs.figures.scenario_plots`), so the files are byte-identical either
way. A child that fails (or a platform without ``fork``) changes nothing but the time:
the parent then draws the figures itself. The child never prints, never runs the
parent's exit handlers (it leaves by ``os._exit``) and dies on SIGINT and SIGTERM;
a parent that stops early kills it and removes its folder (:meth:`PlotChild.discard`).

Only the command line forks (``run_job``): an in-process caller (the explorer, the
search, the tests) draws the figures in its own process, as before.
"""

from __future__ import annotations

import os
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


class PlotChild:
    """The PNGs of one run, drawn by a forked child (see the module docstring)."""

    def __init__(self, ds) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="lenasim-plots-"))
        self.pid: int | None = None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: draw, and leave without running the parent's code
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                from lenasim.outputs.figures import scenario_plots

                scenario_plots(ds, self.folder)
                code = 0
            except BaseException:  # noqa: BLE001 - the parent draws them instead
                code = 1
            finally:
                os._exit(code)
        self.pid = pid

    def collect(self, into: Path) -> bool:
        """Wait for the child; copy its PNGs into ``into``. False (nothing copied) if it
        failed: the caller then draws the figures itself."""
        from lenasim.outputs.figures import SCENARIO_PNGS

        try:
            ok = self._wait() == 0
            pngs = [self.folder / name for name in SCENARIO_PNGS]
            ok = ok and all(p.is_file() for p in pngs)
            if ok:
                for p in pngs:
                    shutil.copyfile(p, Path(into) / p.name)
            return ok
        finally:
            self.discard()

    def _wait(self) -> int:
        if self.pid is None:
            return -1
        pid, self.pid = self.pid, None
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    def discard(self) -> None:
        """Stop the child if it still runs and remove its folder (idempotent)."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._wait()
        shutil.rmtree(self.folder, ignore_errors=True)
