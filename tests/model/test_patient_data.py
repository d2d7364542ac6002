"""Patient-level data in the fit (issue 24, item 6): the CSV's strict reading, the
features of a patient's own cycles, and a likelihood exact for individual data (each
patient's own frailty, integrated over his own cycles)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats

from helpers import cli
from lenasim.core.errors import ConfigError
from lenasim.core.exposure import nominal_features
from lenasim.core.hazard import frailty_quadrature
from lenasim.core.regimen import Escalation, Regimen
from lenasim.model.patient_data import (
    patient_loglik_numpy,
    read_patient_cycles,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "patient_level" / "patients.csv"
HEADER = "trial,patient,cycle,dose_mg,days_on,cycle_days,flare,tls,neutropenia"
TERMS = {"flare": ("log_dose", "first"), "tls": ("log_dose",), "neutropenia": ("log_dose",),
         "flare_severity": ("log_dose",)}  # fmt: skip


def _csv(tmp_path, *lines, header=HEADER, name="p.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def _params(sigma=(1.5, 1.0, 0.8), u=((0.0, 0.0, 0.0),)):
    return {
        "a": np.array([-1.0, -3.0, -1.5]),
        "beta": {
            "flare": np.array([0.5, 1.0]),
            "tls": np.array([0.4]),
            "neutropenia": np.array([0.3]),
        },  # fmt: skip
        "sigma": np.array(sigma, float),
        "u": np.array(u, float),
        "sev_a": -1.0,
        "sev_b": np.array([0.5]),
    }


# ---------------------------------------------------------------- reading, strictly


def test_the_example_reads_and_counts(tmp_path):
    pdata = read_patient_cycles(EXAMPLE)
    assert pdata.trials == ("SYN-HIGH", "SYN-LOW", "SYN-MID")
    assert pdata.n_patients == 180
    assert pdata.followed.min() < 1.0  # patients cut by the end of follow-up
    assert set(np.unique(pdata.events)) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("lines", "header", "expect"),
    [
        (
            ["A,1,1,10,21,28,0,0,0"],
            HEADER.replace("tls", "tsl"),
            ["unknown column 'tsl'", "did you mean 'tls'"],
        ),
        (
            ["A,1,1,10,21,28,0,0"],
            HEADER.replace(",neutropenia", ""),
            ["column 'neutropenia' is missing"],
        ),
        (["A,1,1,10,21,28,0,2,0"], HEADER, ["line 2, column tls", "got '2'", "0 or 1"]),
        (["A,1,1,-5,21,28,0,0,0"], HEADER, ["line 2, column dose_mg", "got '-5'"]),
        (["A,1,1,10,30,28,0,0,0"], HEADER, ["line 2, column days_on", "at most the cycle's 28"]),
        (
            ["A,1,1,10,21,28,0,0,0", "A,1,3,10,21,28,0,0,0"],
            HEADER,
            ["line 3, column cycle", "cycles 1, 2, ... in turn"],
        ),
        (
            ["A,1,1,10,21,28,0,0,0", "A,1,1,10,21,28,0,0,0"],
            HEADER,
            ["line 3, column cycle", "a repeated cycle"],
        ),
        (["A,1,1,0,0,28,1,0,0"], HEADER, ["line 2, column flare", "cycle without drug"]),
        (
            ["A,1,1,10,21,28,0,0,0,1"],
            HEADER + ",flare_grade3plus",
            ["line 2, column flare_grade3plus", "only in a cycle with flare 1"],
        ),
        (
            ["A,1,1,10,21,28,0,0,0,14", "A,1,2,10,21,28,0,0,0,28"],
            HEADER + ",followed_days",
            ["line 2, column followed_days", "only a patient's last cycle"],
        ),
        (
            ["A,1,1,10,21,28,0,0,0,1", "A,1,2,10,21,28,0,0,0,0"],
            HEADER + ",elderly",
            ["line 3, column elderly", "the same in every cycle"],
        ),
        (["A,,1,10,21,28,0,0,0"], HEADER, ["line 2, column patient", "a value is needed"]),
        ([], HEADER, ["no patient-cycle rows"]),
    ],
)
def test_bad_csvs_are_refused_naming_file_line_and_column(tmp_path, lines, header, expect):
    path = _csv(tmp_path, *lines, header=header)
    with pytest.raises(ConfigError) as err:
        read_patient_cycles(path)
    msg = str(err.value)
    assert str(path) in msg
    for e in expect:
        assert e in msg, msg


def test_fit_refuses_a_bad_csv_with_exit_2_and_no_traceback(tmp_path, capsys, monkeypatch):
    """In process (the command's exit code and message; `python -m lenasim`'s own exit
    path has its smoke test in tests/pipeline/test_run.py, and the slow install test runs
    `fit` in a fresh interpreter): the CSV is refused before PyMC is imported."""
    path = _csv(tmp_path, "A,1,1,10,21,28,0,7,0")
    monkeypatch.chdir(tmp_path)
    had_pymc = "pymc" in sys.modules
    rc, _, err = cli(capsys, "fit", "--patients", path)
    assert rc == 2, err
    assert "line 2, column tls" in err
    assert "Traceback" not in err
    assert had_pymc or "pymc" not in sys.modules


# ---------------------------------------------------------------- a patient's features


def test_features_of_the_engines_patients_are_the_regimens(tmp_path):
    """The CSV's doses of patients who follow a protocol give the features the fit and the
    engine compute from the protocol itself (escalation within cycle 1, a restart)."""
    from lenasim.core.hazard import HazardDraws
    from lenasim.validation.patient_level import SyntheticTrial, simulate_patient_cycles

    reg = Regimen(cycle_days=28, days_on=(8, 21), start_mg=2.5, target_mg=10, cycles=4,
                  escalation=Escalation(step_mg=2.5, every=7, unit="days"))  # fmt: skip
    pulse = Regimen(cycle_days=42, days_on=(1, 21), start_mg=10, cycles=3)
    one = {"flare": np.array([-3.0]), "tls": np.array([-5.0]), "neutropenia": np.array([-2.0]),
           "flare_severity": np.array([-1.0])}  # fmt: skip
    draws = HazardDraws(
        terms={k: () for k in one}, intercept=one, coefs={k: {} for k in one},
        tau={k: np.array([0.0]) for k in ("flare", "tls", "neutropenia")},
        sigma={k: np.array([0.5]) for k in ("flare", "tls", "neutropenia")},
    )  # fmt: skip
    trials = [SyntheticTrial("ESC", reg, 3), SyntheticTrial("PULSE", pulse, 2)]
    df, _ = simulate_patient_cycles(draws, trials, seed=5, effects=np.zeros((2, 3)))
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    pdata = read_patient_cycles(path)
    for name, r in (("ESC", reg), ("PULSE", pulse)):
        want = nominal_features(r.expand())
        sel = pdata.cell_trial() == pdata.trials.index(name)
        n_c = r.cycles
        for term in ("log_dose", "log_frac_on", "first", "first_log_dose", "rise",
                     "log_cycle", "restart"):  # fmt: skip
            got = pdata.features[term][sel].reshape(-1, n_c)
            np.testing.assert_allclose(got, np.tile(want[term], (got.shape[0], 1)),
                                       atol=1e-9, err_msg=f"{name} {term}")  # fmt: skip
    assert pdata.features["restart"][pdata.cell_trial() == 1].reshape(-1, 3)[0].tolist() == [
        0,
        1,
        1,
    ]  # 21 days off between Aue-like pulses


# ---------------------------------------------------------------- the likelihood


def _one_patient(tmp_path, events, followed=None):
    """Patient 1 of trial A: 4 cycles of 10 mg (then 25 mg) with the given flare events."""
    lines = []
    doses = [10, 10, 25, 25]
    for c, y in enumerate(events):
        f = "" if followed is None else f",{followed[c]}"
        lines.append(f"A,1,{c + 1},{doses[c]},21,28,{y},0,{1 - y}{f}")
    hdr = HEADER + ("" if followed is None else ",followed_days")
    return read_patient_cycles(_csv(tmp_path, *lines, header=hdr))


def test_a_patients_likelihood_is_his_own_frailty_integral(tmp_path):
    """One patient's likelihood equals the integral over his frailty of the product over
    his cycles (scipy's adaptive quadrature), for each event and with partial follow-up."""
    pdata = _one_patient(tmp_path, [1, 0, 1, 0], followed=[28, 28, 28, 10])
    p = _params()
    z, w = frailty_quadrature(61, "trapezoid")
    got = patient_loglik_numpy(p, pdata, TERMS, [0], z, w)
    f = pdata.features
    want = 0.0
    for e, ev in enumerate(("flare", "tls", "neutropenia")):
        eta = p["a"][e] + sum(b * f[t] for b, t in zip(p["beta"][ev], TERMS[ev]))
        y = pdata.events[e]

        def lik(zz, eta=eta, y=y, s=p["sigma"][e]):
            pc = special.expit(eta + s * zz)
            miss = 1 - pdata.followed * pc
            return np.prod(np.where(y == 1, pc, miss)) * stats.norm.pdf(zz)

        want += np.log(integrate.quad(lik, -12, 12, epsabs=1e-14, limit=200)[0])
    # graded flares: none recorded (no flare_grade3plus column) -> no severity term
    assert got == pytest.approx(want, abs=1e-6)


def test_frailty_is_the_patients_not_a_share(tmp_path):
    """Two events in one patient are likelier than one event in each of two patients
    when patients differ (sigma > 0): the frailty is shared within a patient only. With
    sigma = 0 the two are equally likely. (A quadrature over a share would not tell them
    apart.)"""
    same = ["A,1,1,10,21,28,1,0,0", "A,1,2,10,21,28,1,0,0",
            "A,2,1,10,21,28,0,0,0", "A,2,2,10,21,28,0,0,0"]  # fmt: skip
    spread = ["A,1,1,10,21,28,1,0,0", "A,1,2,10,21,28,0,0,0",
              "A,2,1,10,21,28,1,0,0", "A,2,2,10,21,28,0,0,0"]  # fmt: skip
    a = read_patient_cycles(_csv(tmp_path, *same, name="a.csv"))
    b = read_patient_cycles(_csv(tmp_path, *spread, name="b.csv"))
    z, w = frailty_quadrature(41)
    terms = {**TERMS, "flare": ("log_dose",)}  # every cycle alike: only the grouping differs
    for sigma, differ in ((1.5, True), (0.0, False)):
        p = _params(sigma=(sigma, 1.0, 1.0))
        p["beta"]["flare"] = np.array([0.5])
        la = patient_loglik_numpy(p, a, terms, [0], z, w)
        lb = patient_loglik_numpy(p, b, terms, [0], z, w)
        if differ:
            assert la > lb + 0.2
        else:
            assert la == pytest.approx(lb, abs=1e-9)


# The graph is the oracle path (build_model(kernel=False)), not the fit's: the fast suite
# checks the fit's numba kernel against the same NumPy likelihood (test_patient_kernel.py);
# compiling the graph and its gradient cost 3-4 s of CPU (issue 22.12).
@pytest.mark.slow  # compiles the PyTensor oracle graph; fast twin: test_patient_kernel.py
def test_the_pytensor_graph_equals_numpy_with_its_gradient():
    """The graph the fit samples equals the NumPy likelihood, and its gradient matches
    finite differences of it (on the shipped example, two trials' effects)."""
    import pytensor
    import pytensor.tensor as pt

    from lenasim.model.graph import patient_loglik

    pdata = read_patient_cycles(EXAMPLE)
    z, w = frailty_quadrature(21)
    p = _params(u=((0.3, -0.2, 0.1), (-0.4, 0.5, 0.0), (0.1, 0.1, -0.3)))
    flat = np.concatenate([p["a"], p["beta"]["flare"], p["beta"]["tls"], p["beta"]["neutropenia"],
                           p["sigma"], p["u"].ravel(), [p["sev_a"]], p["sev_b"]])  # fmt: skip
    th = pt.dvector("theta")

    def unpack(v, lib):
        return {"a": v[0:3], "beta": {"flare": v[3:5], "tls": v[5:6], "neutropenia": v[6:7]},
                "sigma": v[7:10], "u": v[10:19].reshape((3, 3)), "sev_a": v[19],
                "sev_b": v[20:21]}  # fmt: skip

    y = pt.constant(pdata.events)
    ll = patient_loglik(unpack(th, pt), pdata, TERMS, [0, 1, 2], z, w, "logit", y)
    fn = pytensor.function([th], [ll, pytensor.grad(ll, th)], mode="FAST_COMPILE")
    val, grad = fn(flat)
    ref = patient_loglik_numpy(unpack(flat, np), pdata, TERMS, [0, 1, 2], z, w)
    assert val == pytest.approx(ref, rel=1e-10)
    h = 1e-6
    for i in (0, 3, 7, 12, 19):
        up, dn = flat.copy(), flat.copy()
        up[i] += h
        dn[i] -= h
        fd = (patient_loglik_numpy(unpack(up, np), pdata, TERMS, [0, 1, 2], z, w)
              - patient_loglik_numpy(unpack(dn, np), pdata, TERMS, [0, 1, 2], z, w)) / (2 * h)  # fmt: skip
        assert grad[i] == pytest.approx(fd, rel=1e-4, abs=1e-4)


# ---------------------------------------------------------------- in the model, in the spec


def test_the_data_put_the_patients_new_trials_after_the_rows():
    """The evidence rows' trials keep their effects; the CSV's new trials get their own
    (the data the model is built from: the model itself is checked in the slow test
    below, which imports PyMC)."""
    from lenasim.model.fit import load_data
    from lenasim.model.spec import load_spec

    data = load_data(load_spec(ROOT / "models" / "default.yaml"), patients=EXAMPLE)
    trials = list(data.trials)
    assert trials[-3:] == ["SYN-HIGH", "SYN-LOW", "SYN-MID"]
    assert set(trials[:-3]) == set(data.rows["trial"])
    assert not data.comp_trial[-3:].any()  # the new trials' effects touch no evidence row


@pytest.mark.slow  # imports PyMC and builds the model (1.5-3 s CPU); fast twin above
def test_the_model_fits_patients_beside_the_rows_with_new_trials_own_effects():
    """The evidence rows' trials keep their effects; the CSV's new trials get their own."""
    from lenasim.model.fit import load_data
    from lenasim.model.graph import build_model
    from lenasim.model.spec import load_spec

    spec = load_spec(ROOT / "models" / "default.yaml")
    data = load_data(spec, patients=EXAMPLE)
    model = build_model(data, spec)
    trials = list(model.coords["trial"])
    assert trials == list(data.trials)
    assert trials[-3:] == ["SYN-HIGH", "SYN-LOW", "SYN-MID"]
    assert set(trials[:-3]) == set(data.rows["trial"])
    assert not data.comp_trial[-3:].any()  # the new trials' effects touch no evidence row
    assert {p.name for p in model.potentials} == {"loglik", "patient_loglik"}


def test_a_changed_patient_csv_makes_the_posterior_stale(tmp_path):
    from lenasim.evidence.table import evidence_hash
    from lenasim.model.posterior import file_hash, stale_reasons
    from lenasim.model.spec import load_spec

    csv = tmp_path / "patients.csv"
    csv.write_bytes(EXAMPLE.read_bytes())
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        "patient_data: patients.csv\n" + (ROOT / "models" / "default.yaml").read_text()
    )
    spec = load_spec(spec_path)
    assert spec.hash() != load_spec(ROOT / "models" / "default.yaml").hash()
    attrs = {"evidence_hash": evidence_hash(), "spec_hash": spec.hash(),
             "patient_data_hash": file_hash(csv)}  # fmt: skip
    assert stale_reasons(attrs, spec_path) == []
    csv.write_text(csv.read_text().replace("SYN-HIGH-001,1,25.0", "SYN-HIGH-001,1,20.0", 1))
    assert stale_reasons(attrs, spec_path) == [
        f"the patient-level data {csv} changed since the fit"
    ]
