"""The benchmark's reference (benchmarks/reference_loop.py, a per-patient Python loop)
against the engine, on small cases, and the engine's thread pool. No timings here.

Two checks of the reference:

- on the engine's own random streams it must give the engine's outputs to rounding
  (every output, with every dose rule active): a strong check of both implementations
  (the engine tabulates eta per state and uses p = 1 / (1 + exp(-eta) exp(-(u + sigma z)));
  the reference evaluates cycle_features and cycle_probability per patient and cycle);
- on its own random numbers it must agree within Monte Carlo error. Tolerance: the
  cumulative probability F_c is a mean over N patients of per-patient terms in [0, 1]
  (each patient's conditional probability of an event by cycle c), so one cohort's
  estimate has variance <= F_c (1 - F_c) / N; the mean over S cohorts of the difference
  of two independent estimates (same parameters, ``typical`` population: no trial
  effect) has SE <= sqrt(2 mean_s F (1 - F) / (S N)). We allow 5 SE (+1e-9): a correct
  pair fails one comparison with probability < 1e-6.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from builders import make_draws
from lenasim.core.regimen import Escalation, Regimen
from lenasim.simulation.engine import simulate
from lenasim.simulation.scenario import Population, Rules

_spec = importlib.util.spec_from_file_location(
    "reference_loop", Path(__file__).parents[2] / "benchmarks" / "reference_loop.py"
)
reference_loop = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference_loop)

SLOW6 = Regimen(
    cycle_days=28, days_on=(1, 21), start_mg=2.5, target_mg=10, cycles=6,
    escalation=Escalation(levels_mg=[2.5, 5, 10], every=1, unit="cycles"),
)  # fmt: skip
POP = Population(setting="untreated", partners=["rituximab"], steroid_prophylaxis=True,
                 elderly_share=0.3)  # fmt: skip
RULES = Rules(on_neutropenia="reduce", on_flare_grade3plus="hold", on_tls="discontinue",
              escalate_only_if_tolerated=True)  # fmt: skip


def both(draws, n, seed, effect, engine_streams):
    kw = dict(n_patients=n, seed=seed, population_effect=effect)
    ref = reference_loop.simulate_reference(
        SLOW6.expand(), POP, RULES, draws, engine_streams=engine_streams, **kw
    )
    eng = simulate(SLOW6.expand(), POP, RULES, draws, **kw)
    return ref, eng


def test_reference_on_engine_streams_equals_engine():
    ref, eng = both(make_draws(3), 80, 11, "new_trial", engine_streams=True)
    for v, arr in ref.items():
        np.testing.assert_allclose(arr, eng[v].values, rtol=1e-9, atol=1e-12, err_msg=v)


def test_reference_equals_engine_with_steps_inside_cycles_and_on_lowest_hold():
    """Weekly steps (10 -> 25 mg by 5 mg a week) with escalation only if tolerated (an
    event leaves the second half's steps untaken) and reduce-at-the-lowest = hold."""
    weekly = Regimen(cycle_days=28, days_on=(1, 21), start_mg=10, target_mg=25, cycles=4,
                     escalation=Escalation(step_mg=5, every=1, unit="weeks"))  # fmt: skip
    rules = RULES.model_copy(update={"on_lowest": "hold"})
    d = make_draws(3, intercept={"neutropenia": 0.0})
    kw = dict(n_patients=60, seed=4, population_effect="new_trial")
    ref = reference_loop.simulate_reference(weekly.expand(), POP, rules, d, engine_streams=True,
                                            **kw)  # fmt: skip
    eng = simulate(weekly.expand(), POP, rules, d, **kw)
    for v, arr in ref.items():
        np.testing.assert_allclose(arr, eng[v].values, rtol=1e-9, atol=1e-12, err_msg=v)


@pytest.mark.slow  # statistical (issue 22.12)
def test_reference_agrees_within_monte_carlo_error():
    s, n = 6, 120
    ref, eng = both(make_draws(s), n, 12, "typical", engine_streams=False)
    f = eng["cumulative"].values  # (S, 4, C)
    got, want = ref["cumulative"].mean(0), f.mean(0)
    se = np.sqrt(2 * (f * (1 - f)).mean(0) / (s * n))
    assert np.all(np.abs(got - want) <= 5 * se + 1e-9), (got, want, se)
    # the shares stopped are sampled shares over N patients: the same bound
    q = eng["share_stopped"].values
    se_q = np.sqrt(2 * (q * (1 - q)).mean(0) / (s * n))
    assert np.all(np.abs(ref["share_stopped"].mean(0) - q.mean(0)) <= 5 * se_q + 1e-9)
    # and the two are not the same numbers (independent streams)
    assert not np.allclose(ref["cumulative"], f)


def test_threads_do_not_change_the_result():
    d = make_draws(7)
    kw = dict(n_patients=150, seed=3, chunk_size=3)
    one = simulate(SLOW6.expand(), POP, RULES, d, threads=1, **kw)
    for t in (2, 5):
        xr.testing.assert_identical(simulate(SLOW6.expand(), POP, RULES, d, threads=t, **kw), one)


@pytest.mark.slow  # the benchmark script end to end in a subprocess, 2 s CPU (issue 22.12)
def test_benchmark_quick_runs(tmp_path):
    """``benchmarks/run.py --quick`` (floor and reference, seconds) runs to the end and
    reports the engine/floor ratio, so the benchmark cannot rot unnoticed (no timing is
    asserted: speed is measured by the benchmark, not tested). Its third quick section,
    ``e2e`` (whole runs), is the slow test below; .ci/run runs all three. Slow: CI's slow
    suite keeps the script from rotting; the reference loop and the engine it times are
    checked in process by the fast tests above."""
    out = tmp_path / "bench.json"
    root = Path(__file__).parents[2]
    res = subprocess.run([sys.executable, str(root / "benchmarks" / "run.py"), "--quick",
                          "--only", "floor,reference", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert rows["floor"]["ratio_median_cpu"] > 0 and rows["floor"]["draws"] == 100
    assert rows["reference"]["engine_s_per_cell"] > 0
    assert "ratio engine/floor" in res.stdout


@pytest.mark.slow
def test_benchmark_quick_runs_end_to_end(tmp_path):
    """The ``run_end_to_end`` case of ``--quick``: three whole `lenasim run` processes
    with and without plots beside the engine alone, the ratios printed, and the heavy
    libraries the run imported named (issue 22.11: none; no pandas since the tables and
    the mirrored trial are written without it, no xarray since the NumPy RunDataset)."""
    out = tmp_path / "bench.json"
    root = Path(__file__).parents[2]
    res = subprocess.run([sys.executable, str(root / "benchmarks" / "run.py"), "--quick",
                          "--only", "e2e", "--json", str(out)],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    e2e = json.loads(out.read_text())["e2e"]
    assert e2e["engine_s"] > 0 and len(e2e["plots_all"]) == 3
    assert e2e["plots_ratio_to_engine"] > 0 and e2e["no_plots_ratio_to_engine"] > 0
    assert e2e["imported"] == "-", e2e["imported"]
    assert res.stdout.count("run_end_to_end") == 2
