"""Checking a finished run's folder before a comparison reads it (issue 21, item 6).

A run's ``manifest.json`` says what it is (``"lenasim_result": "run"``) and holds the
sha256 of every file written into the folder (``"files"``, :mod:`lenasim.core.writers`).
Before ``compare`` reads a folder, :func:`verify_run_folder` refuses, with a sentence
naming the file:

- a manifest that is missing, not UTF-8, not JSON or not a JSON object;
- a manifest that says the folder is another kind of result (a comparison, a search);
- a file whose bytes differ from the hash the manifest holds (a ``draws.nc`` copied from
  another scenario, an edited CSV), or a ``draws.nc`` the manifest does not list;
- risk limits in the manifest's config that lenasim would refuse in a config file.

A run written before manifests recorded their files (no ``"files"``) cannot be verified:
it is read with a warning on stderr that says so and how to get a verifiable one.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import ValidationError

from lenasim.core.errors import LenasimError
from lenasim.core.limits import RiskLimits
from lenasim.core.schema import brief, format_errors
from lenasim.core.writers import KINDS, MANIFEST, read_manifest, sha256_file

__all__ = ["verify_run_folder"]

_RERUN = "re-run the scenario with `python -m lenasim run CONFIG --overwrite`"


def verify_run_folder(folder: str | Path) -> dict:
    """The manifest of a finished run, after checking it and the folder's files against it.

    Raises
    ------
    LenasimError
        Naming the manifest or the file that does not match, and what to do.
    """
    folder = Path(folder)
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise LenasimError(
            f"result folder {folder} has no {MANIFEST}; it is not a finished lenasim run "
            f"(or its manifest was removed): {_RERUN}"
        )
    manifest = read_manifest(mpath)
    kind = manifest.get("lenasim_result")
    if kind is not None and kind != "run":
        what = f"{KINDS[kind]}" if isinstance(kind, str) and kind in KINDS else repr(kind)[:40]
        raise LenasimError(
            f'{mpath}: "lenasim_result" says {what}, not a scenario run; compare reads only '
            "the folders `python -m lenasim run` writes"
        )
    files = manifest.get("files")
    if files is None:
        _warn(
            f"{folder} was written by a lenasim that did not record its files' hashes "
            f'(no "files" in {MANIFEST}): its files cannot be verified; {_RERUN} to get '
            "one that can"
        )
    else:
        _check_hashes(folder, mpath, files)
    _check_limits(mpath, manifest)
    return manifest


def _check_hashes(folder: Path, mpath: Path, files: object) -> None:
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise LenasimError(
            f'{mpath}: "files" must map each file name to its sha256 (text to text); the '
            f"manifest is damaged: {_RERUN}"
        )
    if "draws.nc" not in files:
        raise LenasimError(
            f'{mpath}: "files" does not list draws.nc, so {folder / "draws.nc"} is not the '
            f"one this run wrote: {_RERUN}"
        )
    for rel, digest in sorted(files.items()):
        path = folder / rel
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise LenasimError(f'{mpath}: "files" names {rel!r}, outside the folder: {_RERUN}')
        if not path.is_file():
            if rel == "draws.nc":
                raise LenasimError(f"{path} is missing: {_RERUN}")
            continue  # a plot or table removed: compare does not read it
        if sha256_file(path) != digest.lower():
            raise LenasimError(
                f"{path} is not the file this run wrote: its sha256 differs from the one in "
                f"{mpath} (edited, or copied from another result); {_RERUN}"
            )


def _check_limits(mpath: Path, manifest: dict) -> None:
    """The run's risk limits, as a config file's would be checked."""
    cfg = manifest.get("config")
    if cfg is None:
        return
    if not isinstance(cfg, dict):
        raise LenasimError(f'{mpath}: "config" must be the run\'s config (a mapping): {_RERUN}')
    _check_shapes(mpath, cfg)
    if "limits" not in cfg:
        return
    try:
        RiskLimits.model_validate(cfg["limits"])
    except ValidationError as err:
        raise LenasimError(
            format_errors(err, RiskLimits, str(mpath), root=("config", "limits"))
        ) from None
    except (TypeError, ValueError) as err:
        raise LenasimError(f"{mpath}: config.limits: {err}") from None


def _is_text_list(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# What compare and its report read from a run's config, and the JSON shape each must have
# (a run's manifest holds its config as lenasim wrote it; hashes do not cover the manifest).
_SHAPES: dict[tuple[str, ...], tuple[str, object]] = {
    ("description",): ("text", lambda v: isinstance(v, str)),
    ("mirrors",): ("an arm name or a list of them", lambda v: isinstance(v, str) or _is_text_list(v)),
    ("population",): ("a mapping", lambda v: isinstance(v, dict)),
    ("population", "setting"): ("text", lambda v: isinstance(v, str)),
    ("population", "elderly_share"): ("a number", _is_number),
    ("population", "partners"): ("a list of drug names", _is_text_list),
    ("population", "steroid_prophylaxis"): ("true or false", lambda v: isinstance(v, bool)),
    ("regimen",): ("a mapping", lambda v: isinstance(v, dict)),
    ("regimen", "cycle_days"): ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
}  # fmt: skip


def _check_shapes(mpath: Path, cfg: dict) -> None:
    for keys, (what, ok) in _SHAPES.items():
        node: object = cfg
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        if node is not None and not ok(node):
            raise LenasimError(
                f"{mpath}: config.{'.'.join(keys)} must be {what}, not {brief(node)}; the "
                f"manifest is damaged: {_RERUN}"
            )


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)
