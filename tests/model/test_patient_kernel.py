"""The compiled patient-cycle kernel (lenasim.model.patient_kernel) against its oracle, the
NumPy / PyTensor formulas of lenasim.model.patient_data: the same log likelihood to
rounding, its hand-written gradient against central differences, and merged patient
records (a weight) exactly equal to the records they stand for."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lenasim.core.hazard import frailty_quadrature
from lenasim.core.vocabulary import active
from lenasim.model.kernel import ThetaLayout
from lenasim.model.patient_data import patient_loglik_numpy, read_patient_cycles
from lenasim.model.patient_kernel import patient_arrays, patient_kernel
from lenasim.model.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "patient_level" / "patients.csv"
SPEC = load_spec(ROOT / "models" / "default.yaml")
TERMS = SPEC.terms_map()
Z, W = frailty_quadrature(SPEC.quadrature_nodes, SPEC.quadrature_rule)


@pytest.fixture(scope="module")
def pdata():
    """The example's patient-cycles, with every third graded flare of grade >= 3 (the
    example has none: the severity's n1 branch would go unchecked)."""
    pd_ = read_patient_cycles(EXAMPLE)
    k = active().event_names.index(active().severity.event)
    events = pd_.events.copy()
    events[-1, np.flatnonzero(events[k] * pd_.graded)[::3]] = 1.0
    return replace(pd_, events=events)


def _theta(seed: int, n_trials: int = 3) -> np.ndarray:
    """A parameter set away from the truth: trial effects, frailties, every slope set."""
    lay = ThetaLayout(TERMS, n_trials)
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.6, lay.size)
    for e in lay.events:
        theta[lay.intercept(e)] -= 2.0
        theta[lay.sigma(e)] = 0.3 + abs(theta[lay.sigma(e)])
    return theta


def _params(theta: np.ndarray, n_trials: int = 3) -> dict:
    """The oracle's parameters from the kernel's ``theta``."""
    lay = ThetaLayout(TERMS, n_trials)
    ev, sev = lay.events, lay.severity
    return {
        "a": np.array([theta[lay.intercept(e)] for e in ev]),
        "beta": {e: np.array([theta[lay.beta(e, t)] for t in TERMS[e]]) for e in ev},
        "sigma": np.array([theta[lay.sigma(e)] for e in ev]),
        "u": np.array([[theta[lay.u(i, e)] for e in ev] for i in range(n_trials)]),
        "sev_a": theta[lay.intercept(sev)],
        "sev_b": np.array([theta[lay.beta(sev, t)] for t in TERMS[sev]]),
    }  # fmt: skip


def _kernel(theta, pd_, link, events=None):
    events = pd_.events if events is None else events
    consts = patient_arrays(pd_, TERMS, [0, 1, 2], Z, W, link)
    return patient_kernel(theta, np.ascontiguousarray(events, float).ravel(), *consts)


def _oracle(theta, pd_, link, events=None):
    return patient_loglik_numpy(_params(theta), pd_, TERMS, [0, 1, 2], Z, W, link, events)


def test_the_example_has_what_the_checks_need(pdata):
    """The checks below would prove little on data without these: partly followed last
    cycles, graded flares of both kinds, patients to merge, several designs."""
    sev = active().severity
    k = active().event_names.index(sev.event)
    assert (pdata.followed < 1).sum() >= 5
    graded = pdata.events[k] * pdata.graded
    assert 0 < (graded * pdata.events[-1]).sum() < graded.sum()
    assert pdata.merged().n_patients < pdata.n_patients


@pytest.mark.parametrize("link", ["logit", "cloglog_daily"])
@pytest.mark.parametrize("merged", [False, True])
def test_kernel_equals_the_oracle(pdata, link, merged):
    pd_ = pdata.merged() if merged else pdata
    for seed in (1, 2, 3):
        theta = _theta(seed)
        ll, _ = _kernel(theta, pd_, link)
        ref = _oracle(theta, pd_, link)
        assert abs(ll - ref) <= 1e-9 * abs(ref), (seed, ll, ref)


@pytest.mark.parametrize("link", ["logit", "cloglog_daily"])
def test_kernel_gradient_equals_central_differences(pdata, link):
    """Every component of theta (intercepts, each term's slope, the severity's, the
    frailty SDs, each trial's effects): central differences of the oracle, h = 1e-5
    (truncation ~h^2 x the third derivative, rounding ~1e-13 x |ll| / h: both < 1e-6)."""
    pd_ = pdata.merged()
    theta = _theta(4)
    _, grad = _kernel(theta, pd_, link)
    h = 1e-5
    num = np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        num[j] = (_oracle(theta + e, pd_, link) - _oracle(theta - e, pd_, link)) / (2 * h)
    assert np.abs(num).max() > 10  # the likelihood moves with theta: the check can fail
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-5)


def test_merged_records_equal_the_records_they_stand_for(pdata):
    """Merging is exact: value and gradient of the merged data equal the unmerged to
    rounding, with the patient weights summing to the patients."""
    merged = pdata.merged()
    assert merged.weight.sum() == pdata.n_patients
    assert merged.n_cells < pdata.n_cells
    for link in ("logit", "cloglog_daily"):
        theta = _theta(5)
        a, ga = _kernel(theta, pdata, link)
        b, gb = _kernel(theta, merged, link)
        assert abs(a - b) <= 1e-10 * abs(a)
        np.testing.assert_allclose(ga, gb, rtol=1e-9, atol=1e-9)
    assert merged.summary().startswith(f"{pdata.n_patients} patients ({merged.n_patients} "
                                       "distinct records)")  # fmt: skip


def test_merging_keeps_patients_that_differ(tmp_path):
    """Records merge only when identical: another event, trial or follow-up keeps them
    apart."""
    head = "trial,patient,cycle,dose_mg,days_on,cycle_days,followed_days,flare,tls,neutropenia"
    rows = [
        "A,1,1,10,21,28,28,0,0,0", "A,2,1,10,21,28,28,0,0,0",  # the same: merged
        "A,3,1,10,21,28,28,1,0,0",  # a flare
        "B,4,1,10,21,28,28,0,0,0",  # another trial
        "A,5,1,10,21,28,14,0,0,0",  # followed half the cycle
        "A,6,1,10,21,28,28,0,0,0", "A,6,2,10,21,28,28,0,0,0",  # a second cycle
    ]  # fmt: skip
    path = tmp_path / "p.csv"
    path.write_text("\n".join([head, *rows]) + "\n")
    merged = read_patient_cycles(path).merged()
    assert [p for _, p in merged.patients] == ["1", "3", "5", "6", "4"]
    assert merged.weight.tolist() == [2, 1, 1, 1, 1]


def test_kernel_sees_each_observation(pdata):
    """One event flipped, or one flare's grade, changes the log likelihood as the oracle
    says (the kernel reads the observations it is given, not the CSV's)."""
    theta = _theta(6)
    sev_k = active().event_names.index(active().severity.event)
    c = int(np.flatnonzero(pdata.events[sev_k] * pdata.graded)[0])
    for row in (0, 2, len(pdata.events) - 1):
        y = pdata.events.copy()
        y[row, c] = 1 - y[row, c]
        if row == len(pdata.events) - 1:
            assert y[sev_k, c] == 1
        ll, _ = _kernel(theta, pdata, "logit", y)
        ref = _oracle(theta, pdata, "logit", y)
        assert abs(ll - _kernel(theta, pdata, "logit")[0]) > 1e-3
        assert abs(ll - ref) <= 1e-9 * abs(ref)


@pytest.mark.slow  # PyTensor compiles both models (~30-60 s)
def test_model_log_density_and_gradient_equal_the_graph(pdata):
    """The whole model on patient-level data (priors, transforms, the Op in the graph):
    log density and gradient with the kernel equal those with the PyTensor graph."""
    from lenasim.model.fit import load_data
    from lenasim.model.likelihood import build_model

    data = load_data(SPEC, patients=EXAMPLE, evidence=False)
    fast = build_model(data, SPEC, kernel=True)
    slow = build_model(data, SPEC, kernel=False)
    f_lp, s_lp = fast.compile_logp(), slow.compile_logp()
    f_dlp, s_dlp = fast.compile_dlogp(), slow.compile_dlogp()
    rng = np.random.default_rng(3)
    ip = fast.initial_point()
    for _ in range(3):
        pt = {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in ip.items()}
        assert abs(f_lp(pt) - s_lp(pt)) <= 1e-9 * abs(s_lp(pt))
        np.testing.assert_allclose(f_dlp(pt), s_dlp(pt), rtol=1e-7, atol=1e-7)
