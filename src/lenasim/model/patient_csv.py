"""The patient-cycle CSV of :mod:`lenasim.model.patient_data`, read strictly: its columns,
the features of each patient's own cycles, and every error naming the file, the line,
the column, the value and what is allowed."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.errors import ConfigError
from lenasim.core.exposure import RESTART_GAP_DAYS
from lenasim.core.vocabulary import active

__all__ = ["OPTIONAL_DOSE", "PatientData", "REQUIRED", "event_columns", "read_patient_cycles"]

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
    weight: np.ndarray | None = None  # (P,) patients each record stands for (merged); None: 1

    def merged(self) -> PatientData:
        """The same data with identical patient records counted once, weighted by their
        number (exact: the same trial, and cycle by cycle the same features, share
        followed, events and grading). The patient order of first appearance is kept."""
        keys: dict[bytes, int] = {}
        rep, count = [], []
        starts = np.searchsorted(self.cell_patient, np.arange(self.n_patients + 1))
        names = sorted(self.features)
        w = np.ones(self.n_patients) if self.weight is None else self.weight
        for i in range(self.n_patients):
            c = slice(starts[i], starts[i + 1])
            cells = np.concatenate([
                [float(self.patient_trial[i]), float(starts[i + 1] - starts[i])],
                *(self.features[k][c] for k in names), self.events[:, c].ravel(),
                self.graded[c], self.followed[c],
            ])  # fmt: skip
            key = cells.tobytes()
            if key in keys:
                count[keys[key]] += w[i]
            else:
                keys[key] = len(rep)
                rep.append(i)
                count.append(float(w[i]))
        cells = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in rep])
        new_index = np.full(self.n_patients, -1)
        new_index[rep] = np.arange(len(rep))
        return replace(
            self,
            patients=tuple(self.patients[i] for i in rep),
            patient_trial=self.patient_trial[rep],
            cell_patient=new_index[self.cell_patient[cells]],
            features={k: v[cells] for k, v in self.features.items()},
            events=self.events[:, cells],
            graded=self.graded[cells],
            followed=self.followed[cells],
            weight=np.array(count),
        )

    @property
    def n_patients(self) -> int:
        """Patient records (merged ones count once: :meth:`merged`)."""
        return len(self.patients)

    @property
    def n_cells(self) -> int:
        return int(self.cell_patient.size)

    def cell_trial(self) -> np.ndarray:
        return self.patient_trial[self.cell_patient]

    def cell_weight(self) -> np.ndarray:
        """(N,) the patients each cell stands for (1 unless merged)."""
        return np.ones(self.n_cells) if self.weight is None else self.weight[self.cell_patient]

    def summary(self) -> str:
        ev = active().event_names
        cw = self.cell_weight()
        counts = ", ".join(f"{cw @ self.events[e]:.0f} {k}" for e, k in enumerate(ev))
        n_pat = self.n_patients if self.weight is None else self.weight.sum()
        merged = "" if self.weight is None else f" ({self.n_patients} distinct records)"
        return (
            f"{n_pat:.0f} patients{merged} in {len(self.trials)} trials, {cw.sum():.0f} cycles "
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
