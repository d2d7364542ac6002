"""Fitting: NUTS on the model of :mod:`lenasim.model.likelihood`, the diagnostics gate, and the
posterior saved with its provenance (``models/<spec>.nc``) and its plots
(``models/<spec>/``).

PyMC, PyTensor and nutpie are reached through :mod:`lenasim.model.graph`, imported in one
place, :class:`Fitter`'s constructor: the spec, the evidence and a patient CSV are read and
checked before they load."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenasim import __version__
from lenasim.core.errors import LenasimError
from lenasim.core.hazard import frailty_quadrature
from lenasim.core.interrupts import raise_if_interrupted
from lenasim.core.shipped import DEFAULT_SPEC, refuse_writing_installed_model
from lenasim.core.vocabulary import GATE, active
from lenasim.core.writers import replace_file
from lenasim.evidence.table import evidence_hash, fitted_rows, load_arms, load_evidence
from lenasim.model.given import as_given
from lenasim.model.likelihood import ModelData, prepare
from lenasim.model.spec import (
    ModelSpec,
    load_spec,
    patient_data_path,
    plots_dir,
    posterior_path,
)

# The gate of issue 3 (thresholds in lenasim.core.vocabulary.GATE): any failure stops
# `fit` unless --allow-unconverged.
MAX_RHAT = GATE.max_rhat
MIN_ESS = GATE.min_ess


def main_vars(spec: ModelSpec | None = None) -> tuple[str, ...]:
    """The parameters the gate checks (and the prior draws stored with a fit): every
    variable of :func:`lenasim.model.graph.build_model` that holds a parameter, for
    the active vocabulary's events (each event's coefficients ``beta_<event>`` hold all
    the terms the spec gives it; a block the spec gives no term has none to check)."""
    events = active().event_names
    if spec is not None:
        events = tuple(e for e in events if spec.block_terms(e))
    has_sev = spec is None or bool(spec.block_terms(active().severity.name))
    return (
        "intercept",
        *(f"beta_{e}" for e in events),
        "tau",
        "sigma",
        "sev_intercept",
        *(("sev_beta",) if has_sev else ()),
        "u",
    )


@dataclass
class FitResult:
    idata: object
    diagnostics: dict
    failures: list[str]
    path: Path
    seconds: dict


def load_data(spec: ModelSpec, rows=None, patients=None, *, evidence: bool = True):
    """The fitted evidence rows (or ``rows``) prepared for the spec's model, with the
    patient-cycles of the CSV ``patients`` (a path, read with identical patient records
    merged, or a :class:`~lenasim.model.patient_data.PatientData`, taken as it is: SBC
    simulates each patient's events) beside them; ``evidence=False`` leaves the evidence
    rows out (patient-level data alone)."""
    from dataclasses import replace

    from lenasim.model.patient_data import PatientData, read_patient_cycles

    if not evidence:
        if patients is None:
            raise LenasimError("a fit without the evidence rows needs patient-level data")
        data = no_rows(spec)
    else:
        if rows is None:
            rows = fitted_rows(load_evidence())
        rows, arms = as_given(rows, load_arms(), spec)  # the spec's dose and cycles-at-risk options
        data = prepare(rows, arms, spec.quadrature_nodes, spec.quadrature_rule, spec.link)
    if patients is not None:
        if not isinstance(patients, PatientData):
            patients = read_patient_cycles(patients).merged()
        # the CSV's new trials after the rows' (their effects touch no row: comp_trial 0)
        extra = tuple(t for t in patients.trials if t not in data.trials)
        comp_trial = np.vstack([data.comp_trial, np.zeros((len(extra), data.comp_trial.shape[1]))])
        data = replace(data, patients=patients, trials=data.trials + extra, comp_trial=comp_trial)
    return data


@dataclass
class Sampled:
    """One run of the sampler: the trace, its diagnostics and wall times (seconds)."""

    idata: object
    diagnostics: dict
    seconds: dict


class Fitter:
    """The model of ``spec`` on ``data``, built once and compiled once, sampled as often
    as asked: the fit itself, every leave-one-trial-out refit (row weights), every SBC
    refit (simulated counts) and the recovery test go through :meth:`sample`.

    nutpie's compiled model is cached on disk between processes
    (:mod:`lenasim.model.compiled`); PyMC's own NUTS (``backend="pymc"``) uses PyTensor's
    C cache. Row weights (0 drops a row) and counts are ``pm.Data``, so they change
    without recompiling.
    """

    def __init__(
        self, spec: ModelSpec, data=None, *, backend: str | None = None, kernel: bool = True
    ):
        from lenasim.model import graph  # PyMC, PyTensor, nutpie: the stage's one import of them

        self.graph = graph
        self.spec = spec
        self.data = load_data(spec) if data is None else data
        self.backend = backend or spec.sampler.backend
        self.model = graph.build_model(self.data, spec, kernel=kernel)
        self._compiled = None

    def compile(self) -> Fitter:
        """Compile the model for nutpie (once; a no-op for PyMC, which compiles in sample)."""
        if self._compiled is None and self.backend == "nutpie":
            self._compiled = self.graph.compile_model(self.model)
        return self

    def sample(
        self,
        *,
        weights=None,
        events=None,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        seed: int | None = None,
        target_accept: float | None = None,
        progress: bool = False,
        patient_events=None,
    ) -> Sampled:
        """NUTS on the model with row ``weights`` (default 1) and ``counts`` (default the
        evidence); sampler settings default to the spec's. The same settings and seed give
        the same draws (nutpie: each chain has its own seeded stream, whatever the threads).
        ``patient_events``: (E + 1, cells) observations of the patient-cycles (default the
        CSV's; simulation-based calibration), without recompiling: cells as in
        ``data.patients`` (unmerged data, for simulated events)."""
        s = self.spec.sampler
        draws, tune, chains = draws or s.draws, tune or s.tune, chains or s.chains
        seed = s.seed if seed is None else int(seed)
        target_accept = target_accept or s.target_accept
        n = len(self.data.rows)
        w = np.ones(n) if weights is None else np.asarray(weights, float)
        y = self.data.events if events is None else np.asarray(events, float)
        extra = {"row_weight": w, "row_events": y} if n else {}  # no rows: no such data
        if self.data.patients is not None:
            pe = self.data.patients.events if patient_events is None else patient_events
            if np.shape(pe) != self.data.patients.events.shape:
                raise ValueError(f"patient_events: shape {np.shape(pe)}, not the patient-"
                                 f"cycles' {self.data.patients.events.shape}")  # fmt: skip
            extra["patient_events"] = np.asarray(pe, float).ravel()
        t0 = time.perf_counter()
        self.compile()
        t1 = time.perf_counter()
        idata = self.graph.sample(
            self.model, self._compiled, extra, draws=draws, tune=tune, chains=chains, seed=seed,
            target_accept=target_accept, progress=progress,
        )  # fmt: skip
        t2 = time.perf_counter()
        seconds = {"compile": t1 - t0, "sampling": t2 - t1, "total": t2 - t0}
        return Sampled(idata, diagnostics(idata, self.spec), seconds)

    def prior(self, draws: int, seed: int, var_names=None):
        """``draws`` parameter sets from the model's own prior (``pm.sample_prior_predictive``):
        an InferenceData with a ``prior`` group (dims chain=1, draw)."""
        return self.graph.prior_draws(self.model, draws, seed, var_names or main_vars(self.spec))


def diagnostics(idata, spec: ModelSpec | None = None) -> dict:
    """Max R-hat, min bulk and tail ESS over the main parameters (:func:`main_vars`), and
    divergences."""
    import arviz as az

    names = [v for v in main_vars(spec) if v in idata.posterior]
    rhat = az.rhat(idata, var_names=names)
    ess_b = az.ess(idata, var_names=names, method="bulk")
    ess_t = az.ess(idata, var_names=names, method="tail")

    def worst(ds, fn):
        vals = {k: float(fn(np.asarray(v.values))) for k, v in ds.data_vars.items()}
        key = (max if fn is np.nanmax else min)(vals, key=vals.get)
        return vals[key], key

    r, r_at = worst(rhat, np.nanmax)
    eb, eb_at = worst(ess_b, np.nanmin)
    et, et_at = worst(ess_t, np.nanmin)
    div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    post = idata.posterior
    return {
        "max_rhat": r, "max_rhat_at": r_at, "min_ess_bulk": eb, "min_ess_bulk_at": eb_at,
        "min_ess_tail": et, "min_ess_tail_at": et_at, "divergences": div,
        "chains": int(post.sizes["chain"]), "draws": int(post.sizes["draw"]),
    }  # fmt: skip


def gate(diag: dict) -> list[str]:
    """The failures of the diagnostics gate, in words (empty when it passes)."""
    out = []
    if not diag["max_rhat"] <= MAX_RHAT:
        out.append(f"R-hat {diag['max_rhat']:.3f} > {MAX_RHAT} ({diag['max_rhat_at']})")
    if not diag["min_ess_bulk"] >= MIN_ESS:
        out.append(f"bulk ESS {diag['min_ess_bulk']:.0f} < {MIN_ESS} ({diag['min_ess_bulk_at']})")
    if not diag["min_ess_tail"] >= MIN_ESS:
        out.append(f"tail ESS {diag['min_ess_tail']:.0f} < {MIN_ESS} ({diag['min_ess_tail_at']})")
    if diag["divergences"]:
        out.append(f"{diag['divergences']} divergent transitions")
    return out


def format_diagnostics(diag: dict, failures: list[str]) -> str:
    rows = [
        ("max R-hat", f"{diag['max_rhat']:.4f}", f"<= {MAX_RHAT}", diag["max_rhat_at"]),
        ("min bulk ESS", f"{diag['min_ess_bulk']:.0f}", f">= {MIN_ESS}", diag["min_ess_bulk_at"]),
        ("min tail ESS", f"{diag['min_ess_tail']:.0f}", f">= {MIN_ESS}", diag["min_ess_tail_at"]),
        ("divergences", f"{diag['divergences']}", "0", ""),
    ]
    lines = [f"{'diagnostic':<14}{'value':>10}  {'required':<10}where"]
    lines += [f"{a:<14}{b:>10}  {c:<10}{d}" for a, b, c, d in rows]
    lines.append("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return "\n".join(lines)


def check_complete(idata, draws: int, chains: int) -> None:
    """Refuse a sample with fewer chains or draws than asked for (an interrupted one)."""
    got = dict(getattr(getattr(idata, "posterior", None), "sizes", {}))
    if got.get("chain", 0) != chains or got.get("draw", 0) != draws:
        raise LenasimError(
            f"the sampler returned {got.get('chain', 0)} chain(s) x {got.get('draw', 0)} draws, "
            f"not the {chains} x {draws} asked for (interrupted?); nothing was saved"
        )


def save(idata, path: Path, attrs: dict) -> Path:
    """Write the InferenceData (posterior, sample stats, prior) atomically, compressed."""
    keep = {}
    for group in ("posterior", "sample_stats", "prior"):
        if hasattr(idata, group):
            ds = getattr(idata, group)
            # Recomputable, not kept: unconstrained copies (nutpie's *_log__), u_raw, and the
            # halves *_free / *_positive of a block's coefficients (the block's beta_* holds
            # both, in its terms' order).
            ds = ds.drop_vars([v for v in ds.data_vars if v == "u_raw" or v.endswith("__")
                               or v.endswith(("_free", "_positive"))])  # fmt: skip
            keep[group] = ds
    import arviz as az

    out = az.InferenceData(**keep)
    out.posterior.attrs.update(attrs)
    return replace_file(path, lambda tmp: out.to_netcdf(str(tmp), engine="h5netcdf"))


def fit_spec(
    spec_path: str | Path = DEFAULT_SPEC,
    *,
    draws=None,
    tune=None,
    chains=None,
    seed=None,
    backend=None,
    allow_unconverged=False,
    quiet=False,
    plots=True,
    rows=None,
    out: Path | None = None,
    patients: str | Path | None = None,
    evidence: bool = True,
) -> FitResult:
    """Fit a spec to the evidence, gate on diagnostics, save the posterior and its plots.

    ``patients``: a CSV of patient-cycles fitted beside the evidence rows (default: the
    spec's ``patient_data``, if any); ``evidence=False`` fits the patient-cycles alone.

    Raises
    ------
    LenasimError
        When the diagnostics gate fails and ``allow_unconverged`` is False (the
        posterior is then not saved).
    """
    if out is None:
        refuse_writing_installed_model(spec_path, "fit")  # before PyMC is imported
    from lenasim.model.patient_data import read_patient_cycles

    spec = load_spec(spec_path)  # a bad spec or patient CSV is refused before PyMC loads
    if patients is None:
        patients = patient_data_path(spec, spec_path)
    if patients is not None:
        patients = read_patient_cycles(patients).merged()  # exact: identical records weighted
    elif not evidence:
        raise LenasimError("fit --no-evidence needs patient-level data: --patients CSV, or "
                           "patient_data in the spec")  # fmt: skip
    spec_path = Path(spec_path)
    data = load_data(spec, rows, patients, evidence=evidence)
    fitter = Fitter(spec, data, backend=backend)
    if not quiet:
        print(
            f"lenasim fit: {len(data.rows)} evidence rows, {len(data.trials)} trials, "
            f"{spec.sampler.chains if chains is None else chains} chains",
            file=sys.stderr,
        )
        if data.patients is not None:
            print(f"lenasim fit: patient-level data {data.patients.path}: "
                  f"{data.patients.summary()}", file=sys.stderr)  # fmt: skip
    sampled = fitter.sample(draws=draws, tune=tune, chains=chains, seed=seed, progress=not quiet)
    idata, seconds = sampled.idata, sampled.seconds
    raise_if_interrupted()  # the samplers return a partial trace on Ctrl-C / SIGTERM
    check_complete(idata, draws or spec.sampler.draws, chains or spec.sampler.chains)
    prior = fitter.prior(1000, spec.sampler.seed if seed is None else seed)
    idata.extend(prior)
    diag = sampled.diagnostics
    failures = gate(diag)
    print(format_diagnostics(diag, failures))
    path = out or posterior_path(spec_path)
    if failures and not allow_unconverged:
        raise LenasimError(
            "the sampler did not converge (" + "; ".join(failures) + "). The posterior was "
            "not saved. Rerun with more --tune/--draws, or --allow-unconverged to save it marked"
        )
    attrs = {
        "spec": spec.canonical_json(),
        "spec_hash": spec.hash(),
        "evidence_hash": evidence_hash(),
        "lenasim_version": __version__,
        "seed": int(spec.sampler.seed if seed is None else seed),
        "sampler": json.dumps(
            {
                "backend": backend or spec.sampler.backend,
                "draws": diag["draws"],
                "tune": tune or spec.sampler.tune,
                "chains": diag["chains"],
                "target_accept": spec.sampler.target_accept,
                "pymc": importlib.metadata.version("pymc"),
            }
        ),  # fmt: skip
        "diagnostics": json.dumps(diag),
        "converged": int(not failures),
        "seconds": json.dumps(seconds),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "trials": json.dumps(list(data.trials)),
    }
    if data.patients is not None:
        attrs["patient_data"] = data.patients.path
        attrs["patient_data_hash"] = data.patients.sha256
    if not evidence:
        attrs["evidence_rows"] = 0
    save(idata, path, attrs)
    if not quiet:
        print(
            f"lenasim fit: posterior saved to {path}"
            + ("" if not failures else " (marked unconverged)"),
            file=sys.stderr,
        )
    if plots and len(data.rows):  # the plots show the evidence rows
        from lenasim.model.plots import posterior_plots

        written = posterior_plots(idata, data, spec, plots_dir(spec_path))
        if not quiet:
            print(f"lenasim fit: {len(written)} plots in {plots_dir(spec_path)}/", file=sys.stderr)
    return FitResult(idata=idata, diagnostics=diag, failures=failures, path=path, seconds=seconds)


def no_rows(spec):
    """A :class:`~lenasim.model.likelihood.ModelData` without evidence rows (a fit on
    patient-level data alone: the recovery test, SBC, ``fit --no-evidence``)."""
    import pandas as pd

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
