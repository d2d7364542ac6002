"""The memory probe: how much a command may still allocate, and the refusal when a
simulation would not fit.

The room is the smallest of the kernel's ``MemAvailable``, the space left under a cgroup
(container) limit and the process's own address-space limit (``ulimit -v``,
``RLIMIT_AS``, which batch systems set). Every command that simulates (``run``,
``search``) checks its estimate against it before allocating anything.

A population with characteristics (issue 24) is simulated as K representative patients
(profiles), one categorical covariate of the engine: its state tables grow K-fold (the
engine takes fewer draws per chunk to bound them, :func:`profile_chunk_size`), and each
CrCl group of ``renal_dosing`` is a cohort of its own whose outputs are held until they are
mixed (:func:`scenario_memory` counts both).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from lenasim.core.errors import ConfigError
from lenasim.core.vocabulary import active, use
from lenasim.simulation.engine import memory_estimate
from lenasim.simulation.population import (
    Profiles,
    profile_chunk_size,
    profile_covariate,
    profiles_of,
    renal_groups,
)
from lenasim.simulation.tables import n_states

__all__ = [
    "available_memory",
    "check_simulation_memory",
    "gb",
    "scenario_memory",
    "simulation_bytes",
]


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
    profiles: int = 0,
    groups: int = 1,
) -> None:
    """Refuse a simulation that would not fit in memory, with the estimate and the fix.

    ``concurrent`` simulations run at once (a search simulates several candidates side by
    side), ``extra`` bytes are held besides (a search's table of candidates). ``profiles``:
    the representative patients of a population with characteristics (0: none), simulated
    as ``groups`` cohorts one after the other (the CrCl groups of ``renal_dosing``).

    Raises
    ------
    ConfigError
        Naming ``source``, the estimate, the room and what to change.
    """
    need = _estimate(levels, cycles, patients, draws, threads, profiles, groups)
    total = concurrent * (need["patients"] + need["tables"] + need["outputs"]) + extra
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
    if profiles:
        raise ConfigError(
            f"{head} ({gb(concurrent * need['tables'])} for the state tables of {levels} dose "
            f"levels over {cycles} cycles for each of {profiles} representative patients); "
            f"{tail}. population.characteristics.profiles: use fewer representative patients "
            f"(a CSV's rows are subsampled to `profiles`), or regimen: fewer dose levels or "
            "fewer cycles"
        )
    raise ConfigError(
        f"{head} ({gb(concurrent * need['tables'])} for the state tables of {levels} dose "
        f"levels over {cycles} cycles); {tail}. regimen: use fewer dose levels (a larger "
        "escalation step) or fewer cycles"
    )


def simulation_bytes(
    *, patients: int, levels: int, cycles: int, draws: int, threads: int | None = None,
    profiles: int = 0, groups: int = 1,
) -> int:  # fmt: skip
    """Bytes one simulation holds at once (what :func:`check_simulation_memory` checks);
    keywords as its own (:func:`scenario_memory` gives a scenario's)."""
    need = _estimate(levels, cycles, patients, draws, threads, profiles, groups)
    return need["patients"] + need["tables"] + need["outputs"]


def _estimate(
    levels: int, cycles: int, patients: int, draws: int, threads: int | None, profiles: int,
    groups: int,
) -> dict[str, int]:  # fmt: skip
    """:func:`lenasim.simulation.engine.memory_estimate`, in the vocabulary the run uses:
    with ``profiles``, the profile covariate's strata, and the state tables of the smaller
    chunks of draws that the profiles' simulation takes; with ``groups``, every group's
    outputs and their mixture, held at once."""
    if not profiles:
        return memory_estimate(levels, cycles, patients, draws, threads)
    import numpy as np

    prof = Profiles({}, np.full(profiles, 1.0 / profiles))
    with use(active().extended(patient_covariates=[profile_covariate(prof)])):
        need = memory_estimate(levels, cycles, patients, draws, threads)
        # memory_estimate's tables are those of min(its default chunk, draws) draws
        chunk = min(profile_chunk_size(patients, profiles), draws)
        need["tables"] = memory_estimate(levels, cycles, patients, chunk, threads)["tables"]
        # PatientDraws.eta's arrays of (chunk, distinct rows <= cells): the predictor, the
        # profiles' offsets gathered, their first-cycle part and the sum (tracemalloc's
        # peak, 1000 patients x 100 draws of renal_origin_adjusted: 137 MB at 32 profiles,
        # 383 MB at 256; this estimate: 202 and 351 MB)
        need["tables"] += 8 * 4 * chunk * cycles * n_states(levels)
    if groups > 1:
        need["outputs"] *= groups + 1
    return need


def scenario_memory(scenario) -> dict[str, int]:
    """The keywords of :func:`check_simulation_memory` that a scenario sets: its patients,
    draws, cycles, the most dose levels of its regimens, and for a population with
    characteristics its profiles (a CSV's rows are read and checked) and CrCl groups."""
    out = {"patients": scenario.population.patients, "draws": scenario.posterior.draws,
           "cycles": scenario.regimen.cycles, "levels": len(scenario.regimen.levels())}  # fmt: skip
    ch = scenario.population.characteristics
    if ch is None:
        return out

    prof = profiles_of(ch, scenario.seed)
    regimens = [reg for _, reg in renal_groups(scenario, prof)]
    out["levels"] = max(len(reg.levels()) for reg in regimens)
    return out | {"profiles": prof.k, "groups": len(regimens)}
