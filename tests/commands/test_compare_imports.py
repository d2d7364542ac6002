"""`lenasim compare` keeps Dask out: xarray's first label lookup (``.sel``, index
creation) asks whether an array is a Dask array and, with Dask installed, imports
``dask.array`` to find out (~0.4 s of a ~2.5 s compare); `compare` says no Dask array
can exist before it reads the runs (lenasim.pipeline.posterior.xarray_without_dask, as
`run` does). The outputs are the same bytes either way (checked by hand on the shipped
slow_escalation and standard_25mg runs, 2026-12-07)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from helpers import assert_leaves_unimported


def test_compare_keeps_dask_out_before_reading_the_runs(monkeypatch, tmp_path):
    from lenasim.commands import compare

    calls: list[str] = []
    monkeypatch.setattr(compare, "xarray_without_dask", lambda: calls.append("no dask"))
    monkeypatch.setattr(compare, "compare_runs", lambda *a, **k: calls.append("compare"))
    args = SimpleNamespace(results=[str(tmp_path / "a"), str(tmp_path / "b")],
                           out=str(tmp_path / "c"), overwrite=False)  # fmt: skip
    assert compare.cmd_compare(args) == 0
    assert calls == ["no dask", "compare"]


@pytest.mark.slow
def test_compare_imports_no_dask(finished_runs, tmp_path):
    runs = shutil.copytree(finished_runs, tmp_path / "results")
    code = (
        "from lenasim.cli import main\n"
        f"rc = main(['compare', {str(runs / 'slow_escalation')!r}, "
        f"{str(runs / 'standard_25mg')!r}, '--out', {str(tmp_path / 'cmp')!r}])\n"
        "assert rc == 0, rc\n"
        "import xarray\n"  # it read the runs with xarray, which stayed off Dask
    )
    assert_leaves_unimported(code, ("dask", "distributed"), cwd=tmp_path)
    assert (tmp_path / "cmp" / "comparison.csv").is_file()
