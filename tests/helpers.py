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


def fresh_copy(repo: Path, dest: Path) -> Path:
    """What a fresh clone of ``repo`` holds, copied to ``dest``: the files git tracks, with
    their working-tree content (links kept as links), nothing git ignores (no results,
    no built library). Returns ``dest``."""
    import os
    import shutil

    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z"], capture_output=True,
                            check=True).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src, dst = repo / rel, dest / rel
        if not os.path.lexists(src):
            continue  # deleted in the working tree, not yet committed
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    return dest


def new_venv(folder: Path) -> dict[str, str]:
    """A virtual environment in ``folder`` that sees the system's packages (so the heavy
    dependencies need not be downloaded) but not this checkout (no PYTHONPATH); returns
    the environment variables that activate it."""
    import os

    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(folder)],
                   check=True)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(folder)
    env["PATH"] = f"{folder / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def assert_closer_than_half(adjusted, unadjusted, k: float = 3.0) -> None:
    """Paired draws (draw first) of two risk differences against the same reference, e.g.
    an adjusted and an unadjusted dose's risk minus the normal band's: the adjusted one is
    within half the unadjusted one, |E adjusted| < E unadjusted / 2, each side of the
    absolute value checked on the paired per-draw quantity -+adjusted - unadjusted / 2,
    whose mean must lie k Monte Carlo standard errors below 0 (the error of a mean over
    the posterior draws)."""
    import numpy as np

    adjusted, unadjusted = np.asarray(adjusted, float), np.asarray(unadjusted, float)
    for sign in (1.0, -1.0):
        g = sign * adjusted - 0.5 * unadjusted
        se = g.std(axis=0, ddof=1) / np.sqrt(g.shape[0])
        bound = g.mean(axis=0) + k * se
        assert np.all(bound < 0), (sign, adjusted.mean(axis=0), unadjusted.mean(axis=0), bound)


def cli(capsys, *argv) -> tuple[int, str, str]:
    """``lenasim`` in process: (exit code, stdout, stderr); never a traceback."""
    from lenasim.cli import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err
