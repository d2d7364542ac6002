"""The plot child (pipeline/plots.py): forked by the command for a run with plots, gone
with its folder when closed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_the_child_is_closed_with_its_folder():
    code = (
        "import os\n"
        "from lenasim.pipeline import plots\n"
        "child = plots.PlotChild()\n"
        "assert child.pid is not None\n"
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
