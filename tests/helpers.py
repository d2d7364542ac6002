"""Assertions shared by the tests (synthetic inputs are built in builders.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def assert_leaves_unimported(code: str, modules: tuple[str, ...], cwd: Path | None = None) -> None:
    """Run ``code`` in a fresh interpreter and assert that it succeeded and that none of
    ``modules`` (nor any of their submodules) was imported by it."""
    check = (
        f"{code}\n"
        "import sys\n"
        f"bad = sorted(m for m in sys.modules for n in {modules!r}\n"
        "             if m == n or m.startswith(n + '.'))\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", check], cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
