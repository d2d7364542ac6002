"""Installed from a wheel, lenasim runs a config in any folder on the shipped model
(issue 22, item 9): the wheel carries the spec, the fitted posterior and its plots as
package data (lenasim/models/), and a config that names no posterior.spec uses them.

Slow: builds the wheel (compiling the engine) and installs it into a new virtual
environment (``--system-site-packages``, ``--no-deps``: the dependencies are the
system's). Before the model was package data this failed with "model spec
models/default.yaml not found".
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import fresh_copy, new_venv

REPO = Path(__file__).resolve().parents[2]


def sh(args: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(args, capture_output=True, text=True, timeout=1200, **kw)
    assert res.returncode == 0, f"{args}\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return res


@pytest.mark.slow
def test_a_wheel_runs_a_config_from_any_folder_on_the_shipped_model(tmp_path):
    src = fresh_copy(REPO, tmp_path / "clone")
    sh([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w",
        str(tmp_path / "dist")])  # fmt: skip
    wheel = next((tmp_path / "dist").glob("lenasim-*.whl"))
    env = new_venv(tmp_path / "venv")
    py = str(tmp_path / "venv" / "bin" / "python")
    sh([py, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], env=env)

    # a config of the user's own, in a folder of their own, naming no spec
    work = tmp_path / "elsewhere"
    work.mkdir()
    cfg = yaml.safe_load((REPO / "configs" / "slow_escalation.yaml").read_text())
    assert "spec" not in cfg["posterior"]
    del cfg["output"]  # results/ in the current folder
    (work / "mine.yaml").write_text(yaml.safe_dump(cfg))
    where = sh([py, "-c", "import lenasim; print(lenasim.__file__)"], cwd=work, env=env)
    installed = Path(where.stdout.strip()).parent
    assert tmp_path / "venv" in installed.parents, installed  # not this checkout
    assert (installed / "models" / "default.nc").is_file()
    assert (installed / "models" / "default" / "validation.json").is_file()
    run = [str(tmp_path / "venv" / "bin" / "lenasim"), "run", "mine.yaml", "--patients",
           "200", "--draws", "50", "--quiet"]  # fmt: skip
    sh(run, cwd=work, env=env)
    out = work / "results" / "slow_escalation"
    assert (out / "report.html").is_file()
    assert Path(_manifest(out)["posterior"]["path"]).resolve() == (
        installed / "models" / "default.nc"
    )

    # refitting, redrawing or re-validating the installed model is refused, with the fix
    for cmd in (["fit"], ["plots"], ["validate"]):
        res = subprocess.run([py, "-m", "lenasim", *cmd], cwd=work, env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        assert res.returncode == 2, res.stderr[-2000:]
        assert "the model shipped with lenasim is part of the installed package" in res.stderr
        assert f"lenasim {cmd[0]} my_model.yaml" in res.stderr

    # the same numbers as this checkout's shipped model gives
    check = tmp_path / "checkout"
    check.mkdir()
    shutil.copy(work / "mine.yaml", check / "mine.yaml")
    here = {**env, "PYTHONPATH": str(REPO / "src")}
    sh([sys.executable, "-m", "lenasim", "run", "mine.yaml", "--patients", "200", "--draws",
        "50", "--quiet", "--no-plots"], cwd=check, env=here)  # fmt: skip
    for name in ("per_cycle.csv", "cumulative.csv", "dose.csv"):
        assert (out / name).read_bytes() == (
            check / "results" / "slow_escalation" / name
        ).read_bytes()


def _manifest(folder: Path) -> dict:
    import json

    return json.loads((folder / "manifest.json").read_text())


@pytest.mark.parametrize("command", ["fit", "plots", "validate"])
def test_the_installed_model_is_not_rewritten(monkeypatch, capsys, command):
    """Outside a source tree, fit / plots / validate of the shipped spec are refused before
    any work (they would write into the installed package)."""
    from lenasim.cli import main
    from lenasim.core import shipped

    monkeypatch.setattr(shipped, "in_source_checkout", lambda: False)
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert f"{shipped.DEFAULT_SPEC}: the model shipped with lenasim is part of the installed" in err
