"""Writing files: all or nothing, and never over anything but lenasim's own results.

The one writer of every stage (results, the posterior, the validation record, exported
tables). A result folder (of ``run``, ``compare``, ``validate`` or ``search``) is built
in a temporary sibling, ``.<name>.partial-<pid>-<token>``, and renamed into place at the
end, so an interrupted command leaves no half-written folder. Its ``manifest.json`` says
which kind of result it is (``"lenasim_result": "run"``) and holds the sha256 of every
file written into it (``"files"``: what ``compare`` verifies, and what tells lenasim's
files from the user's). An existing path is replaced only when ``--overwrite`` was given
and its manifest says it is a lenasim result of the same kind, and (when the manifest
lists its files) it holds no file that lenasim did not write. A file, a link, a folder
without such a manifest (``models/``, the home folder, a folder that merely looks like a
result), a result of another kind or a result the user added files to is refused, with
or without ``--overwrite``. An empty folder holds nothing and may be replaced.

A single file (the posterior, the validation record, ``evidence --csv``) is written to a
temporary sibling and renamed over the destination (:func:`replace_file`).

Temporary folders of killed commands (whose process is gone) are removed by the next
write into the same folder; a result a killed replacement had moved aside
(``.<name>.old-<pid>-<token>``) is put back first. Folders are created with the
permissions of the umask, as any other program's.

The manifest (its kinds, the files' hashes) is :mod:`lenasim.core.manifest`; its names are
importable from here too.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from lenasim.core.errors import LenasimError
from lenasim.core.manifest import (
    KINDS,
    MANIFEST,
    file_hashes,
    read_manifest,
    record_files,
    result_kind,
    sha256_file,
    stamp,
    unlisted_files,
)

__all__ = [
    "KINDS",
    "MANIFEST",
    "check_output_file",
    "check_output_folder",
    "file_hashes",
    "read_manifest",
    "record_files",
    "remove_stale_siblings",
    "replace_file",
    "result_kind",
    "sha256_file",
    "write_atomically",
    "write_file_atomically",
]

# Room the temporary siblings add to a name: "." + ".partial-" + pid + "-" + 8 hex digits.
_SIBLING_ROOM = 1 + 9 + 10 + 1 + 8
# "<pid>-<token>"; "<pid>" and mkdtemp's 8 characters are the names of lenasim < 0.2.
_SIBLING = re.compile(r"^(?:(\d+)(?:-[0-9a-f]{8})?|[a-z0-9_]{8})$")


def check_output_folder(
    out_dir: str | Path, kind: str, *, overwrite: bool, hint: str = "choose another folder"
) -> None:
    """Refuse, before any work, an output folder that cannot or must not be written.

    Refused: a name too long for the file system; a parent that is a file or cannot be
    written into; an existing path that is not a lenasim result of this ``kind`` (with
    or without ``overwrite``); an existing result of this kind without ``overwrite``.

    Raises
    ------
    LenasimError
        Naming the path, the reason and (``hint``) what to do instead.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown result kind {kind!r}")
    out = Path(out_dir)
    if out.name in ("", ".", ".."):
        raise LenasimError(f"{out}: not a folder name a result can be written to; {hint}")
    _check_parent(out, hint=f"; {hint}")
    restored = not os.path.lexists(out) and any(
        p.name.startswith(f".{out.name}.old-") for p in remove_stale_siblings(out, only="old")
    )
    if not os.path.lexists(out):
        return
    if out.is_symlink():
        raise LenasimError(
            f"{out} is a symbolic link; lenasim does not replace links, with or without "
            f"--overwrite; {hint}"
        )
    if not out.is_dir():
        raise LenasimError(
            f"{out} exists and is a file, not {KINDS[kind]} folder of lenasim; it is never "
            f"replaced, with or without --overwrite; {hint}"
        )
    if not any(out.iterdir()):
        return  # an empty folder: nothing to lose
    found = result_kind(out)
    if found != kind:
        what = f"it is {KINDS[found]}" if found else f"it has no {MANIFEST} of lenasim"
        raise LenasimError(
            f"{out} exists and is not {KINDS[kind]} of lenasim ({what}); lenasim replaces "
            f"only its own results of the same kind, never other folders, with or without "
            f"--overwrite; {hint}, or move it away yourself"
        )
    extra = unlisted_files(out)
    if extra:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise LenasimError(
            f"{out} is {KINDS[kind]} of lenasim but also holds files lenasim did not write "
            f"({shown}); it is not replaced, with or without --overwrite; {hint}, or move "
            "those files away yourself"
        )
    if not overwrite:
        why = (
            " (lenasim has just put back the earlier result: a command that was replacing it "
            "was killed before it finished)"
            if restored
            else ""
        )
        raise LenasimError(f"{out} already exists{why}; pass --overwrite to replace it")


def _check_parent(path: Path, option: str = "", hint: str = "") -> None:
    """Refuse a path (a result folder or a file) whose nearest existing ancestor is a file
    or cannot be written into, or whose name, with the temporary siblings' room, is too
    long for the file system there. ``option``: the command-line option that named the
    path (it begins the sentence); ``hint``: what to do instead (it ends it)."""
    what = f"{option} {path}" if option else f"cannot write {path}"
    ancestor = _existing_ancestor(path.parent)
    if not ancestor.is_dir():
        raise LenasimError(f"{what}: {ancestor} is a file, not a folder{hint}")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise LenasimError(f"{what}: no permission to write into {ancestor}{hint}")
    room = _name_max(ancestor) - _SIBLING_ROOM
    size = len(os.fsencode(path.name))
    if size > room:
        raise LenasimError(
            f"{option + ' ' if option else ''}{_short(path)}: the name is {size} bytes, too long for the file system here "
            f"(at most {room}){hint}"
        )


def _existing_ancestor(path: Path) -> Path:
    for p in (path, *path.parents):
        if os.path.lexists(p):
            return p
    return Path(".")


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 80 else text[:40] + "..." + text[-37:]


def write_atomically(
    out_dir: str | Path,
    build: Callable[[Path], object],
    *,
    kind: str,
    overwrite: bool,
    hint: str = "choose another folder",
) -> None:
    """Call ``build(tmp)`` on a fresh temporary sibling of ``out_dir``, then rename it
    into place (see the module docstring for what may be replaced).

    ``build`` may write ``manifest.json`` itself, with ``"lenasim_result": kind``; if it
    does not, a short one is written. On any error or interrupt the temporary folder is
    removed and ``out_dir`` is as it was.
    """
    out_dir = Path(out_dir)
    check_output_folder(out_dir, kind, overwrite=overwrite, hint=hint)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LenasimError(f"cannot create {out_dir.parent}: {err.strerror}; {hint}") from None
    remove_stale_siblings(out_dir)
    tmp = _new_sibling(out_dir, "partial")
    old = None
    try:
        build(tmp)
        stamp(tmp, kind)
        # Anything that appeared at out_dir while building is checked again.
        check_output_folder(out_dir, kind, overwrite=overwrite, hint=hint)
        if os.path.lexists(out_dir):
            old = _sibling_name(out_dir, "old")
            out_dir.rename(old)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not os.path.lexists(out_dir):
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sibling_name(out_dir: Path, what: str) -> Path:
    return out_dir.with_name(f".{out_dir.name}.{what}-{os.getpid()}-{secrets.token_hex(4)}")


def _new_sibling(out_dir: Path, what: str) -> Path:
    """A new empty folder next to out_dir; os.mkdir applies the umask (mkdtemp's 0700
    would not)."""
    for _ in range(100):
        tmp = _sibling_name(out_dir, what)
        try:
            tmp.mkdir(mode=0o777)
            return tmp
        except FileExistsError:
            continue
    raise LenasimError(f"cannot create a temporary folder next to {out_dir}")


def remove_stale_siblings(out_dir: str | Path, *, only: str | None = None) -> list[Path]:
    """Remove the temporary siblings of ``out_dir`` that killed commands left.

    A ``.<name>.partial-<pid>-*`` folder whose process is gone is removed; a
    ``.<name>.old-<pid>-*`` folder (a result moved aside by a replacement that was
    killed before it finished) is renamed back to ``out_dir`` if that is missing, and
    removed otherwise. Folders of running processes are left alone. Returns what was
    removed or restored. ``only="old"`` restores (or removes) the ``old`` folders alone.
    """
    out_dir = Path(out_dir)
    done: list[Path] = []
    try:
        entries = list(os.scandir(out_dir.parent))
    except OSError:
        return done
    for what in ("old", "partial") if only is None else (only,):  # restore first
        prefix = f".{out_dir.name}.{what}-"
        for entry in entries:
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            m = _SIBLING.match(entry.name[len(prefix) :])
            if m is None or (m.group(1) and _alive(int(m.group(1)))):
                continue
            path = Path(entry.path)
            if what == "old" and not os.path.lexists(out_dir):
                path.rename(out_dir)
            else:
                shutil.rmtree(path, ignore_errors=True)
            done.append(path)
    return done


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or not a pid we can ask about): leave it
    return True


# ------------------------------------------------------------------------ single files


def check_output_file(dest: str | Path, *, overwrite: bool, option: str) -> Path:
    """Refuse a file destination that exists (without ``overwrite``), is not a regular
    file, or lies inside the lenasim package (its own data)."""
    dest = Path(dest)
    package = Path(__file__).resolve().parents[1]
    resolved = dest.resolve()
    if resolved == package or package in resolved.parents:
        raise LenasimError(
            f"{option} {dest}: inside the lenasim package ({package}); lenasim never writes "
            "into its own data: choose a path outside it"
        )
    if os.path.lexists(dest):
        if not dest.is_file() or dest.is_symlink():
            raise LenasimError(f"{option} {dest}: exists and is not a regular file; choose another")
        if not overwrite:
            raise LenasimError(f"{option} {dest}: already exists; pass --overwrite to replace it")
    _check_parent(dest, option)
    return dest


def replace_file(dest: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``dest`` (``.<name>.partial-<pid>-
    <token>``, which ``write`` creates), then rename it over ``dest``: readers see the old
    file or the new one, never a part. On any error or interrupt the sibling is removed
    and ``dest`` is as it was. No check of what ``dest`` is: callers that write where the
    user points check first (:func:`check_output_file`)."""
    dest = Path(dest)
    tmp = _sibling_name(dest, "partial")
    try:
        write(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def write_file_atomically(dest: str | Path, data: bytes, *, overwrite: bool, option: str) -> None:
    """Write ``data`` to ``dest`` through a temporary sibling renamed into place (after
    :func:`check_output_file`); the file gets the umask's permissions."""
    dest = check_output_file(dest, overwrite=overwrite, option=option)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LenasimError(f"{option} {dest}: cannot create its folder ({err.strerror})") from None

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    try:
        replace_file(dest, write)
    except OSError as err:
        raise LenasimError(f"{option} {dest}: cannot write ({err.strerror})") from None
