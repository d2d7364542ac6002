"""Patient-level data in the fit (issue 24, item 6): a CSV of patient-cycles beside the
aggregate evidence rows, with a likelihood exact for individual data.

The CSV has one row per cycle a patient started (cycles 1, 2, ..., n with no gap), in
columns (:data:`REQUIRED` and :data:`OPTIONAL`):

- ``trial``, ``patient`` (an identifier unique within the trial), ``cycle`` (1-based);
- ``dose_mg`` (the mean daily dose on the days taken, mg; 0 in a cycle without drug),
  ``days_on`` (days lenalidomide was taken), ``cycle_days`` (the cycle's length);
  optional ``dose_max_mg`` (the highest daily dose of the cycle) and ``dose_first_mg``
  (its first day's dose), both ``dose_mg`` when absent (a constant dose in the cycle), and
  ``first_day`` (the day of the cycle of the first dose, default 1; the days on drug
  follow it without a break);
- one 0/1 column per event of the model (``flare``, ``tls``, ``neutropenia``): the event
  happened in this cycle; optional ``flare_grade3plus`` (the flare reached grade 3; empty
  when not graded, 0 when there was no flare);
- optional ``followed_days`` (end of follow-up: days of the cycle observed, at most
  ``cycle_days``; only a patient's last cycle may be followed in part; default the whole
  cycle);
- optional covariates, one 0/1 column per covariate term of the model (``untreated``,
  ``consolidation``, ``elderly``, ``anti_cd20``, ``chemo``, ``cdk_inhibitor``, and
  ``steroid``: steroid flare prophylaxis in this cycle); a covariate without a column is 0
  (the reference: relapsed CLL, lenalidomide alone, younger than 65, no steroid).

The exposure features of each cycle are those of :func:`lenasim.core.regimen.cycle_features`,
from the patient's own doses: ``log_dose`` = log(dose_mg / 10), ``log_frac_on`` =
log(days_on / cycle_days), ``first`` (the first cycle with drug), ``first_log_dose``,
``rise`` = log(dose_max_mg / highest earlier dose) (in the first cycle over
``dose_first_mg``), ``log_cycle`` = log(the lenalidomide cycle number), ``restart`` (the
first dose follows 14 days or more without drug after an earlier cycle with drug).

The likelihood (:func:`patient_loglik`). Patient i of trial t has his own frailty z_ik
~ N(0, 1) for each event k, shared by all his cycles; his cycles' events are independent
given it::

    L_ik = E_z[ prod_c p_kc(z)^y_kc (1 - f_c p_kc(z))^(1 - y_kc) ],
    p_kc(z) = the hazard of lenasim.core.hazard.cycle_probability at eta_kc + u_k,t + sigma_k z

integrated per patient over his own cycles by the spec's frailty quadrature (the same nodes
as the aggregate rows': ``quadrature_rule``, ``quadrature_nodes``), in log space
(log-sum-exp over the nodes). f_c is the share of cycle c followed: 1 except in a last cycle
cut by the end of follow-up, where an event not (yet) seen counts as TITE-CRM counts it
(Cheung and Chappell, Biometrics 2000: the event time uniform within the cycle, so
P(event seen by f) = f p). A graded flare adds the conditional severity
s^g (1 - s)^(1 - g), s = sigmoid(a_sev + x' b_sev). u_k,t is the trial's between-trial
effect: a trial of the CSV that the evidence table also names shares its effect (do not
enter the same patients twice); a new trial gets its own.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.errors import ConfigError
from lenasim.core.regimen import RESTART_GAP_DAYS
from lenasim.core.vocabulary import active

__all__ = [
    "OPTIONAL_DOSE",
    "PatientData",
    "REQUIRED",
    "event_columns",
    "no_rows",
    "patient_loglik",
    "patient_loglik_numpy",
    "read_patient_cycles",
    "simulate_events",
]

REQUIRED = ("trial", "patient", "cycle", "dose_mg", "days_on", "cycle_days")
OPTIONAL_DOSE = ("dose_max_mg", "dose_first_mg", "first_day", "followed_days")
MAX_DOSE_MG = 1000.0  # far above any lenalidomide dose (a typo guard, not pharmacology)
MAX_CYCLE_DAYS = 366


@dataclass(frozen=True)
class PatientData:
    """The patient-cycles of a CSV, as the likelihood needs them: one *cell* per cycle
    with drug (a cycle without drug has no risk and adds nothing)."""

    path: str
    sha256: str
    trials: tuple[str, ...]  # in order of first appearance
    patients: tuple[tuple[str, str], ...]  # (trial, patient)
    patient_trial: np.ndarray  # (P,) index into trials
    cell_patient: np.ndarray  # (N,) index into patients
    features: dict[str, np.ndarray]  # term -> (N,); plus "days_on"
    events: np.ndarray  # (E + 1, N) 0/1: each event, then the flare's grade >= 3
    graded: np.ndarray  # (N,) 1 where a flare's grade is recorded
    followed: np.ndarray  # (N,) share of the cycle followed (0, 1]
    n_rows: int  # rows of the CSV (cycles without drug included)

    @property
    def n_patients(self) -> int:
        return len(self.patients)

    @property
    def n_cells(self) -> int:
        return int(self.cell_patient.size)

    def cell_trial(self) -> np.ndarray:
        return self.patient_trial[self.cell_patient]

    def summary(self) -> str:
        ev = active().event_names
        counts = ", ".join(f"{int(self.events[e].sum())} {k}" for e, k in enumerate(ev))
        return (
            f"{self.n_patients} patients in {len(self.trials)} trials, {self.n_cells} cycles "
            f"with drug ({counts})"
        )


def event_columns() -> tuple[str, ...]:
    """The CSV's event columns: each event of the active vocabulary, then the grade >= 3
    column of the event that has the severity."""
    vocab = active()
    return (*vocab.event_names, vocab.severity.output)


def _covariate_columns() -> tuple[str, ...]:
    return active().covariate_terms


def _allowed() -> list[str]:
    return [*REQUIRED, *OPTIONAL_DOSE, *event_columns(), *_covariate_columns()]


def read_patient_cycles(path: str | Path) -> PatientData:
    """Read and validate a patient-cycle CSV (see the module docstring). Every error is a
    :class:`ConfigError` naming the file, the line, the column, the value and what is
    allowed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: patient-cycle CSV not found")
    raw = path.read_bytes()
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        msg = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{path}: not a readable CSV ({msg})") from None
    df.columns = [str(c).strip() for c in df.columns]
    allowed = _allowed()
    for c in df.columns:
        if c not in allowed:
            near = difflib.get_close_matches(c, allowed, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                f"{path}: unknown column {c[:60]!r}{hint} A patient-cycle CSV has the columns "
                f"{', '.join(REQUIRED)}, one 0/1 column per event ({', '.join(active().event_names)}),"
                f" and optionally {', '.join((*OPTIONAL_DOSE, event_columns()[-1]))} and the "
                f"covariates {', '.join(_covariate_columns())}"
            )
    if len(set(df.columns)) != len(df.columns):
        dup = next(c for c in df.columns if list(df.columns).count(c) > 1)
        raise ConfigError(f"{path}: column {dup!r} appears twice; give each column once")
    for c in (*REQUIRED, *active().event_names):
        if c not in df.columns:
            raise ConfigError(
                f"{path}: column {c!r} is missing; a patient-cycle CSV needs "
                f"{', '.join((*REQUIRED, *active().event_names))}"
            )
    if df.empty:
        raise ConfigError(f"{path}: no patient-cycle rows (only a header)")
    lines = np.arange(len(df)) + 2  # the header is line 1

    def fail(i: int, col: str, what: str) -> None:
        value = str(df[col].iloc[i]) if col in df.columns else ""
        raise ConfigError(f"{path}, line {lines[i]}, column {col}: got {value[:40]!r}; {what}")

    def text(col: str) -> np.ndarray:
        v = df[col].str.strip().to_numpy(str)
        for i in np.flatnonzero(v == ""):
            fail(i, col, "a value is needed")
        return v

    def number(col: str, lo: float, hi: float, what: str, *, integer=False, default=None):
        if col not in df.columns:
            return None if default is None else np.broadcast_to(default, len(df)).astype(float)
        out = np.empty(len(df))
        for i, s in enumerate(df[col].str.strip()):
            if s == "" and default is not None:
                out[i] = default[i] if np.ndim(default) else default
                continue
            try:
                x = float(s)
            except ValueError:
                fail(i, col, f"allowed: {what}")
            if not np.isfinite(x) or x < lo or x > hi or (integer and x != int(x)):
                fail(i, col, f"allowed: {what}")
            out[i] = x
        return out

    def flag(col: str, *, empty_ok=False) -> np.ndarray:
        if col not in df.columns:
            return np.full(len(df), np.nan if empty_ok else 0.0)
        out = np.empty(len(df))
        for i, s in enumerate(df[col].str.strip()):
            if s in ("0", "1"):
                out[i] = float(s)
            elif s == "" and empty_ok:
                out[i] = np.nan
            else:
                fail(i, col, "allowed: 0 or 1" + (" (or empty: not graded)" if empty_ok else ""))
        return out

    trial, patient = text("trial"), text("patient")
    cycle = number("cycle", 1, 1000, "a whole number of 1 or more", integer=True)
    dose = number("dose_mg", 0, MAX_DOSE_MG, f"a dose in mg from 0 to {MAX_DOSE_MG:g}")
    cdays = number("cycle_days", 1, MAX_CYCLE_DAYS, f"whole days from 1 to {MAX_CYCLE_DAYS}",
                   integer=True)  # fmt: skip
    days_on = number("days_on", 0, MAX_CYCLE_DAYS, "whole days from 0 to the cycle's length",
                     integer=True)  # fmt: skip
    dmax = number("dose_max_mg", 0, MAX_DOSE_MG, "a dose in mg, at least dose_mg", default=dose)
    dfirst = number("dose_first_mg", 0, MAX_DOSE_MG, "a dose in mg, at most dose_max_mg",
                    default=dose)  # fmt: skip
    first_day = number("first_day", 1, MAX_CYCLE_DAYS, "a day of the cycle (1 = its first)",
                       integer=True, default=1.0)  # fmt: skip
    followed = number("followed_days", 0, MAX_CYCLE_DAYS,
                      "days followed, more than 0 and at most cycle_days", default=cdays)  # fmt: skip
    events = {k: flag(k) for k in active().event_names}
    sev_col = event_columns()[-1]
    grade = flag(sev_col, empty_ok=True)
    covs = {c: flag(c) for c in _covariate_columns()}
    sev_event = active().severity.event
    for i in range(len(df)):
        if days_on[i] > cdays[i]:
            fail(i, "days_on", f"at most the cycle's {cdays[i]:g} days")
        if days_on[i] > 0 and dose[i] <= 0:
            fail(i, "dose_mg", "more than 0 in a cycle with days on drug")
        if days_on[i] == 0 and dose[i] != 0:
            fail(i, "dose_mg", "0 in a cycle without days on drug (days_on 0)")
        if days_on[i] > 0 and not dfirst[i] <= dose[i] * (1 + 1e-9) <= dmax[i] * (1 + 1e-9) + 1e-9:
            col = "dose_max_mg" if dmax[i] < dose[i] else "dose_first_mg"
            fail(i, col, "dose_first_mg <= dose_mg <= dose_max_mg (the mean lies between them)")
        if days_on[i] > 0 and first_day[i] + days_on[i] - 1 > cdays[i]:
            fail(i, "first_day", f"first_day + days_on - 1 at most the cycle's {cdays[i]:g} days")
        if not 0 < followed[i] <= cdays[i]:
            fail(i, "followed_days", f"more than 0 and at most the cycle's {cdays[i]:g} days")
        if days_on[i] == 0:
            for k, y in events.items():
                if y[i] == 1:
                    fail(i, k, "0 in a cycle without drug (the model gives it no risk)")
        if grade[i] == 1 and events[sev_event][i] != 1:
            fail(i, sev_col, f"1 only in a cycle with {sev_event} 1")
        if "untreated" in covs and "consolidation" in covs:
            if covs["untreated"][i] == 1 and covs["consolidation"][i] == 1:
                fail(i, "consolidation", "0 when untreated is 1 (one setting per patient)")

    # patients: cycles 1..n in order, one row each; constant covariates within a patient
    order = np.lexsort((cycle, patient, trial))
    keys = list(zip(trial, patient))
    seen: dict[tuple[str, str], list[int]] = {}
    for i in order:
        seen.setdefault(keys[i], []).append(int(i))
    trials: list[str] = []
    for t in trial:
        if t not in trials:
            trials.append(t)
    patients = sorted(seen, key=lambda k: (trials.index(k[0]), min(seen[k])))
    feats: dict[str, list[float]] = {}
    cell_patient, cell_rows = [], []
    setting_terms = [c for c in ("untreated", "consolidation", "elderly") if c in covs]
    for p, key in enumerate(patients):
        rows = seen[key]
        cyc = cycle[rows]
        for j, i in enumerate(rows):
            if cyc[j] != j + 1:
                what = (
                    "a repeated cycle" if j and cyc[j] == cyc[j - 1] else "cycles 1, 2, ... in turn"
                )
                fail(i, "cycle", f"patient {key[1]!r} of trial {key[0]!r} needs {what}")
            if followed[i] < cdays[i] and j != len(rows) - 1:
                fail(i, "followed_days", "the whole cycle: only a patient's last cycle may be "
                     "followed in part")  # fmt: skip
            for c in setting_terms:
                if covs[c][i] != covs[c][rows[0]]:
                    fail(i, c, f"the same in every cycle of patient {key[1]!r} (line "
                         f"{lines[rows[0]]} has {covs[c][rows[0]]:g})")  # fmt: skip
        highest, n_len, start, last_abs = 0.0, 0, 0, None
        for i in rows:
            if days_on[i] > 0:
                n_len += 1
                first = highest <= 0
                ref = dfirst[i] if first else highest
                log_dose = float(np.log(dose[i] / 10.0))
                first_abs = start + int(first_day[i]) - 1
                gap = 0 if last_abs is None else first_abs - last_abs - 1
                f = {
                    "log_dose": log_dose,
                    "log_frac_on": float(np.log(days_on[i] / cdays[i])),
                    "first": float(first),
                    "first_log_dose": float(first) * log_dose,
                    "rise": max(float(np.log(dmax[i] / ref)), 0.0),
                    "log_cycle": float(np.log(n_len)),
                    "restart": float(gap >= RESTART_GAP_DAYS),
                    "exposed": 1.0,
                    "days_on": float(days_on[i]),
                    **{c: float(v[i]) for c, v in covs.items()},
                }
                for k, v in f.items():
                    feats.setdefault(k, []).append(v)
                cell_patient.append(p)
                cell_rows.append(i)
                highest = max(highest, float(dmax[i]))
                last_abs = first_abs + int(days_on[i]) - 1
            start += int(cdays[i])
    if not cell_rows:
        raise ConfigError(f"{path}: no cycle with drug (every row has days_on 0)")
    cr = np.array(cell_rows)
    ev = np.stack([*(events[k][cr] for k in active().event_names), np.nan_to_num(grade[cr])])
    return PatientData(
        path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        trials=tuple(trials),
        patients=tuple(patients),
        patient_trial=np.array([trials.index(t) for t, _ in patients], np.int64),
        cell_patient=np.array(cell_patient, np.int64),
        features={k: np.array(v) for k, v in feats.items()},
        events=ev,
        graded=(~np.isnan(grade[cr])).astype(float),
        followed=followed[cr] / cdays[cr],
        n_rows=len(df),
    )


# ------------------------------------------------------------------------ likelihood


class _NumpyOps:
    name = "numpy"

    @staticmethod
    def softplus(x):
        return np.logaddexp(0.0, x)

    @staticmethod
    def segment_sum(values, index, n):
        out = np.zeros((n, *values.shape[1:]))
        np.add.at(out, index, values)
        return out

    @staticmethod
    def logsumexp(x, axis):
        m = x.max(axis=axis, keepdims=True)
        return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)

    @staticmethod
    def log1mexp(x):  # log(1 - exp(x)), x < 0
        return np.log(-np.expm1(x))

    dot = staticmethod(np.dot)
    exp = staticmethod(np.exp)
    log1p = staticmethod(np.log1p)
    expm1 = staticmethod(np.expm1)


class _PytensorOps:
    name = "pytensor"

    def __init__(self) -> None:
        import pytensor.tensor as pt

        self.pt = pt
        self.softplus, self.logsumexp, self.log1mexp = pt.softplus, pt.logsumexp, pt.log1mexp
        self.dot, self.exp, self.log1p, self.expm1 = pt.dot, pt.exp, pt.log1p, pt.expm1

    def segment_sum(self, values, index, n):
        pt = self.pt
        return pt.inc_subtensor(pt.zeros((n, values.shape[1]))[index], values)


def _cell_logp(x, y, f, link: str, ops):
    """log P(the cell's observation | z), (N, Q): y 0/1 (N, 1), f the share followed (N, 1)."""
    full = (f >= 1.0).astype(float)
    f_part = np.where(f >= 1.0, 0.5, f)  # the partial branch is unused where full
    if link == "logit":
        log_p, log_q = -ops.softplus(-x), -ops.softplus(x)
        p = ops.exp(log_p)
    elif link == "cloglog_daily":
        lam = ops.exp(x)
        log_p, log_q = ops.log1mexp(-lam), -lam
        p = -ops.expm1(-lam)
    else:
        raise ValueError(f"unknown link {link!r}")
    miss = full * log_q + (1.0 - full) * ops.log1p(-f_part * p)
    return y * log_p + (1.0 - y) * miss


def _loglik(params, pdata: PatientData, terms, trial_index, z, w, link, y, ops):
    """The log likelihood of the patient-cycles (module docstring). ``params``: ``a`` (E,)
    intercepts, ``beta`` {event: (terms,)}, ``sigma`` (E,), ``u`` (trial, E), ``sev_a``,
    ``sev_b`` (severity terms,); ``trial_index`` (trials of pdata,) rows of ``u``;
    ``y`` (E + 1, N) the observations."""
    from lenasim.core.hazard import days_offset

    vocab = active()
    n = pdata.n_cells
    cell_u_row = np.asarray(trial_index)[pdata.cell_trial()]
    offset = days_offset(pdata.features["days_on"], link)
    f = pdata.followed[:, None]
    logw = np.log(w)[None, :]
    total = 0.0
    for e, ev in enumerate(vocab.event_names):
        names = terms[ev]
        eta = params["a"][e] + params["u"][cell_u_row, e] + offset
        if names:
            X = np.stack([pdata.features[t] for t in names], axis=1)
            eta = eta + ops.dot(X, params["beta"][ev])
        x = eta[:, None] + params["sigma"][e] * np.asarray(z)[None, :]
        ll = _cell_logp(x, y[e][:, None], f, link, ops)  # (N, Q)
        lp = ops.segment_sum(ll, pdata.cell_patient, pdata.n_patients)
        total = total + ops.logsumexp(lp + logw, axis=1).sum()
    sev = vocab.severity
    k = vocab.event_names.index(sev.event)
    s_names = terms[sev.name]
    eta_s = params["sev_a"] + 0.0 * np.zeros(n)
    if s_names:
        Xs = np.stack([pdata.features[t] for t in s_names], axis=1)
        eta_s = eta_s + ops.dot(Xs, params["sev_b"])
    g = y[-1]
    ll_s = g * -ops.softplus(-eta_s) + (1.0 - g) * -ops.softplus(eta_s)
    return total + (y[k] * pdata.graded * ll_s).sum()


def patient_loglik(params, pdata: PatientData, terms, trial_index, z, w, link, y):
    """The PyTensor graph of the patient-cycles' log likelihood (``y``: a tensor, the
    observations as ``pm.Data``, so that simulated data need no recompiling)."""
    return _loglik(params, pdata, terms, trial_index, z, w, link, y, _PytensorOps())


def patient_loglik_numpy(params, pdata: PatientData, terms, trial_index, z, w, link="logit",
                         y=None) -> float:  # fmt: skip
    """The same log likelihood in NumPy, for one parameter set (tests, checks)."""
    y = pdata.events if y is None else y
    return float(_loglik(params, pdata, terms, trial_index, z, w, link, y, _NumpyOps()))


def simulate_events(params, pdata: PatientData, terms, trial_index, rng, link="logit"):
    """(E + 1, N) observations drawn from the likelihood's own model under ``params`` (one
    parameter set, as for :func:`patient_loglik_numpy`): a frailty per patient and event,
    each cycle's event seen with probability f p (f the share followed), a flare's grade
    >= 3 with the severity's probability (simulation-based calibration)."""
    from lenasim.core.hazard import cycle_probability, days_offset

    vocab = active()
    n = pdata.n_cells
    u_row = np.asarray(trial_index)[pdata.cell_trial()]
    offset = days_offset(pdata.features["days_on"], link)
    y = np.zeros((len(vocab.event_names) + 1, n))
    for e, ev in enumerate(vocab.event_names):
        eta = params["a"][e] + params["u"][u_row, e] + offset
        for b, t in zip(params["beta"][ev], terms[ev]):
            eta = eta + b * pdata.features[t]
        z = rng.standard_normal(pdata.n_patients)[pdata.cell_patient]
        p = cycle_probability(eta, 0.0, params["sigma"][e], z, 1.0, link=link)
        y[e] = rng.random(n) < pdata.followed * p
    eta_s = params["sev_a"] + sum(
        b * pdata.features[t] for b, t in zip(params["sev_b"], terms[vocab.severity.name])
    )
    k = vocab.event_names.index(vocab.severity.event)
    y[-1] = y[k] * (rng.random(n) < 1.0 / (1.0 + np.exp(-eta_s)))
    return y


def no_rows(spec):
    """A :class:`~lenasim.model.likelihood.ModelData` without evidence rows (a fit on
    patient-level data alone: the recovery test, SBC, ``fit --no-evidence``)."""
    from lenasim.core.hazard import frailty_quadrature
    from lenasim.model.likelihood import ModelData

    z, w = frailty_quadrature(spec.quadrature_nodes, spec.quadrature_rule)
    e = len(active().event_names)
    empty = np.zeros((0, 1))
    return ModelData(
        rows=pd.DataFrame({"row_id": pd.Series([], dtype=str)}), trials=(), features={},
        mask=empty, comp_event=np.zeros((0, e)), comp_severe=np.zeros(0),
        comp_trial=np.zeros((0, 0)), comp_patients_unit=np.zeros(0), mixing=np.zeros((0, 0)),
        row_unit=np.zeros(0, np.int64), events=np.zeros(0), n=np.zeros(0),
        row_patients=np.zeros(0), z=z, w=w, link=spec.link,
    )  # fmt: skip
