"""Strict YAML for the files people write by hand: scenario configs, model specs, arms.yaml;
and the one way a config is read and validated (:func:`load_config`).

``yaml.safe_load`` (no Python objects, no code), and in addition, what a hand-written
file should never mean silently:

- a key written twice is an error naming both lines (PyYAML keeps the last one);
- aliases (``*name``) are refused: lenasim files are short, and an alias can multiply
  one value into gigabytes ("billion laughs");
- ``.inf``, ``.nan`` and numbers too large to be finite (``1e999``) are refused;
- scalars follow YAML 1.2: ``true``/``false`` are the booleans (``yes``, ``no``,
  ``on``, ``off`` stay text), integers are decimal (``010`` is ten, not eight; ``1:30``
  is text, not 90), dates stay text;
- the file must be UTF-8 text of at most :data:`MAX_BYTES` (libyaml bounds the
  nesting depth; Python's recursion limit bounds it without libyaml).

Errors name the file, the line and the column, and never print a whole value.
"""

from __future__ import annotations

import math
import os
import re
import select
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
import yaml.cyaml
from pydantic import BaseModel, ValidationError

from lenasim.core.errors import ConfigError, LenasimError
from lenasim.core.schema import format_errors

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "MAX_BYTES",
    "config_from_mapping",
    "load_config",
    "load_yaml",
    "parse_yaml",
    "read_bytes",
]

MAX_BYTES = 4 * 2**20  # the largest shipped file, arms.yaml, is ~20 kB

_PREFIX = "tag:yaml.org,2002:"


class _Problem(Exception):
    """A problem found while building the data, with the node where it lies."""

    def __init__(self, message: str, node: yaml.Node, path: tuple = (), at: bool = True) -> None:
        super().__init__(message)
        self.mark = node.start_mark if at else None
        self.path = path


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema: the implicit types of plain scalars."""


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _Resolver.add_implicit_resolver(_PREFIX + _tag, re.compile(_pattern), list(_first))


class _Constructor(yaml.constructor.SafeConstructor):
    """SafeConstructor that refuses duplicate keys, aliases and non-finite numbers, and
    knows the key path of every node (for the messages)."""

    def __init__(self) -> None:
        super().__init__()
        self._paths: dict[int, tuple] = {}

    def _problem(self, message: str, node: yaml.Node, at: bool = True) -> _Problem:
        return _Problem(message, node, self._paths.get(id(node), ()), at)

    def construct_object(self, node, deep=False):
        # Without aliases every node is built once; a node met again is an alias.
        if node in self.constructed_objects or node in self.recursive_objects:
            raise self._problem(
                f"an alias (*name) of the anchor at line {node.start_mark.line + 1}: lenasim "
                "files do not use YAML aliases; write the value out",
                node,
                at=False,  # the node is the anchor's: where the alias stands is not known
            )
        return super().construct_object(node, deep=deep)

    def construct_sequence(self, node, deep=False):
        if not isinstance(node, yaml.SequenceNode):
            raise self._problem(f"expected a list, found {node.id}", node)
        path = self._paths.get(id(node), ())
        for i, child in enumerate(node.value):
            self._paths[id(child)] = (*path, i)
        return [self.construct_object(child, deep=deep) for child in node.value]

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            raise self._problem(f"expected a mapping, found {node.id}", node)
        path = self._paths.get(id(node), ())
        out: dict[Any, Any] = {}
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            self._paths[id(key_node)] = path
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise self._problem(
                    "a key must be a plain value, not a list or mapping", key_node
                ) from None
            if key in out:
                self._paths[id(key_node)] = (*path, key)
                raise self._problem(
                    f"given twice (lines {lines[key]} and {key_node.start_mark.line + 1}); "
                    "keep one",
                    key_node,
                )
            lines[key] = key_node.start_mark.line + 1
            self._paths[id(value_node)] = (*path, key)
            out[key] = self.construct_object(value_node, deep=deep)
        return out

    def construct_yaml_map(self, node):
        data: dict[Any, Any] = {}
        yield data
        data.update(self.construct_mapping(node))

    def construct_yaml_int(self, node):
        text = str(self.construct_scalar(node)).replace("_", "")
        try:
            if text[:2] in ("0o", "0x"):
                return int(text[2:], 8 if text[1] == "o" else 16)
            return int(text, 10)
        except ValueError:
            raise self._problem(f"'{_short(text)}' is not an integer", node) from None

    def construct_yaml_float(self, node):
        text = str(self.construct_scalar(node)).replace("_", "")
        try:
            value = float(text)
        except ValueError:
            value = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf}.get(
                text.lower(), math.nan if text.lower() == ".nan" else None
            )
            if value is None:
                raise self._problem(f"'{_short(text)}' is not a number", node) from None
        if not math.isfinite(value):
            raise self._problem(
                f"must be a finite number (got {_short(text)}); lenasim takes finite numbers only",
                node,
            )
        return value

    def construct_yaml_bool(self, node):
        text = str(self.construct_scalar(node)).lower()
        if text not in ("true", "false"):
            raise self._problem(f"'{_short(text)}' is not true or false", node)
        return text == "true"


for _tag, _method in (
    ("map", _Constructor.construct_yaml_map),
    ("int", _Constructor.construct_yaml_int),
    ("float", _Constructor.construct_yaml_float),
    ("bool", _Constructor.construct_yaml_bool),
):
    _Constructor.add_constructor(_PREFIX + _tag, _method)


if getattr(yaml, "__with_libyaml__", False):
    # libyaml's parser where PyYAML has it (~8x faster on arms.yaml; it also bounds the
    # nesting depth); the data is built in Python either way, with the checks above.
    class _Loader(yaml.cyaml.CParser, _Constructor, _Resolver):
        def __init__(self, stream: str) -> None:
            yaml.cyaml.CParser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml

    class _Loader(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        _Constructor,
        _Resolver,
    ):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(mark: Any) -> str:
    return "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}: "


def _dotted(path: tuple) -> str:
    out = ""
    for x in path:
        out += f"[{x}]" if isinstance(x, int) else (f".{_short(x)}" if out else _short(x))
    return out


def parse_yaml(text: str, source: str, error: type[LenasimError] = ConfigError) -> Any:
    """Parse YAML text strictly (see the module docstring); errors name ``source``."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except _Problem as err:
        line = "" if err.mark is None else f" (line {err.mark.line + 1})"
        if err.path or err.mark is None:
            raise error(f"{source}: {_dotted(err.path) or '(top level)'}: {err}{line}") from None
        raise error(f"{source}: {_where(err.mark)}{err}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = " ".join(str(x) for x in (err.context, err.problem) if x)
        raise error(f"{source}: {_where(mark)}not valid YAML: {_short(what, 160)}") from None
    except yaml.reader.ReaderError as err:
        line = text[: err.position].count("\n") + 1
        what = f"the character #x{err.character:04x}" if isinstance(err.character, int) else ""
        raise error(f"{source}: line {line}: not valid YAML: {what} ({err.reason})") from None
    except yaml.YAMLError as err:
        one_line = " ".join(str(err).split())
        raise error(f"{source}: not valid YAML: {_short(one_line, 160)}") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply to read") from None
    finally:
        loader.dispose()


def read_bytes(path: Path, limit: int) -> bytes:
    """The bytes of a file, at most ``limit`` of them; a FIFO or a device (a config
    piped in: ``lenasim run <(make-config)``) is read so that Ctrl-C or SIGTERM always
    stops the wait.

    A plain blocking read cannot promise that: a signal that lands after the file is
    opened and before ``read()`` blocks is recorded, but Python runs its handler only
    when the read returns, which from an idle FIFO is never. So a FIFO is opened
    without blocking and waited on with ``select`` in slices of 0.2 s: a handler that is
    due runs within 0.2 s. (Linux reports an opened FIFO readable only once a writer
    has written or has come and gone, so a writer that has not yet arrived is waited
    for, as a blocking open would.)
    """
    if stat.S_ISREG(os.stat(path).st_mode):
        with open(path, "rb") as f:
            return f.read(limit)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            if not select.select([fd], [], [], 0.2)[0]:
                continue  # back in Python: a signal that arrived meanwhile is handled
            try:
                chunk = os.read(fd, min(65536, limit - size))
            except BlockingIOError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_yaml(
    path: str | Path,
    error: type[LenasimError] = ConfigError,
    what: str = "file",
    *,
    data: bytes | None = None,
) -> Any:
    """Read a YAML file strictly: UTF-8, at most :data:`MAX_BYTES`, then :func:`parse_yaml`.

    Parameters
    ----------
    path : the file (named in every error).
    error : the error class raised (ConfigError for configs and specs, EvidenceError for
        the evidence).
    what : what the file is, for the "not found" message ("config", "model spec", ...).
    data : the file's bytes, when the caller has read them already.
    """
    path = Path(path)
    if data is None:
        try:
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise error(f"{path}: {size:,} bytes; a lenasim {what} is at most {MAX_BYTES:,}")
            data = read_bytes(path, MAX_BYTES + 1)
        except FileNotFoundError:
            raise error(f"{path}: {what} not found") from None
        except IsADirectoryError:
            raise error(f"{path}: is a folder, not a {what}") from None
        except OSError as err:
            raise error(f"{path}: cannot read the {what} ({err.strerror})") from None
    if len(data) > MAX_BYTES:
        raise error(f"{path}: {len(data):,} bytes; a lenasim {what} is at most {MAX_BYTES:,}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(
            f"{path}: line {line}: not UTF-8 text (byte 0x{data[err.start]:02x}); "
            "save the file as UTF-8"
        ) from None
    return parse_yaml(text, str(path), error)


def config_from_mapping(
    data: Any,
    model: type[M],
    source: str,
    what: str,
    keys: str,
    refuse: Callable[[dict], str | None] | None = None,
) -> M:
    """Validate a config given as a mapping (what a YAML file holds) as ``model`` (a
    :class:`lenasim.core.schema.Strict` model): every config (scenario, search, design)
    is read this way. Errors name ``source`` and every key path; ``what`` and ``keys``
    word the error for a file that is not a mapping ("a search config", "name,
    population, space, ..."); ``refuse(data)`` may refuse the mapping first with a
    sentence (e.g. a config of another kind).

    Raises
    ------
    ConfigError
        Naming ``source`` and the key path of every problem, one per line.
    """
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise ConfigError(f"{source}: {what} must be a mapping of keys ({keys}), got {got}")
    why = refuse(data) if refuse is not None else None
    if why:
        raise ConfigError(f"{source}: {why}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err, model, source)) from None


def load_config(
    path: str | Path,
    model: type[M],
    file: str,
    what: str,
    keys: str,
    refuse: Callable[[dict], str | None] | None = None,
) -> M:
    """Read a config file (strict YAML, :func:`load_yaml`; ``file`` says what it is in
    the "not found" message) and validate it (:func:`config_from_mapping`)."""
    data = load_yaml(path, ConfigError, file)
    return config_from_mapping(data, model, str(path), what, keys, refuse)
