"""The plot child forked at the start of `python -m lenasim run` (pipeline/plots.py,
start_early): only for a run with plots, taken once by the command, and gone with its
folder when closed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lenasim.pipeline import plots


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "a.yaml", "--no-plots"],
        ["run", "a.yaml", "--no-p"],  # argparse takes the prefix for --no-plots
        ["run", "--help"],
        ["evidence"],
        ["compare", "a", "b"],
        [],
    ],
)
def test_no_early_child_unless_a_run_draws_figures(argv):
    plots.start_early(argv)
    assert plots.take_early() is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_the_early_child_is_taken_once_and_closed_with_its_folder():
    code = (
        "import os\n"
        "from lenasim.pipeline import plots\n"
        "plots.start_early(['run', 'a.yaml', '--overwrite'])\n"
        "child = plots.take_early()\n"
        "assert child is not None and child.pid is not None\n"
        "assert plots.take_early() is None\n"
        "folder, pid = child.folder, child.pid\n"
        "assert folder.is_dir()\n"
        "child.close()\n"
        "assert not folder.exists()\n"
        "try:\n"
        "    os.kill(pid, 0)\n"
        "except ProcessLookupError:\n"
        "    print('ended')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ended"
