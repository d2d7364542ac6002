"""The model that ships with lenasim: its spec, fitted posterior and plots are package data
(``lenasim/models/``: ``default.yaml``, ``default.nc``, ``default/``), so an installed
lenasim runs a config from any folder. A config that names no ``posterior.spec`` uses it;
a config that names one uses that spec and the posterior fitted beside it.

In a source checkout the repository's ``models`` is a link to this folder: one copy.
"""

from __future__ import annotations

from pathlib import Path

from lenasim.core.errors import LenasimError

__all__ = [
    "DEFAULT_SPEC",
    "MODELS",
    "in_source_checkout",
    "is_shipped",
    "refuse_writing_installed_model",
]

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


def refuse_writing_installed_model(spec: str | Path, command: str) -> None:
    """Refuse a command that writes beside the shipped spec (a posterior, plots, the
    validation record) when lenasim is installed, not run from a source tree: the
    installed package is not the user's to change, and a reinstall would undo it.

    Raises
    ------
    LenasimError
        Saying how to fit a copy of the shipped spec instead.
    """
    if is_shipped(spec) and not in_source_checkout():
        raise LenasimError(
            f"{spec}: the model shipped with lenasim is part of the installed package, and "
            f"`lenasim {command}` would write into it; copy the spec to a folder of yours "
            f"(cp {spec} my_model.yaml), run `lenasim {command} my_model.yaml`, and name it "
            "in your configs (posterior: {spec: my_model.yaml})"
        )
