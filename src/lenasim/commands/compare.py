"""`python -m lenasim compare`: paired comparison of finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lenasim.core.errors import LenasimError
from lenasim.core.writers import MANIFEST, read_manifest
from lenasim.outputs.report.comparison import compare_runs, default_out_dir
from lenasim.pipeline.posterior import xarray_without_dask


def _name_from_manifest(path: Path) -> str:
    """The run's name without loading its draws: manifest name, else the folder name. A
    manifest that exists but cannot be read is refused here, naming it."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        return Path(path).name
    return str(read_manifest(mpath).get("name") or Path(path).name)


def cmd_compare(args: Any) -> int:
    """CLI: ``python -m lenasim compare RESULT_DIR RESULT_DIR... [--out DIR] [--overwrite]``."""
    dirs = [Path(p) for p in args.results]
    xarray_without_dask()  # xarray's first label lookup would import dask.array (~0.4 s)
    out = getattr(args, "out", None)
    if out is None:
        if len(dirs) < 2:
            raise LenasimError(
                "compare needs at least two result folders (the first is the reference)"
            )
        out = default_out_dir(dirs, [_name_from_manifest(p) for p in dirs])
    compare_runs(dirs, Path(out), overwrite=bool(getattr(args, "overwrite", False)))
    return 0
