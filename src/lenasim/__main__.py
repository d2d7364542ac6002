"""``python -m lenasim``: the command line (lenasim.cli), as a short-lived process."""

import gc
import os
import sys

# A command-line process allocates many objects while importing NumPy, pandas and
# matplotlib, and few of them die young: collecting the youngest generation every 700
# allocations (Python's default) cost `lenasim run` ~0.1-0.2 s in ~260 collections.
gc.set_threshold(50_000, 50, 50)

# `run`: its BLAS work is small (the mirrored trial's predictions, in chunks of 64 draws),
# and OpenBLAS's threads, started at NumPy's import and spinning after each call, took
# ~0.1-0.2 s of CPU from the core the plot child draws on; so one thread, unless the user
# chose. Same bytes (checked on every shipped run config). Then the plot child is forked
# before the rest of the command line's imports (lenasim.pipeline.plots.start_early:
# measured near idle, 21 alternated rounds, 1.01 s against 1.09 s with neither;
# benchmarks/README.md).
if sys.argv[1:2] == ["run"]:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # NumPy and the run dataset's module (which the parent needs too) imported before the
    # fork, so that the child does not import them again: ~0.1 s of CPU less, on a
    # machine whose two cores are both busy until the dataset is handed over (A/B near
    # idle, 15 alternated rounds: 0.947 s against 0.972 s, CPU 1.67 s against 1.76 s).
    import lenasim.simulation.dataset  # noqa: F401
    from lenasim.pipeline.plots import start_early

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
