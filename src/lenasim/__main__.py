"""``python -m lenasim``: the command line (lenasim.cli), as a short-lived process."""

import gc
import os
import sys

# A command-line process allocates many objects while importing NumPy, pandas and
# matplotlib, and few of them die young: collecting the youngest generation every 700
# allocations (Python's default) cost `lenasim run` ~0.1-0.2 s in ~260 collections.
gc.set_threshold(50_000, 50, 50)

# `run` with plots: the figures are drawn by a child process that the command forks once
# the configs are checked (lenasim.pipeline.plots). Forking it here, before the command
# line's imports (a `start_early` of earlier versions), was measured near idle against
# that, alternated, 7 rounds: the same wall time (1.40 s, whether before NumPy, after
# NumPy and the figure modules, or after pydantic and the regimen too), 0.05-0.15 s more
# CPU per run (benchmarks/README.md, run/e2e); so it is not done.
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
