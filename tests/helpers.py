"""Small builders shared by the tests (not fixtures: plain importable helpers)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lenasim.core.regimen import Regimen


@dataclass(frozen=True)
class Arm:
    """A synthetic trial arm with the fields the model reads (the evidence loader's
    arms carry more)."""

    n: int
    regimen: Regimen
    setting: str = "relapsed"
    elderly: bool = False
    partner_classes: tuple = ()
    steroid_prophylaxis: bool = False


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
