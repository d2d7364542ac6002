"""Fuzzed scenario configs (issue 11): a config broken at any key, with a wrong type, an
extreme or a non-finite value, or as damaged text, either runs (on a tiny cohort) or is
refused with exit code 2 and a message naming the file and the key; never a traceback,
never a write outside the output folder.

Two layers: every key of a complete config x a fixed list of bad values, validated
(fast, exhaustive); and hypothesis's combinations of them, and of damaged YAML text,
through the whole `run` command (a bounded number of examples, derandomised).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lenasim.cli import main
from lenasim.core.errors import ConfigError
from lenasim.core.schema import PARTNER_CLASSES, SETTINGS
from lenasim.simulation.scenario import ACTIONS, load_scenario

# A valid config that uses every key (the optional ones too).
BASE: dict = {
    "name": "fuzz",
    "description": "every key",
    "mirrors": ["chen_2011_amended"],
    "population": {
        "patients": 50,
        "setting": "relapsed",
        "elderly_share": 0.2,
        "partners": ["rituximab"],
        "steroid_prophylaxis": False,
    },
    "regimen": {
        "cycle_days": 28,
        "days_on": [1, 21],
        "start_mg": 5,
        "target_mg": 15,
        "max_mg": 20,
        "escalation": {"step_mg": 5, "every": 1, "unit": "cycles", "first_step_after": 1},
        "reduction_levels_mg": [2.5],
        "cycles": 4,
        "first_cycle": {"cycle_days": 35, "days_on": [1, 28], "no_lenalidomide": False},
    },
    "rules": {
        "on_neutropenia": "hold",
        "on_flare_grade3plus": "reduce",
        "on_tls": "discontinue",
        "escalate_only_if_tolerated": True,
        "on_lowest": "discontinue",
    },
    "limits": {"tls": {"cycle": 1, "max": 0.02}, "max_probability": 0.25},
    "posterior": {"spec": "models/default.yaml", "draws": 5},
    "population_effect": "new_trial",
    "seed": 1,
    "output": "results",
}

# Wrong types, extreme and non-finite values, near-misses of valid ones.
BAD_VALUES: list = [
    None, True, False, 0, -1, 1, 2**31, 2**32, 2**63, 2**64, 10**40, -(10**40),
    0.0, 0.3, 2.5, 100.5, 1e-300, 1e300, math.inf, -math.inf, math.nan,
    "", "text", "12", "yes", "relapse", "hol", "new-trial", "x" * 500,
    [], [1], [1, 2, 3], [0.5, 1e300], {}, {"a": 1},
]  # fmt: skip
DELETE, UNKNOWN = object(), object()
# The fast suite tries each kind of bad value once at every key (wrong type, negative,
# huge, non-finite, empty, long text, lists, a mapping, deleted, misspelt); the slow
# suite tries the others (issue 22.12: the whole list was a fifth of the fast suite's CPU).
FAST_VALUES: list = [None, True, -1, 2**64, 1e300, math.nan, "", "text", "x" * 500, [],
                     [0.5, 1e300], {}]  # fmt: skip


def _same(a, b) -> bool:
    return a is b or (type(a) is type(b) and a == b)


SLOW_VALUES = [v for v in BAD_VALUES if not any(_same(v, f) for f in FAST_VALUES)]


def key_paths(node, path=()) -> list[tuple]:
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        out.append((*path, k))
        if isinstance(v, dict | list):
            out += key_paths(v, (*path, k))
    return out


PATHS = key_paths(BASE)


def mutate(data: dict, path: tuple, value) -> dict:
    import copy

    data = copy.deepcopy(data)
    node = data
    for k in path[:-1]:
        node = node[k]
    last = path[-1]
    if value is DELETE:
        del node[last]
    elif value is UNKNOWN:
        if isinstance(node, dict):
            node[f"{last}x"] = 1  # a misspelt sibling
        else:
            node.append(1)
    else:
        node[last] = value
    return data


def dump(data) -> str:
    """yaml.safe_dump(data, sort_keys=False) through libyaml's emitter when PyYAML has it:
    the same text for every config these tests write (checked on all 4,699 mutations of
    both bases), a quarter of the CPU (issue 22.12)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False)


def rewrite(path, text: str) -> None:
    """``path.write_text(text)``, the file rewritten in place and cut to the new length,
    never truncated to empty: truncating made ext4 flush it at each close (its
    auto_da_alloc), ~2 ms of waiting per value, and unlinking and creating it instead
    cost ~0.4 ms of CPU per value (~0.7 s of these tests; 10 us this way; issue 22.12)."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def dotted(path: tuple) -> str:
    out = ""
    for x in path:
        out += f"[{x}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out


@pytest.mark.parametrize("path", PATHS, ids=dotted)
def test_every_key_broken_every_way(tmp_path, path):
    """Each kind of bad value at each key: valid, or a ConfigError whose message names the
    file and the key (or the block holding it, for a rule that ties keys together)."""
    _every_key_broken(tmp_path, path, [*FAST_VALUES, DELETE, UNKNOWN])


@pytest.mark.slow  # the rest of BAD_VALUES (issue 22.12)
@pytest.mark.parametrize("path", PATHS, ids=dotted)
def test_every_key_broken_every_other_way(tmp_path, path):
    _every_key_broken(tmp_path, path, SLOW_VALUES)


def _every_key_broken(tmp_path, path, values):
    cfg = tmp_path / "fuzz.yaml"
    expected = dotted(path[:-1]) if len(path) > 1 else dotted(path)
    for value in values:
        rewrite(cfg, dump(mutate(BASE, path, value)))
        try:
            load_scenario(cfg)
        except ConfigError as err:
            msg = str(err)
            assert all(line.startswith(f"{cfg}: ") for line in msg.splitlines()), msg
            assert f"{cfg}: {expected}" in msg, (value, msg)
            assert max(map(len, msg.splitlines())) < 400, msg


def test_the_base_config_is_valid(tmp_path):
    cfg = tmp_path / "fuzz.yaml"
    cfg.write_text(yaml.safe_dump(BASE))
    assert load_scenario(cfg).regimen.first_cycle.cycle_days == 35


# --------------------------------------------------------------- the whole run command

values = st.one_of(
    st.sampled_from(BAD_VALUES + [DELETE, UNKNOWN]),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
)
LITERALS = (SETTINGS, PARTNER_CLASSES, ACTIONS, ("days", "weeks", "cycles"),
            ("new_trial", "typical"))  # fmt: skip


def similar(path: tuple) -> st.SearchStrategy:
    """Values of the same type as BASE's at ``path`` (often valid: some configs run)."""
    v = BASE
    for k in path:
        v = v[k]
    if isinstance(v, bool):
        return st.booleans()
    if isinstance(v, int):
        return st.integers(0, 60)
    if isinstance(v, float):
        return st.floats(0.0, 60.0)
    if isinstance(v, str):
        group = next((g for g in LITERALS if v in g), None)
        return st.sampled_from(group) if group else st.text("abc_1", min_size=1, max_size=8)
    return st.just(v)


mutation = st.sampled_from(PATHS).flatmap(
    lambda p: st.tuples(st.just(p), st.one_of(similar(p), similar(p), values))
)


@st.composite
def config_texts(draw) -> bytes:
    data = BASE
    for path, value in draw(st.lists(mutation, max_size=3)):
        try:
            data = mutate(data, path, value)
        except (KeyError, IndexError, TypeError):  # the path went away with an earlier one
            continue
    text = yaml.safe_dump(data, sort_keys=False).encode("utf-8")
    damage = draw(st.sampled_from(["none"] * 4 + ["truncate", "byte", "duplicate line"]))
    if damage == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "byte":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + bytes([draw(st.integers(0, 255))]) + text[i:]
    elif damage == "duplicate line":
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        text = b"".join(lines[: i + 1] + lines[i:])
    return text


def snapshot(folder: Path, skip: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if skip not in p.parents and p != skip
    }


@settings(max_examples=100, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@pytest.mark.slow  # fuzzing: many runs (issue 22.12)
@given(text=config_texts())
def test_run_either_runs_or_says_what_is_wrong(posterior_workdir, text):
    cfg = posterior_workdir / "fuzz.yaml"
    cfg.write_bytes(text)
    out = posterior_workdir / "out"
    before = snapshot(posterior_workdir, out)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["run", str(cfg), "--results", str(out), "--patients", "8", "--draws", "3",
                   "--no-plots", "--quiet", "--overwrite"])  # fmt: skip
    msg = err.getvalue()
    event(f"exit {rc}")
    assert "Traceback" not in msg
    assert snapshot(posterior_workdir, out) == before  # nothing written outside out/
    assert not [p for p in out.glob(".*")], "a temporary folder was left"
    if rc == 0:
        name = load_scenario(cfg).name
        assert (out / name / "manifest.json").is_file()
        return
    assert rc == 2, msg
    assert msg.startswith(f"lenasim run: error: {cfg}: "), msg
    where = msg.removeprefix(f"lenasim run: error: {cfg}: ").split(":", 1)[0]
    top = where.split(".")[0].split("[")[0].split(",")[0]
    named = top in BASE or top.encode() in text  # a key of the file
    assert named or top.startswith("line ") or "must be a mapping" in where, msg


# ------------------------------------------- search configs and limits (issue 21.6)

SEARCH_BASE: dict = {
    "name": "fuzz",
    "description": "every key",
    "population": {"patients": 20, "setting": "relapsed", "partners": ["rituximab"]},
    "rules": {"on_neutropenia": "hold", "on_tls": "discontinue"},
    "posterior": {"spec": "models/default.yaml", "draws": 5},
    "population_effect": "new_trial",
    "seed": 1,
    "output": "results",
    "space": {
        "cycle_days": [28],
        "days_on": [[1, 21], [1, 28]],
        "start_mg": {"from": 5, "to": 10, "by": 5},
        "target_mg": [10],
        "escalation": [
            {"step_mg": [5], "every": [1], "unit": ["cycles"], "first_step_after": [None, 2]}
        ],  # fmt: skip
        "steroid_prophylaxis": [False, True],
        "cycles": 4,
    },
    "limits": {
        "tls": [{"cycle": 2, "max": 0.02}, {"cumulative": True, "max": 0.1}],
        "flare_grade3plus": {"cumulative": True, "max": 0.05},
        "max_probability": 0.25,
    },  # fmt: skip
    "objectives": ["days_to_target", "dose_intensity"],
    "objective_cycles": 3,
    "references": [
        {
            "name": "ref",
            "mirrors": "x",
            "steroid_prophylaxis": False,
            "regimen": {"cycle_days": 28, "days_on": [1, 21], "start_mg": 10, "cycles": 4},
        }
    ],  # fmt: skip
    "top": 1,
    "time_budget_minutes": 5,
}
SEARCH_PATHS = key_paths(SEARCH_BASE)


def test_the_search_base_config_is_valid(tmp_path):
    from lenasim.search.config import load_search
    from lenasim.search.space import enumerate_space

    cfg = tmp_path / "fuzz.yaml"
    cfg.write_text(yaml.safe_dump(SEARCH_BASE))
    assert len(enumerate_space(load_search(cfg)).candidates) == 12  # 2 x 2 x (1 + 2)


@pytest.mark.parametrize("path", SEARCH_PATHS, ids=dotted)
def test_every_search_key_broken_every_way(tmp_path, path):
    """Each kind of bad value at each key of a search config: valid (and its space
    enumerates), or a ConfigError naming the file and the key or a block holding it;
    never another exception, never pydantic's words."""
    _every_search_key_broken(tmp_path, path, [*FAST_VALUES, DELETE, UNKNOWN])


@pytest.mark.slow  # the rest of BAD_VALUES (issue 22.12)
@pytest.mark.parametrize("path", SEARCH_PATHS, ids=dotted)
def test_every_search_key_broken_every_other_way(tmp_path, path):
    _every_search_key_broken(tmp_path, path, SLOW_VALUES)


def _every_search_key_broken(tmp_path, path, values):
    from lenasim.search.config import load_search
    from lenasim.search.space import enumerate_space

    cfg = tmp_path / "fuzz.yaml"
    blocks = {dotted(path[:i]) for i in range(1, len(path) + 1)}
    for value in values:
        rewrite(cfg, dump(mutate(SEARCH_BASE, path, value)))
        try:
            enumerate_space(load_search(cfg), source=str(cfg))
        except ConfigError as err:
            msg = str(err)
            assert all(line.startswith(f"{cfg}: ") for line in msg.splitlines()), msg
            where = {line.removeprefix(f"{cfg}: ").split(": ", 1)[0] for line in msg.splitlines()}
            named = (where & blocks or any(w.startswith(tuple(blocks)) for w in where)
                     or any(b in msg for b in blocks)  # a rule tying keys names both
                     or "space" in where or "(top level)" in where
                     or any(w.startswith("line ") for w in where))  # fmt: skip
            assert named, (value, msg)
            assert "Input should" not in msg and "RiskLimit" not in msg, msg
            assert max(map(len, msg.splitlines())) < 600, msg


limit_values = st.one_of(
    st.sampled_from(BAD_VALUES),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 200),
    st.booleans(),
    st.sampled_from(["0.02", "yes", "2%", ""]),
)
limit_blocks = st.dictionaries(
    st.sampled_from(
        [
            "tls",
            "flare",
            "flare_grade3plus",
            "neutropenia",
            "max_probability",
            "events",
            "TLS",
            "tlss",
        ]
    ),  # fmt: skip
    st.one_of(
        limit_values,
        st.dictionaries(
            st.sampled_from(["max", "cycle", "cumulative", "cycles"]), limit_values, max_size=4
        ),  # fmt: skip
        st.lists(
            st.dictionaries(
                st.sampled_from(["max", "cycle", "cumulative"]), limit_values, max_size=3
            ),
            max_size=3,
        ),  # fmt: skip
    ),
    max_size=4,
)


@settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(limits=limit_blocks)
def test_limits_are_valid_or_a_message_in_words(limits):
    """Any `limits` block, in a scenario and in a search config: valid, or a ConfigError
    whose every line names the limits block, in words. 100 examples here (300 took 1.5 s
    of CPU); the slow twin below runs the 300 (issue 22.12)."""
    _limits_are_valid_or_words(limits)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@pytest.mark.slow  # the fast test's check on 300 examples (issue 22.12)
@given(limits=limit_blocks)
def test_limits_are_valid_or_a_message_in_words_300_examples(limits):
    _limits_are_valid_or_words(limits)


def _limits_are_valid_or_words(limits):
    from lenasim.search.config import SearchConfig
    from lenasim.simulation.scenario import scenario_from_mapping

    scenario = {k: v for k, v in BASE.items() if k != "mirrors"} | {"limits": limits}
    try:
        scenario_from_mapping(scenario, "fuzz.yaml")
    except ConfigError as err:
        for line in str(err).splitlines():
            assert line.startswith("fuzz.yaml: limits"), line
            assert "RiskLimit" not in line and "Input should" not in line, line
    from pydantic import ValidationError

    from lenasim.core.schema import format_errors

    try:
        SearchConfig.model_validate(SEARCH_BASE | {"limits": limits})
    except ValidationError as err:
        for line in format_errors(err, SearchConfig, "s.yaml").splitlines():
            assert line.startswith("s.yaml: limits"), line
            assert "RiskLimit" not in line and "Input should" not in line, line
