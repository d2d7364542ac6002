"""Fuzzed compare inputs (issue 21, item 6): two finished runs, one of them damaged in its
manifest (any key set to any JSON value, deleted, the whole file replaced by JSON of any
shape or by bytes) or in its files (draws.nc truncated, replaced, swapped; a CSV
edited). ``compare`` either compares or ends with exit code 2 and a one-line message
naming a file of the damaged folder; never a traceback, never an output folder left
half-written, and never a comparison of a file whose bytes differ from the hash the
manifest holds.

The fast test runs a bounded, derandomised number of examples with compare's plots and
report replaced by a stub (the reading and verification are what is fuzzed); the slow
one runs the whole command, report included, on more examples.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lenasim.cli import main
from lenasim.outputs.report import comparison

TINY = ("--patients", "20", "--draws", "5", "--no-plots", "--quiet")
NAMES = ("slow_escalation", "standard_25mg")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def key_paths(node, path=()) -> list[tuple]:
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        out.append((*path, k))
        if isinstance(v, dict | list) and len(path) < 4:
            out += key_paths(v, (*path, k))
    return out


@pytest.fixture
def finished(finished_runs) -> Path:
    """The session's two finished runs (conftest.finished_runs); each example copies them."""
    return finished_runs


# ---------------------------------------------------------------------------- damages


@st.composite
def damages(draw, manifests: list[dict]):
    """(which run, what to do to its folder) as a function of the folder."""
    which = draw(st.sampled_from([0, 1]))
    manifest = manifests[which]
    kind = draw(st.sampled_from(["set_key", "delete_key", "whole_json", "bytes", "draws",
                                 "csv", "kind"]))  # fmt: skip
    event(kind)
    paths = key_paths(manifest)
    if kind == "set_key":
        path, value = draw(st.sampled_from(paths)), draw(json_values)

        def act(folder: Path) -> bool:
            m = json.loads((folder / "manifest.json").read_text())
            node = m
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
            (folder / "manifest.json").write_text(json.dumps(m))
            return False
    elif kind == "delete_key":
        path = draw(st.sampled_from(paths))

        def act(folder: Path) -> bool:
            m = json.loads((folder / "manifest.json").read_text())
            node = m
            for k in path[:-1]:
                node = node[k]
            del node[path[-1]]
            (folder / "manifest.json").write_text(json.dumps(m))
            return False
    elif kind == "whole_json":
        value = draw(json_values)

        def act(folder: Path) -> bool:
            (folder / "manifest.json").write_text(json.dumps(value))
            return False
    elif kind == "bytes":
        cut, junk = draw(st.integers(0, 4000)), draw(st.binary(max_size=16))

        def act(folder: Path) -> bool:
            data = (folder / "manifest.json").read_bytes()
            (folder / "manifest.json").write_bytes(data[:cut] + junk + data[cut + len(junk) :])
            return False
    elif kind == "draws":
        how = draw(st.sampled_from(["truncate", "random", "swap"]))
        cut, junk = draw(st.integers(0, 20000)), draw(st.binary(min_size=1, max_size=64))

        def act(folder: Path) -> bool:
            path = folder / "draws.nc"
            before = path.read_bytes()
            if how == "truncate":
                path.write_bytes(before[:cut])
            elif how == "random":
                path.write_bytes(junk)
            else:
                other = folder.parent / NAMES[1 - NAMES.index(folder.name)]
                shutil.copy(other / "draws.nc", path)
            return path.read_bytes() != before
    elif kind == "csv":
        name = draw(st.sampled_from(["per_cycle.csv", "cumulative.csv", "dose.csv"]))
        junk = draw(st.binary(min_size=1, max_size=8))

        def act(folder: Path) -> bool:
            (folder / name).write_bytes((folder / name).read_bytes() + junk)
            return True
    else:
        value = draw(st.sampled_from(["comparison", "search", "validation", "", None, 1]))

        def act(folder: Path) -> bool:
            m = json.loads((folder / "manifest.json").read_text())
            m["lenasim_result"] = value
            (folder / "manifest.json").write_text(json.dumps(m))
            return False

    return which, act


def _check(finished: Path, tmp: Path, capsys, data) -> None:
    manifests = [json.loads((finished / n / "manifest.json").read_text()) for n in NAMES]
    which, act = data.draw(damages(manifests))
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(finished, tmp)
    damaged = tmp / NAMES[which]
    files_changed = act(damaged)
    # the damage left the manifest's record of the files as it was
    hashes_intact = _files_record_of(damaged) == manifests[which]["files"]
    out = tmp / "cmp"
    rc = main(["compare", str(tmp / NAMES[0]), str(tmp / NAMES[1]), "--out", str(out)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc in (0, 2), err
    if rc == 2:
        assert not out.exists() and not list(tmp.glob(".cmp*")), "half-written output"
        assert str(damaged) in err, err  # the message names the damaged folder's file
        assert err.count("\n") <= 6, err
    if files_changed and hashes_intact:
        assert rc == 2, "a file that differs from its recorded hash was compared"


def _files_record_of(folder: Path):
    try:
        m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except ValueError:
        return None
    return m.get("files") if isinstance(m, dict) else None


@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@pytest.mark.slow  # fuzzing: many compare runs (issue 22.12)
@given(data=st.data())
def test_fuzzed_compare_inputs(finished, tmp_path, capsys, monkeypatch, data):
    # The plots and the HTML report are drawn by the slow test; here a stub writes the
    # tables only, so that examples stay cheap.
    monkeypatch.setattr(comparison, "_write_outputs", _tables_only)
    _check(finished, tmp_path / "ex", capsys, data)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(data=st.data())
def test_fuzzed_compare_inputs_whole_command(finished, tmp_path, capsys, data):
    _check(finished, tmp_path / "ex", capsys, data)


def _tables_only(out_dir, df, runs, names, notes, overwrite, limits=None, *_rest, **_kw):
    from lenasim.core.writers import write_atomically

    def build(tmp: Path) -> None:
        df.to_csv(tmp / "comparison.csv", index=False)
        if limits is not None:
            limits.to_csv(tmp / "limits.csv", index=False)

    write_atomically(out_dir, build, kind="comparison", overwrite=overwrite)
