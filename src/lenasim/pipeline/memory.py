"""The memory probe: how much a command may still allocate, and the refusal when a
simulation would not fit.

The room is the smallest of the kernel's ``MemAvailable``, the space left under a cgroup
(container) limit and the process's own address-space limit (``ulimit -v``,
``RLIMIT_AS``, which batch systems set). Every command that simulates (``run``,
``search``) checks its estimate against it before allocating anything.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from lenasim.core.errors import ConfigError

__all__ = ["available_memory", "check_simulation_memory", "gb"]


def _address_space_left() -> int | None:
    """Bytes left under the process's RLIMIT_AS (``ulimit -v``); None when unlimited."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = 0
    try:  # the address space this process already maps (VmSize)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - used)


def available_memory() -> int | None:
    """Bytes of memory this process may still use: the smallest of the kernel's
    MemAvailable, the room left under a cgroup (container) limit and the room left under
    the process's own limit (``ulimit -v``); None if none is known."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            pass
    own = _address_space_left()
    if own is not None:
        found.append(own)
    return min(found) if found else None


def gb(n: float) -> str:
    """Bytes in words: '1.5 GB' or '300 MB'."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def _room_words(free: int) -> str:
    own = _address_space_left()
    if own is not None and own <= free:
        return f"this process may use {gb(free)} more (its limit, `ulimit -v`)"
    return f"this machine has {gb(free)} available"


def check_simulation_memory(
    source: str,
    *,
    patients: int,
    levels: int,
    cycles: int,
    draws: int,
    concurrent: int = 1,
    extra: int = 0,
    threads: int | None = None,
    free: int | None = None,
) -> None:
    """Refuse a simulation that would not fit in memory, with the estimate and the fix.

    ``concurrent`` simulations run at once (a search simulates several candidates side by
    side), ``extra`` bytes are held besides (a search's table of candidates).

    Raises
    ------
    ConfigError
        Naming ``source``, the estimate, the room and what to change.
    """
    from lenasim.simulation.engine import memory_estimate

    need = memory_estimate(levels, cycles, patients, draws, threads)
    one = need["patients"] + need["tables"] + need["outputs"]
    total = concurrent * one + extra
    free = available_memory() if free is None else free
    if free is None or total <= free:
        return
    head = f"{source}: the simulation needs about {gb(total)} of memory at once"
    tail = _room_words(free)
    if need["patients"] >= need["tables"]:
        n_threads = need["threads"] * concurrent
        per = need["patients"] / patients
        fit = max(1, int((free - extra) / concurrent - need["tables"] - need["outputs"]) // per)
        cohorts = f"{n_threads} threads each hold a cohort of " if n_threads > 1 else ""
        fewer = ", or fewer threads (LENASIM_THREADS=1)" if n_threads > 1 else ""
        raise ConfigError(
            f"{head} ({gb(concurrent * need['patients'])}: {cohorts}{patients:,} patients, "
            f"{per / need['threads']:.0f} bytes a patient); {tail}. population.patients: use "
            f"fewer patients (at most about {int(fit):,} here) or --patients N{fewer}; the "
            "posterior draws are simulated in chunks and add little"
        )
    raise ConfigError(
        f"{head} ({gb(concurrent * need['tables'])} for the state tables of {levels} dose "
        f"levels over {cycles} cycles); {tail}. regimen: use fewer dose levels (a larger "
        "escalation step) or fewer cycles"
    )
