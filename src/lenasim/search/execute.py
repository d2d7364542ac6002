"""Evaluating candidates: in this process, or in batches on a dask.distributed cluster.

Both paths call :func:`lenasim.search.evaluate.evaluate_batch` on the same candidates
with the same posterior draws; the engine's numbers do not depend on threads, batches or
the process they run in (its random numbers are keyed by seed, posterior index, patient
and cycle), so the rows are identical, bit for bit. On Dask:

- the draws (:class:`~lenasim.search.evaluate.Cohort`) are scattered to every worker
  once; each task carries a batch of candidates and the (small) search config;
- each task simulates with one engine thread (a worker process is one core's work);
- the workers must run the same lenasim, compiled engine, NumPy and Python as this
  process (checked before any task is sent), or the promise of identical numbers
  would not hold.

The run time is estimated before the search starts (:func:`estimate_seconds`) from two
short pilot simulations, the candidates with the fewest and the most dose levels (the
engine's per-draw cost grows with the number of patient states, about 4 L^2 for L
levels).
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

import lenasim
from lenasim.core.errors import LenasimError
from lenasim.search.config import SearchConfig
from lenasim.search.evaluate import Cohort, evaluate_batch, simulate_candidate
from lenasim.search.space import Candidate
from lenasim.simulation._native import lib
from lenasim.simulation.engine import n_states
from lenasim.simulation.engine import thread_count as engine_threads  # the engine's own rule

__all__ = [
    "Estimate",
    "default_batch_size",
    "evaluate_in_process",
    "evaluate_on_dask",
    "dask_client",
    "estimate_seconds",
    "check_dask_options",
    "cluster_slots",
    "parse_address",
    "split_batches",
]

Progress = Callable[[int], None] | None
_PILOT_DRAWS = (16, 80)


def split_batches(cands: list[Candidate], size: int) -> list[list[Candidate]]:
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    return [cands[i : i + size] for i in range(0, len(cands), size)]


def default_batch_size(n_candidates: int, slots: int) -> int:
    """About four tasks per worker slot (load balance) and at most 64 candidates a task."""
    return max(1, min(64, math.ceil(n_candidates / (4 * max(1, slots)))))


def evaluate_in_process(
    cfg: SearchConfig,
    cands: list[Candidate],
    cohort: Cohort,
    *,
    threads: int | None = None,
    progress: Progress = None,
) -> list[dict]:
    """Rows of every candidate, in order. With ``threads`` > 1 (default: the engine's
    rule, ``LENASIM_THREADS`` or the CPUs, at most 8) that many candidates are simulated
    at once, one engine thread each: the Python parts of one (tables, summaries) overlap
    the compiled kernel of another, which splitting one candidate's draws over the
    threads does not allow. The numbers do not depend on it."""
    n = engine_threads(threads)
    rows: list[dict] = []
    if n == 1:
        for cand in cands:
            rows += evaluate_batch(cfg, [cand], cohort, threads=1)
            if progress is not None:
                progress(1)
        return rows
    with ThreadPoolExecutor(n) as pool:
        for got in pool.map(lambda c: evaluate_batch(cfg, [c], cohort, threads=1), cands):
            rows += got
            if progress is not None:
                progress(1)
    return rows


def evaluate_on_dask(
    client,
    cfg: SearchConfig,
    cands: list[Candidate],
    cohort: Cohort,
    *,
    batch_size: int | None = None,
    progress: Progress = None,
    address: str = "the Dask cluster",
    deadline: float | None = None,
) -> list[dict]:
    """Rows of every candidate, in order, computed in batches on a Dask cluster; with a
    ``deadline`` (seconds), a LenasimError naming ``address`` when the results stop
    coming before all are in."""
    as_completed = distributed().as_completed
    slots = cluster_slots(client, address)
    size = batch_size or default_batch_size(len(cands), slots)
    batches = split_batches(cands, size)
    shared = _with_deadline(lambda: client.scatter(cohort, broadcast=True),
                            max(EXCHANGE_SECONDS, deadline or 0.0),
                            f"--dask {address}: sending the posterior draws to the workers")  # fmt: skip
    futures = {
        client.submit(evaluate_batch, cfg, batch, shared, 1, pure=False): i
        for i, batch in enumerate(batches)
    }
    done: dict[int, list[dict]] = {}
    try:
        for fut in as_completed(futures, loop=client.loop, timeout=deadline):  # not the default's
            i = futures[fut]
            done[i] = fut.result()
            if progress is not None:
                progress(len(batches[i]))
    except TimeoutError:
        raise LenasimError(
            f"--dask {address}: the cluster returned {len(done)} of {len(batches)} batches "
            f"within {deadline:g} s; check its workers (`dask worker ADDRESS`) or use "
            "--dask local"
        ) from None
    finally:
        for fut in futures:
            fut.cancel()
    return [row for i in range(len(batches)) for row in done[i]]


def cluster_slots(client, address: str = "the Dask cluster") -> int:
    """Worker threads of the cluster (at least 1), asked with a deadline."""
    threads = _with_deadline(lambda: client.nthreads(), EXCHANGE_SECONDS,
                             f"--dask {address}: asking the scheduler for its workers")  # fmt: skip
    return max(1, sum(threads.values()))


def fingerprint() -> dict[str, str]:
    """What must match between this process and the Dask workers for identical numbers."""

    return {
        "lenasim": lenasim.__version__,
        "engine": lib.lenasim_source_hash().decode(),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# Deadlines of the network waits (seconds): connecting to a scheduler, and each
# exchange with it before the work starts (the workers' fingerprints).
CONNECT_SECONDS = 30.0
CONNECT_GRACE_SECONDS = 10.0  # beyond Dask's own connect timeout, before lenasim gives up
EXCHANGE_SECONDS = 60.0
# Worker processes of --dask local: at most this many times the CPUs (each is one thread).
MAX_WORKERS_PER_CPU = 4
_SCHEMES = ("tcp", "tls")


def check_dask_options(address: str | None, workers: int | None, batch_size: int | None) -> None:
    """Validate ``--dask``, ``--workers`` and ``--batch-size`` before anything connects.

    Raises
    ------
    LenasimError
        Naming the option, what was given and what is allowed.
    """
    if address is None:
        if workers is not None or batch_size is not None:
            raise LenasimError("--workers and --batch-size apply to --dask only")
        return
    if address != "local":
        parse_address(address)
        if workers is not None:
            raise LenasimError("--workers applies to --dask local only (the cluster has its own)")
    top = MAX_WORKERS_PER_CPU * _cpus()
    if workers is not None and not 1 <= workers <= top:
        raise LenasimError(
            f"--workers: must be from 1 to {top} ({MAX_WORKERS_PER_CPU} per CPU of this "
            f"machine; each worker is one process of one thread) (got {workers})"
        )
    if batch_size is not None and not 1 <= batch_size <= 10_000:
        raise LenasimError(f"--batch-size: must be from 1 to 10000 (got {batch_size})")


def _shown(address: str) -> str:
    return repr(address if len(address) <= 60 else address[:57] + "...")


def parse_address(address: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a scheduler address ``tcp://HOST:PORT`` (or ``tls://``).

    Raises
    ------
    LenasimError
        When it is not one, saying what is allowed.
    """
    allowed = ("give `local` (a cluster on this machine) or a scheduler address such as "
               "tcp://SCHEDULER-HOST:8786")  # fmt: skip
    scheme, sep, rest = address.partition("://")
    if not sep:
        raise LenasimError(f"--dask {_shown(address)}: not an address; {allowed}")
    if scheme not in _SCHEMES:
        raise LenasimError(
            f"--dask {_shown(address)}: unknown protocol {scheme[:20]!r} (allowed: "
            f"{', '.join(s + '://' for s in _SCHEMES)}); {allowed}"
        )
    host, colon, port = rest.rpartition(":")
    if not colon or not host or any(c in host for c in "/ \x00?#@"):
        raise LenasimError(f"--dask {_shown(address)}: no host and port; {allowed}")
    if not port.isdecimal() or not 1 <= int(port) <= 65535:
        raise LenasimError(
            f"--dask {_shown(address)}: the port must be a number from 1 to 65535 "
            f"(got {port[:20]!r}); {allowed}"
        )
    return scheme, host.strip("[]"), int(port)


def _with_deadline(fn, seconds: float, what: str):
    """``fn()`` in a helper thread; a LenasimError naming ``what`` if it takes longer than
    ``seconds`` (the thread is left to the client's own shutdown)."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as Timeout

    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(fn).result(timeout=seconds)
    except Timeout:
        raise LenasimError(f"{what}: no answer within {seconds:g} s") from None
    finally:
        pool.shutdown(wait=False)


def distributed():
    """The optional package ``distributed`` (Dask's cluster client), imported on first use:
    the search stage's one import of Dask (a search without ``--dask`` never loads it)."""
    try:
        import distributed as module
    except ImportError as err:
        raise LenasimError(
            "--dask needs the optional dependency `distributed`: "
            "python -m pip install 'lenasim[dask]'"
        ) from err
    return module


@contextmanager
def dask_client(address: str, workers: int | None = None) -> Iterator[object]:
    """A ``distributed.Client``: on a new ``LocalCluster`` of ``workers`` processes (one
    thread each) for ``local``, or on the scheduler at ``tcp://HOST:PORT``. The address is
    validated before anything connects; every wait on the network has a deadline
    (:data:`CONNECT_SECONDS`, :data:`EXCHANGE_SECONDS`). The cluster is closed on exit if
    this function started it. The client is not made dask's default: the work is given to
    it by name, and a default Client sets dask's global scheduler until it is closed, which
    for one that failed to connect is whenever the garbage collector frees it; until then
    every dask computation of the process (the explorer's xarray work, for one) would ask
    for a scheduler that is gone."""
    check_dask_options(address, workers, None)
    dist = distributed()
    cluster = None
    if address == "local":
        n = workers or _cpus()
        cluster = dist.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = dist.Client(cluster, set_as_default=False)
    else:
        hint = ("start one with `dask scheduler` (and workers with `dask worker ADDRESS`) "
                "or use --dask local")  # fmt: skip
        try:
            client = _with_deadline(
                lambda: dist.Client(address, timeout=f"{CONNECT_SECONDS:g}s", set_as_default=False),
                CONNECT_SECONDS + CONNECT_GRACE_SECONDS,
                f"--dask {_shown(address)}: connecting to the Dask scheduler",
            )
        except LenasimError as err:
            raise LenasimError(f"{err}; is it a Dask scheduler? {hint}") from None
        except (OSError, TimeoutError) as err:
            raise LenasimError(
                f"--dask {_shown(address)}: no Dask scheduler answered ({err}); {hint}"
            ) from None
        except Exception as err:  # noqa: BLE001 - a service that is not Dask answers anything
            raise LenasimError(
                f"--dask {_shown(address)}: what answered is not a Dask scheduler "
                f"({type(err).__name__}); {hint}"
            ) from None
    try:
        _with_deadline(lambda: _check_workers(client, address), EXCHANGE_SECONDS,
                       f"--dask {_shown(address)}: asking the workers for their versions")  # fmt: skip
        yield client
    finally:
        client.close(timeout=10)
        if cluster is not None:
            cluster.close()


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _check_workers(client, address: str) -> None:
    here = fingerprint()
    theirs = client.run(fingerprint)
    if not theirs:
        raise LenasimError(f"--dask {address}: the cluster has no workers")
    for worker, fp in theirs.items():
        diff = [f"{k} {fp.get(k)} (here {v})" for k, v in here.items() if fp.get(k) != v]
        if diff:
            raise LenasimError(
                f"--dask {address}: worker {worker} runs {', '.join(diff)}; install the same "
                "lenasim and NumPy on the workers (identical numbers need identical code)"
            )


@dataclass(frozen=True)
class Estimate:
    """Predicted wall time of a search on an otherwise idle machine, and how it was
    obtained. The pilots are short: on a busy machine they run nearly at full speed while
    a long search gets its share of the CPUs only, so the load average is reported with
    the estimate, not folded into it (the budget bounds the size of a search)."""

    seconds: float
    slots: int
    pilot_seconds: float

    def describe(self, local: bool = True) -> str:
        """In words; ``local``: the search runs on this machine (its load matters)."""
        cpus = os.cpu_count() or 1
        busy = os.getloadavg()[0]
        text = (f"estimated {_minutes(self.seconds)} on {self.slots} "
                f"slot{'s' if self.slots > 1 else ''} of an idle machine (from a "
                f"{self.pilot_seconds:.1f} s pilot)")  # fmt: skip
        if local and busy > 0.5 * cpus:
            text += f"; the load average here is {busy:.1f} on {cpus} CPUs: expect longer"
        return text


def _minutes(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _levels(c: Candidate) -> int:
    return len(c.regimen.levels())


def estimate_seconds(
    cfg: SearchConfig,
    cands: list[Candidate],
    cohort: Cohort,
    *,
    slots: int = 1,
) -> Estimate:
    """Wall time to evaluate ``cands`` on ``cohort`` in ``slots`` parallel evaluations of
    one engine thread each (the in-process search's threads, or the Dask workers' threads).
    From pilots: the candidates with the fewest and the most dose levels, each simulated
    twice on 16 and on 80 draws on one thread (the difference gives the cost per draw, the
    rest the cost per candidate), interpolated in the number of patient states (~ levels
    squared), summed over the candidates and divided by ``slots``."""
    t0 = time.perf_counter()
    # A first call pays one-time costs (imports, the thread pool): not part of the estimate.
    warm = Cohort(cohort.draws.take(slice(0, 1)), cohort.posterior_index[:1])
    simulate_candidate(cfg, cands[0], warm, threads=1)
    by_levels = sorted(cands, key=_levels)
    ends = (
        [by_levels[0], by_levels[-1]]
        if _levels(by_levels[-1]) > _levels(by_levels[0])
        else [by_levels[0]]
    )
    n_draws = cohort.draws.n_draws
    fits = []
    for cand in ends:
        times = []
        for d in _PILOT_DRAWS:
            d = min(d, n_draws)
            pilot = Cohort(cohort.draws.take(slice(0, d)), cohort.posterior_index[:d])
            spent = []
            for _ in range(2):  # the mean of two: what a shared machine gives, on average
                t = time.perf_counter()
                simulate_candidate(cfg, cand, pilot, threads=1)
                spent.append(time.perf_counter() - t)
            times.append((d, float(np.mean(spent))))
        (d1, t1), (d2, t2) = times
        per_draw = max(0.0, (t2 - t1) / (d2 - d1)) if d2 > d1 else t2 / d2
        fixed = max(0.0, t1 - d1 * per_draw)
        fits.append((_states(_levels(cand)), fixed + n_draws * per_draw))
    g = np.array([_states(_levels(c)) for c in cands], float)
    if len(fits) == 1:
        total = fits[0][1] * len(cands)
    else:
        (g0, c0), (g1, c1) = fits
        total = float(np.sum(c0 + (c1 - c0) * (g - g0) / (g1 - g0)))
    return Estimate(total / max(1, slots), max(1, slots), time.perf_counter() - t0)


def _states(levels: int) -> int:
    """Patient states per cycle in the engine's tables (the engine's own count)."""
    return n_states(levels)
