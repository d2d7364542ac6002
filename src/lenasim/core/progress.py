"""The one progress bar of every long command (a run's draws, a search's schedules,
leave-one-trial-out refits, SBC fits, a design's trials): tqdm on standard error, shown
only on a terminal and never with ``--quiet``."""

from __future__ import annotations

import sys

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, unit: str, *, show: bool = True, leave: bool = True):
    """A tqdm bar of ``total`` ``unit``s, or None when ``show`` is false or standard error
    is not a terminal (a log file, a pipe, a test). Callers update it with
    ``bar.update(n)`` and close it, if it is not None."""
    if not show or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=leave)
