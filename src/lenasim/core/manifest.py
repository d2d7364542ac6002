"""The manifest of a lenasim result folder (``manifest.json``): which kind of result it
is (``"lenasim_result": "run"``) and the sha256 of every file written into it
(``"files"``: what ``compare`` verifies, and what tells lenasim's files from the
user's). :mod:`lenasim.core.writers` writes result folders with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from lenasim import __version__
from lenasim.core.errors import LenasimError

__all__ = [
    "KINDS",
    "MANIFEST",
    "file_hashes",
    "read_json",
    "read_manifest",
    "record_files",
    "result_kind",
    "sha256_file",
    "stamp",
    "unlisted_files",
]

MANIFEST = "manifest.json"
KINDS = {
    "run": "a scenario run",
    "comparison": "a comparison",
    "validation": "a validation",
    "search": "a schedule search",
    "design": "a trial-design simulation",
}


def result_kind(folder: str | Path) -> str | None:
    """The kind of lenasim result a folder holds (a key of :data:`KINDS`), else None.

    Told by its ``manifest.json`` only (``"lenasim_result": kind``): a folder is never
    judged by what it holds, since a user's folder may hold files of the same names.
    """
    manifest = read_json(Path(folder) / MANIFEST)
    if isinstance(manifest, dict):
        kind = manifest.get("lenasim_result")
        if isinstance(kind, str) and kind in KINDS:
            return kind
    return None


def read_manifest(path: str | Path) -> dict:
    """A manifest's content, refused with a sentence naming the file when it is not a
    JSON object in UTF-8.

    Raises
    ------
    LenasimError
        When the file cannot be read, is not UTF-8, is not JSON or is not an object.
    """
    path = Path(path)
    try:
        if path.stat().st_size > 2**26:
            raise LenasimError(f"{path}: {path.stat().st_size} bytes, not a lenasim manifest")
        raw = path.read_bytes()
    except OSError as err:
        raise LenasimError(f"cannot read {path}: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LenasimError(
            f"{path} is not UTF-8 text (byte {err.start}); a lenasim manifest is JSON in "
            "UTF-8: the folder is damaged, re-run it"
        ) from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise LenasimError(f"{path} is not valid JSON ({err}); re-run it") from None
    if not isinstance(data, dict):
        raise LenasimError(
            f"{path} holds a JSON {type(data).__name__}, not the object (mapping of keys) "
            "a lenasim manifest is; re-run it"
        )
    return data


def sha256_file(path: str | Path) -> str:
    """The sha256 (hex) of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hashes(folder: str | Path) -> dict[str, str]:
    """sha256 of every regular file below ``folder`` but its own ``manifest.json``, by
    path relative to it (``/``-separated), sorted."""
    folder = Path(folder)
    out = {}
    for path in sorted(_files_below(folder)):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST:
            out[rel] = sha256_file(path)
    return out


def _files_below(folder: Path) -> list[Path]:
    """Every entry below ``folder`` that is not a folder (links included, not followed)."""
    found = []
    for root, dirs, files in os.walk(folder):
        found += [Path(root, f) for f in files]
        found += [Path(root, d) for d in dirs if os.path.islink(os.path.join(root, d))]
    return found


def unlisted_files(folder: Path) -> list[str]:
    """Files in a result folder that its manifest does not list as lenasim's (none when
    the manifest predates the list)."""
    manifest = read_json(folder / MANIFEST)
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        return []
    return sorted(
        rel
        for p in _files_below(folder)
        if (rel := p.relative_to(folder).as_posix()) != MANIFEST and rel not in listed
    )


def read_json(path: Path) -> object:
    try:
        if path.stat().st_size > 2**24:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def stamp(tmp: Path, kind: str) -> None:
    """Write (or complete) the manifest: its kind and the sha256 of every file."""
    path = tmp / MANIFEST
    if path.exists():
        manifest = read_json(path)
        if not (isinstance(manifest, dict) and manifest.get("lenasim_result") == kind):
            raise RuntimeError(f'{path}: the manifest must say "lenasim_result": {kind!r}')
    else:
        manifest = {
            "lenasim_result": kind,
            "lenasim_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": sys.argv,
        }
    manifest["files"] = file_hashes(tmp)
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def record_files(folder: str | Path) -> None:
    """Record again, in a result folder's manifest, the sha256 of every file it holds: for
    a builder that adds a file to a finished result inside its own temporary folder (a
    search's run folders get their ``scenario.yaml``)."""
    path = Path(folder) / MANIFEST
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("lenasim_result") not in KINDS:
        raise RuntimeError(f"{path}: not the manifest of a lenasim result")
    manifest["files"] = file_hashes(folder)
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
