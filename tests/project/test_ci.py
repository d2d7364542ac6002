"""What CI runs and how the suite behaves without a browser (issue 22, items 9 and 11):
the browser tests are skipped with a visible message saying how to run them, except in
CI, where a missing Chromium fails them; `.ci/run` removes its virtual environment and
runs the quick benchmarks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _pytest_browser(ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["LENASIM_CHROMIUM"] = "/nonexistent/chromium"
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/outputs/test_browser.py", "-p", "no:cacheprovider",
         "-x", "-q", "-ra"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_browser_tests_skip_with_how_to_run_them_outside_ci():
    res = _pytest_browser(None)
    assert res.returncode == 0, res.stdout[-3000:]
    assert re.search(r"SKIPPED \[\d+\] tests/outputs/test_browser.py", res.stdout), res.stdout[
        -3000:
    ]
    assert "install Chromium to run them (Debian: apt-get install chromium" in res.stdout


@pytest.mark.slow
def test_browser_tests_fail_in_ci_without_chromium():
    res = _pytest_browser("true")
    assert res.returncode == 1, res.stdout[-3000:]
    assert "Chromium is not installed" in res.stdout
    assert "SKIPPED" not in res.stdout


def test_ci_script_cleans_up_and_runs_the_quick_benchmarks():
    """Read, not run (it installs a whole environment): the venv lives in a temporary
    folder removed by an EXIT trap, and the quick benchmarks run after the tests."""
    script = (REPO / ".ci" / "run").read_text()
    trap = re.search(r"""^trap '(.*)' EXIT$""", script, flags=re.M)
    assert trap and 'rm -rf "$ci_tmp"' in trap.group(1)
    assert 'venv="$ci_tmp/venv"' in script
    assert script.index("trap ") < script.index("python3 -m venv")
    lines = [ln.strip() for ln in script.splitlines()]
    assert "python benchmarks/run.py --quick" in lines
    assert lines.index("python benchmarks/run.py --quick") > lines.index(
        'bash -euo pipefail -c "$cmd"'
    )
