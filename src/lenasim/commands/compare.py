"""`python -m lenasim compare`: paired comparison of finished runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lenasim.core.errors import LenasimError
from lenasim.outputs.comparison import compare_runs, default_out_dir


def _name_from_manifest(path: Path) -> str:
    """The run's name without loading its draws: manifest name, else the folder name."""
    try:
        return str(
            json.loads((Path(path) / "manifest.json").read_text()).get("name") or Path(path).name
        )
    except (OSError, json.JSONDecodeError, AttributeError):
        return Path(path).name


def cmd_compare(args: Any) -> int:
    """CLI: ``python -m lenasim compare RESULT_DIR RESULT_DIR... [--out DIR] [--overwrite]``."""
    dirs = [Path(p) for p in args.results]
    out = getattr(args, "out", None)
    if out is None:
        if len(dirs) < 2:
            raise LenasimError(
                "compare needs at least two result folders (the first is the reference)"
            )
        out = default_out_dir(dirs, [_name_from_manifest(p) for p in dirs])
    compare_runs(dirs, Path(out), overwrite=bool(getattr(args, "overwrite", False)))
    return 0
