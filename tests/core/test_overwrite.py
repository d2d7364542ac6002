"""What ``--overwrite`` may replace (issue 21, item 1): only a folder whose manifest says
it is a lenasim result of the same kind, and holding nothing lenasim did not write.

The first test is the issue's reproduction: a folder that merely *looks* like a
comparison (a ``comparison.csv`` and a ``report.html``) used to be deleted, with the
user's ``thesis.docx`` in it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lenasim.cli import main
from lenasim.core.errors import LenasimError
from lenasim.core.writers import (
    MANIFEST,
    file_hashes,
    replace_file,
    result_kind,
    write_atomically,
)

SLOW_CFG = Path("configs/slow_escalation.yaml")
TINY = ("--patients", "20", "--draws", "5", "--no-plots", "--quiet")


def cli(capsys, *argv) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def two_runs(posterior_workdir, finished_runs) -> tuple[Path, Path]:
    """Two tiny finished runs (copies of the session's) in the synthetic-posterior workdir."""
    import shutil

    res = posterior_workdir / "results"
    shutil.copytree(finished_runs, res)
    return res / "slow_escalation", res / "standard_25mg"


def test_compare_overwrite_keeps_a_folder_that_only_looks_like_a_comparison(two_runs, capsys):
    """The issue's reproduction: mywork/ with comparison.csv, report.html, thesis.docx."""
    mywork = Path("mywork")
    mywork.mkdir()
    (mywork / "comparison.csv").write_text("a,b\n")
    (mywork / "report.html").write_text("<html>\n")
    (mywork / "thesis.docx").write_text("work\n")
    before = tree(mywork)
    rc, err = cli(capsys, "compare", *two_runs, "--out", mywork, "--overwrite")
    assert rc == 2
    assert "mywork exists and is not a comparison of lenasim" in err
    assert "has no manifest.json of lenasim" in err
    assert tree(mywork) == before


@pytest.mark.parametrize(
    ("kind", "files"),
    [
        ("run", {MANIFEST: json.dumps({"name": "x", "config": {}, "hashes": {}})}),
        ("validation", {"summary.json": json.dumps({"settings": {}}), "report.md": "# r\n"}),
        ("comparison", {"comparison.csv": "a\n", "report.html": "<html>"}),
    ],
)
def test_look_alikes_of_every_kind_are_not_results(tmp_path, kind, files):
    """The "legacy by content" rules are gone: content never makes a folder a result."""
    out = tmp_path / "look"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    (out / "notes.txt").write_text("mine")
    assert result_kind(out) is None
    with pytest.raises(LenasimError, match="has no manifest.json of lenasim"):
        write_atomically(out, lambda t: None, kind=kind, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_result_the_user_added_files_to_is_not_replaced(two_runs, capsys):
    run, _ = two_runs
    manifest = json.loads((run / MANIFEST).read_text())
    assert set(manifest["files"]) == {p for p in tree(run) if p != MANIFEST}
    (run / "my_notes.txt").write_text("keep me")
    (run / "sub").mkdir()
    (run / "sub" / "fig.svg").write_text("<svg/>")
    before = tree(run)
    rc, err = cli(capsys, "run", SLOW_CFG, "--overwrite", *TINY)
    assert rc == 2
    assert "also holds files lenasim did not write (my_notes.txt, sub/fig.svg)" in err
    assert tree(run) == before
    # once the user's files are moved away, --overwrite replaces it
    (run / "my_notes.txt").unlink()
    (run / "sub" / "fig.svg").unlink()
    assert cli(capsys, "run", SLOW_CFG, "--overwrite", *TINY)[0] == 0


def test_every_result_lists_the_hashes_of_its_files(tmp_path):
    def build(t: Path) -> None:
        (t / "a.csv").write_text("x\n")
        (t / "top").mkdir()
        (t / "top" / "b.png").write_bytes(b"\x89PNG")

    write_atomically(tmp_path / "out", build, kind="validation", overwrite=False)
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["lenasim_result"] == "validation"
    assert manifest["files"] == {
        "a.csv": hashlib.sha256(b"x\n").hexdigest(),
        "top/b.png": hashlib.sha256(b"\x89PNG").hexdigest(),
    }
    assert file_hashes(tmp_path / "out") == manifest["files"]


def test_replace_file_leaves_the_old_file_on_error(tmp_path):
    dest = tmp_path / "default.nc"
    dest.write_bytes(b"old")

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_file(dest, fail)
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.nc"]
    replace_file(dest, lambda t: t.write_bytes(b"new"))
    assert dest.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.nc"]


def test_model_files_go_through_the_one_writer(tmp_path, monkeypatch):
    """write_posterior and the validation record are written by core.writers.replace_file
    (issue 20, item 6): no hand-made temporary files."""
    from builders import make_draws
    from lenasim.core import writers
    from lenasim.model import posterior

    seen = []
    real = writers.replace_file
    monkeypatch.setattr(posterior, "replace_file", lambda d, w: seen.append(d) or real(d, w))
    posterior.write_posterior(tmp_path / "p.nc", make_draws(8, seed=1), {"converged": 1})
    assert seen == [tmp_path / "p.nc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.nc"]
