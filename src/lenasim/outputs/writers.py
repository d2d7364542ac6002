"""Writing result folders: all or nothing (a temporary sibling renamed into place)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lenasim.core.errors import ConfigError


def write_atomically(out_dir: Path, build, *, overwrite: bool) -> None:
    """Call ``build(tmp)`` on a fresh temporary sibling of ``out_dir``, then rename it
    into place (replacing an existing ``out_dir`` only with ``overwrite``). On any
    error or interrupt the temporary folder is removed and ``out_dir`` is untouched."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists() and not overwrite:
        raise ConfigError(f"{out_dir} already exists; pass --overwrite to replace it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    old = None
    try:
        build(tmp)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out_dir.exists():
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
