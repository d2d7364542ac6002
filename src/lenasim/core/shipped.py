"""The model that ships with lenasim: its spec, fitted posterior and plots are package data
(``lenasim/models/``: ``default.yaml``, ``default.nc``, ``default/``), so an installed
lenasim runs a config from any folder. A config that names no ``posterior.spec`` uses it;
a config that names one uses that spec and the posterior fitted beside it.

In a source checkout the repository's ``models`` is a link to this folder: one copy.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_SPEC", "MODELS", "in_source_checkout", "is_shipped"]

PACKAGE = Path(__file__).resolve().parents[1]
MODELS = PACKAGE / "models"
DEFAULT_SPEC = MODELS / "default.yaml"


def is_shipped(path: str | Path) -> bool:
    """Whether ``path`` lies in the shipped models' folder."""
    resolved = Path(path).resolve()
    return resolved == MODELS or MODELS in resolved.parents


def in_source_checkout() -> bool:
    """Whether lenasim runs from a source tree (``src/lenasim`` beside ``pyproject.toml``,
    as in a clone or an editable install), not from an installed copy."""
    return PACKAGE.parent.name == "src" and (PACKAGE.parents[1] / "pyproject.toml").is_file()
