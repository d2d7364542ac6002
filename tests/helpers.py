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
