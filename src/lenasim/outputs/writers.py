"""The atomic writer moved to the base stage, :mod:`lenasim.core.writers`; this name stays
so that code written against ``lenasim.outputs.writers`` keeps working while the branches
that import it merge. New code imports ``lenasim.core.writers``."""

from lenasim.core.writers import (  # noqa: F401
    KINDS,
    MANIFEST,
    check_output_file,
    check_output_folder,
    file_hashes,
    read_manifest,
    remove_stale_siblings,
    replace_file,
    result_kind,
    sha256_file,
    write_atomically,
    write_file_atomically,
)

__all__ = [
    "KINDS",
    "MANIFEST",
    "check_output_file",
    "check_output_folder",
    "file_hashes",
    "read_manifest",
    "remove_stale_siblings",
    "replace_file",
    "result_kind",
    "sha256_file",
    "write_atomically",
    "write_file_atomically",
]
