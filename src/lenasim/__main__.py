"""``python -m lenasim``: the command line (lenasim.cli), as a short-lived process."""

import gc
import os
import sys

# A command-line process allocates many objects while importing NumPy, pandas and
# matplotlib, and few of them die young: collecting the youngest generation every 700
# allocations (Python's default) cost `lenasim run` ~0.1-0.2 s in ~260 collections.
gc.set_threshold(50_000, 50, 50)

# `run` with plots: the child that draws the figures is forked first, once what both
# processes use is imported (NumPy, the figure modules, the run dataset's class: ~0.12 s
# of CPU, once, not twice) and before the command line's own imports (pydantic, the
# scenario schema, ...), so that it imports matplotlib while this process imports the
# command line (lenasim.pipeline.plots). Measured against forking before NumPy (0.13 s of
# CPU more per run, no faster) and forking in the command (the other core idle while
# this process imports the command line): benchmarks/README.md, run/e2e.
from lenasim.pipeline.plots import start_early, wants_early  # noqa: E402

if wants_early(sys.argv[1:]):
    import lenasim.outputs.figures.run  # noqa: F401
    import lenasim.simulation.dataset  # noqa: F401

    start_early(sys.argv[1:])

from lenasim.cli import main  # noqa: E402

rc = main()
# Every result is written and closed by now (atomically renamed into place). Tearing
# the interpreter down (freeing every object of pandas, xarray, matplotlib...) would
# take another ~0.3 s of wall time and do nothing useful, so exit at once, after
# flushing what was printed. Errors and --help raise, and exit the normal way.
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BrokenPipeError:  # the reader went away (`| head`): nothing left to say
    pass
os._exit(rc or 0)
