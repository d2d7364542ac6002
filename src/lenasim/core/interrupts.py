"""Interrupts: Ctrl-C (SIGINT) and SIGTERM (``kill``, a job scheduler) are one thing.

Inside :func:`handle_interrupts` both raise ``KeyboardInterrupt`` in the main thread, so
every command unwinds the same way: writers remove their temporary files, the command
line says "interrupted" and exits 130, and nothing half-done is saved.

Some libraries catch ``KeyboardInterrupt`` and carry on: nutpie and PyMC stop sampling
and *return* the draws so far. The signal is therefore also recorded, and
:func:`raise_if_interrupted` raises it again after such a call, so a partial sample is
never mistaken for a finished one.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["handle_interrupts", "interrupted", "raise_if_interrupted"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[str] = []
_depth = 0


def _handler(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    _received.append(name)
    raise KeyboardInterrupt(name)


@contextmanager
def handle_interrupts() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise ``KeyboardInterrupt`` and are recorded
    (see :func:`interrupted`). Nests; the previous handlers are restored on exit. Outside
    the main thread (where Python cannot set handlers) it does nothing."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        _received.clear()
    previous = {s: signal.signal(s, _handler) for s in _SIGNALS}
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        for s, h in previous.items():
            signal.signal(s, h)


def interrupted() -> str | None:
    """The name of the first signal received in the current :func:`handle_interrupts`
    block ("SIGINT", "SIGTERM"), or None."""
    return _received[0] if _received else None


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a signal arrived in the current block, even if the
    code it interrupted caught the first one."""
    if _received and _depth:
        raise KeyboardInterrupt(_received[0])
