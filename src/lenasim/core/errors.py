"""Errors a user can act on. The CLI prints their message and exits with status 2."""


class LenasimError(Exception):
    """A problem with the user's input or files, stated so the user can fix it."""


class ConfigError(LenasimError):
    """A scenario config or model spec that fails validation (names file, key path, fix)."""


class EvidenceError(LenasimError):
    """An evidence table row or field that fails validation (names the row and field)."""


class PosteriorError(LenasimError):
    """A missing, stale or unusable fitted posterior."""
