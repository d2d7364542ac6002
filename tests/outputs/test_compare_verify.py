"""compare of damaged folders (issue 21, item 6): a manifest that is not a JSON object in
UTF-8, one that claims another kind, bad limits in it, or a file that is not the one the
run wrote (its sha256 differs from the manifest's) ends with exit 2 and a sentence naming
the file; never a traceback, never a comparison of the wrong files.

Each case failed before: a list manifest gave AttributeError, a non-UTF-8 one
UnicodeDecodeError, bad limits a pydantic traceback; a swapped draws.nc, an edited CSV
and a manifest claiming a comparison were compared without a word.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lenasim.cli import main
from lenasim.outputs.report.comparison import compare_runs

TINY = ("--patients", "20", "--draws", "5", "--no-plots", "--quiet")


@pytest.fixture
def runs(finished_runs, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """Copies of the session's two finished runs (conftest.finished_runs)."""
    shutil.copytree(finished_runs, tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    return Path("results/slow_escalation"), Path("results/standard_25mg")


def compare(capsys, a: Path, b: Path) -> tuple[int, str]:
    rc = main(["compare", str(a), str(b), "--out", "cmp"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if rc == 2:
        assert not Path("cmp").exists()
    return rc, err


def test_intact_runs_compare(runs, capsys, monkeypatch):
    """The command writes its folder (the other tests' refusals leave none)."""
    from lenasim.outputs.report import compare as compare_page
    from lenasim.outputs.report import comparison

    # the folder and its manifest are checked, not the figures: none is drawn
    monkeypatch.setattr(comparison, "comparison_plots", lambda *a, **k: None)
    monkeypatch.setattr(compare_page, "images", lambda *a, **k: [])
    rc, err = compare(capsys, *runs)
    assert rc == 0, err
    assert "cannot be verified" not in err and "sha256" not in err
    assert json.loads(Path("cmp/manifest.json").read_text())["lenasim_result"] == "comparison"


def test_a_manifest_that_is_a_json_list(runs, capsys):
    a, b = runs
    (a / "manifest.json").write_text("[1, 2]")
    rc, err = compare(capsys, a, b)
    assert rc == 2
    assert f"{a / 'manifest.json'} holds a JSON list, not the object" in err


def test_a_manifest_that_is_not_utf8(runs, capsys):
    a, b = runs
    data = (b / "manifest.json").read_bytes()
    (b / "manifest.json").write_bytes(data.replace(b'"name"', b'"n\xe9me"', 1))
    rc, err = compare(capsys, a, b)
    assert rc == 2
    assert f"{b / 'manifest.json'} is not UTF-8 text" in err


@pytest.mark.parametrize(
    ("limits", "says"),
    [
        ({"tls": {"cycle": 1, "max": 2}}, "tls"),
        ({"max_probability": "often"}, "max_probability"),
        ([1, 2], ""),
    ],
)
def test_bad_limits_in_the_reference_manifest(runs, capsys, limits, says):
    a, b = runs
    m = json.loads((a / "manifest.json").read_text())
    m["config"]["limits"] = limits
    (a / "manifest.json").write_text(json.dumps(m))
    rc, err = compare(capsys, a, b)
    assert rc == 2
    assert f"{a / 'manifest.json'}: config.limits" in err and says in err


def test_a_draws_file_from_another_scenario(runs, capsys):
    a, b = runs
    shutil.copy(b / "draws.nc", a / "draws.nc")
    rc, err = compare(capsys, a, b)
    assert rc == 2
    assert f"{a / 'draws.nc'} is not the file this run wrote" in err
    assert "sha256 differs" in err


def test_an_edited_csv(runs, capsys):
    a, b = runs
    csv = b / "per_cycle.csv"
    csv.write_text(csv.read_text().replace("tls", "TLS", 1))
    rc, err = compare(capsys, a, b)
    assert rc == 2
    assert f"{csv} is not the file this run wrote" in err


@pytest.mark.parametrize("kind", ["comparison", "search", "webapp"])
def test_a_manifest_claiming_another_kind(runs, capsys, kind):
    a, b = runs
    m = json.loads((b / "manifest.json").read_text())
    m["lenasim_result"] = kind
    (b / "manifest.json").write_text(json.dumps(m))
    rc, err = compare(capsys, a, b)
    assert rc == 2
    assert f'{b / "manifest.json"}: "lenasim_result" says' in err
    assert "not a scenario run" in err


def test_a_missing_manifest(runs, capsys):
    a, b = runs
    (a / "manifest.json").unlink()
    rc, err = compare(capsys, a, b)
    assert rc == 2 and f"result folder {a} has no manifest.json" in err


def test_a_run_without_file_hashes_is_compared_with_a_warning(runs, capsys):
    """Runs of a lenasim that did not record its files' hashes: read, with a warning."""
    a, b = runs
    m = json.loads((a / "manifest.json").read_text())
    del m["files"]
    (a / "manifest.json").write_text(json.dumps(m))
    compare_runs([a, b], None, quiet=True)  # read and compared (not written: cheaper)
    err = capsys.readouterr().err
    assert f"warning: {a} was written by a lenasim that did not record its files' hashes" in err


@pytest.mark.parametrize(
    ("key", "value"),
    [(("population", "partners"), 5), (("mirrors",), [["x"]]), (("mirrors",), [None]),
     (("regimen", "cycle_days"), "28")],
)  # fmt: skip
def test_config_values_of_the_wrong_shape(runs, capsys, key, value):
    """Found by tests/outputs/test_fuzz_compare.py: a manifest's config value of another JSON type
    reached the comparison and its report (TypeError tracebacks)."""
    a, b = runs
    m = json.loads((b / "manifest.json").read_text())
    node = m["config"]
    for k in key[:-1]:
        node = node[k]
    node[key[-1]] = value
    (b / "manifest.json").write_text(json.dumps(m))
    rc, err = compare(capsys, a, b)
    assert rc == 2
    assert f"{b / 'manifest.json'}: config.{'.'.join(key)} must be" in err
