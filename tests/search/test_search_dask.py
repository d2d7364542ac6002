"""The search on a dask.distributed LocalCluster of two worker processes gives the rows and
files of the in-process search, bit for bit; the draws are scattered once and the tasks
are batches of candidates; workers running other code are refused."""

from __future__ import annotations

import math
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import make_draws
from lenasim.core.errors import LenasimError
from lenasim.search.config import SearchConfig
from lenasim.search.evaluate import Cohort
from lenasim.search.execute import (
    _check_workers,
    dask_client,
    evaluate_in_process,
    evaluate_on_dask,
    fingerprint,
)
from lenasim.search.space import enumerate_space

SEARCH = {
    "name": "daskcheck",
    "seed": 11,
    "population": {"patients": 40, "setting": "relapsed"},
    "rules": {"on_neutropenia": "hold", "on_tls": "discontinue",
              "escalate_only_if_tolerated": True},
    "posterior": {"spec": "models/default.yaml", "draws": 12},
    "space": {"start_mg": [5, 10, 25], "target_mg": 25, "cycles": 6,
              "escalation": [{"step_mg": [5, 7.5], "every": [1, 2], "unit": "weeks"}],
              "steroid_prophylaxis": [False, True]},
    "limits": {"tls": {"cycle": 1, "max": 0.05},
               "flare_grade3plus": {"cumulative": True, "max": 0.2}},
    "references": [{"name": "standard_25mg", "regimen": {
        "cycle_days": 28, "days_on": [1, 21], "start_mg": 25, "cycles": 6}}],
    "top": 1,
}  # fmt: skip


def _same_rows(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            both_nan = isinstance(x[k], float) and np.isnan(x[k]) and np.isnan(y[k])
            assert both_nan or x[k] == y[k], (x["id"], k, x[k], y[k])


@pytest.mark.slow  # starts a Dask LocalCluster (worker processes)
def test_dask_rows_equal_in_process_rows_and_draws_are_scattered_once():
    cfg = SearchConfig.model_validate(SEARCH)
    cands = list(enumerate_space(cfg).candidates)
    draws = make_draws(30, seed=5)
    idx = np.arange(3, 30, 3)[:9]
    cohort = Cohort(draws.take(idx), idx)
    local = evaluate_in_process(cfg, cands, cohort, threads=2)
    with dask_client("local", workers=2) as client:
        assert len(client.nthreads()) == 2
        calls = {"scatter": 0, "submit": 0}
        scatter, submit = client.scatter, client.submit

        def counting_scatter(*a, **k):
            calls["scatter"] += 1
            return scatter(*a, **k)

        def counting_submit(*a, **k):
            calls["submit"] += 1
            return submit(*a, **k)

        client.scatter, client.submit = counting_scatter, counting_submit
        remote = evaluate_on_dask(client, cfg, cands, cohort, batch_size=4)
    _same_rows(local, remote)
    assert calls == {"scatter": 1, "submit": math.ceil(len(cands) / 4)}


def _args(config: str, **kw) -> Namespace:
    base = dict(config=config, dask=None, workers=None, batch_size=None, yes=True,
                overwrite=False, results=None, patients=None, draws=None, top=None,
                no_plots=True, quiet=True, refit=False)  # fmt: skip
    return Namespace(**(base | kw))


@pytest.mark.slow  # starts a Dask LocalCluster (worker processes)
def test_cli_on_a_local_cluster_writes_the_same_files(posterior_workdir):
    from lenasim.commands.search import cmd_search

    cfg = posterior_workdir / "s.yaml"
    cfg.write_text(yaml.safe_dump(SEARCH, sort_keys=False))
    assert cmd_search(_args(str(cfg), results="inproc")) == 0
    assert cmd_search(_args(str(cfg), results="dask", dask="local", workers=2,
                            batch_size=5)) == 0  # fmt: skip
    a, b = Path("inproc/search-daskcheck"), Path("dask/search-daskcheck")
    for name in ("candidates.csv", "references.csv", "comparison.csv", "report.md"):
        assert _without_run_line(a / name) == _without_run_line(b / name), name
    assert "on Dask (local, 2 worker threads" in (b / "report.md").read_text()


def _without_run_line(path: Path) -> str:
    """The file, without the report's line saying how the search ran."""
    return "\n".join(x for x in path.read_text().splitlines() if not x.startswith("- run:"))


class _FakeClient:
    def __init__(self, theirs: dict):
        self.theirs = theirs

    def run(self, fn):
        return self.theirs


def test_workers_with_other_code_are_refused():
    here = fingerprint()
    _check_workers(_FakeClient({"tcp://w1": here}), "tcp://x:1")  # same code: fine
    other = here | {"numpy": "1.0.0"}
    with pytest.raises(LenasimError, match=r"worker tcp://w2 runs numpy 1\.0\.0"):
        _check_workers(_FakeClient({"tcp://w1": here, "tcp://w2": other}), "tcp://x:1")
    with pytest.raises(LenasimError, match="no workers"):
        _check_workers(_FakeClient({}), "tcp://x:1")


def test_bad_dask_addresses():
    with pytest.raises(LenasimError, match="give `local`"):
        with dask_client("my-cluster"):
            pass
    with pytest.raises(LenasimError, match="--workers applies to --dask local only"):
        with dask_client("tcp://127.0.0.1:9", workers=2):
            pass
