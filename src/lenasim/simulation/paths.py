"""The paths and settings around a config: its output folder (checked before any work),
the paths it writes (relative to the config file), its hash, and the thread count set by
the environment. Used by scenario configs (:mod:`lenasim.simulation.scenario`) and the
other configs (search, design) alike.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from lenasim.core.errors import ConfigError

__all__ = [
    "MAX_COMPONENT_BYTES",
    "MAX_PATH_BYTES",
    "MAX_THREADS",
    "check_output_text",
    "config_hash",
    "env_threads",
    "output_problem",
    "relative_to_config",
]

MAX_THREADS = 256

# Paths: longer ones are refused when the config is read (Linux's PATH_MAX is 4096 bytes;
# the writer's temporary siblings and the files inside need room too).
MAX_PATH_BYTES = 3800
MAX_COMPONENT_BYTES = 255


def check_output_text(v: Any) -> Any:
    """An ``output:`` as written: not empty, no NUL byte (before it becomes a path)."""
    if isinstance(v, str):
        if not v.strip():
            raise ValueError(
                "is empty; leave the key out for results/ in the current folder, or give a folder"
            )
        if "\x00" in v:
            raise ValueError("holds a NUL byte (\\0), which no path may hold")
    return v


def _short_path(p: Path | str, limit: int = 80) -> str:
    text = str(p)
    return text if len(text) <= limit else f"{text[:40]}...{text[-35:]} ({len(text)} characters)"


def output_problem(out: Path) -> str | None:
    """Why a results folder cannot be written, found before any work (None if it can):
    a path too long for the file system, or one inside the installed lenasim package."""
    text = os.fsencode(str(out))
    if b"\x00" in text:
        return "holds a NUL byte (\\0), which no path may hold"
    full = Path(os.path.abspath(out))
    if len(os.fsencode(str(full))) > MAX_PATH_BYTES:
        return (
            f"the path {_short_path(full)} is too long: at most {MAX_PATH_BYTES} bytes, so "
            "that the files inside it fit the file system's limit"
        )
    for part in full.parts:
        if len(os.fsencode(part)) > MAX_COMPONENT_BYTES:
            return (
                f"the folder name {_short_path(part, 40)} in {_short_path(full)} is longer "
                f"than {MAX_COMPONENT_BYTES} bytes"
            )
    package = Path(__file__).resolve().parents[1]
    real = Path(os.path.realpath(full))
    if real == package or package in real.parents:
        return (
            f"{_short_path(full)} is inside the installed lenasim package ({package}); "
            "lenasim never writes there: give a folder of your own"
        )
    return None


def config_hash(path: str | Path) -> str:
    """sha256 of the config file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def relative_to_config(scenario, path: str | Path):
    """The scenario (or search config: any model with ``posterior`` and ``output``) with the
    paths its config wrote (``posterior.spec``, ``output``) taken relative to the config
    file's folder; absolute paths and defaults are kept."""
    folder = Path(path).parent

    def near(p: Path) -> Path:
        return Path(os.path.normpath(folder / p))  # configs/../results -> results

    update: dict[str, Any] = {}
    post = scenario.posterior
    if "spec" in post.model_fields_set and not post.spec.is_absolute():
        update["posterior"] = post.model_copy(update={"spec": near(post.spec)})
    if "output" in scenario.model_fields_set and not scenario.output.is_absolute():
        update["output"] = near(scenario.output)
    pop = getattr(scenario, "population", None)
    ch = getattr(pop, "characteristics", None)
    if ch is not None and ch.csv is not None and not ch.csv.is_absolute():
        ch = ch.model_copy(update={"csv": near(ch.csv)})
        update["population"] = pop.model_copy(update={"characteristics": ch})
    return scenario.model_copy(update=update) if update else scenario


def env_threads() -> int | None:
    """The thread count set by the environment variable ``LENASIM_THREADS`` (None if unset).

    Raises
    ------
    ConfigError
        When it is not a whole number from 1 to 256.
    """
    text = os.environ.get("LENASIM_THREADS", "").strip()
    if not text:
        return None
    if not text.isdecimal() or not 1 <= int(text) <= MAX_THREADS:
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise ConfigError(
            f"environment variable LENASIM_THREADS={shown!r}: must be a whole number of "
            f"threads from 1 to {MAX_THREADS}; fix it, or unset it to use the CPUs available"
        )
    return int(text)
