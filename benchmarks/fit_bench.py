"""One fit of models/default.yaml with one sampler set-up, timed; prints one JSON line.

Run by ``benchmarks/run.py --fit`` in a fresh subprocess per set-up (so that each pays its
own imports and compilation; run.py also times the whole process). Usable alone::

    python benchmarks/fit_bench.py --setup nutpie [--tune 300 --target-accept 0.9]

Set-ups:

- ``pymc``: PyMC's own NUTS on lenasim's model (``Fitter(backend="pymc")``), 4 chains on
  2 processes.
- ``nutpie-legacy``: the set-up before issue 13: nutpie (numba) on the masked-grid
  likelihood graph (``benchmarks/legacy_likelihood.py``) with 9 Gauss-Hermite nodes (the
  spec's quadrature then), compiled by ``nutpie.compile_pymc_model`` in every process.
- ``nutpie-graph``: the compact likelihood as a PyTensor graph
  (``build_model(kernel=False)``) at the spec's quadrature, with the compile cache: the
  kernel's oracle, and the step between the two.
- ``nutpie``: lenasim's default (``lenasim.model.fit.Fitter``): the likelihood and its
  gradient from the compiled kernel (``lenasim.model.kernel``), nutpie with its compiled
  model cached on disk between processes.
- ``numpyro``: PyMC's numpyro sampler (needs ``pip install numpyro jax``).

Patient-level data (issue 24, item 6): ``--patients CSV`` fits the patient-cycles beside
the evidence rows (``--no-evidence``: alone), read with identical patient records merged
as ``fit`` reads them; ``nutpie`` then uses the patient kernel
(``lenasim.model.patient_kernel``), ``nutpie-graph`` the PyTensor graph of the same
formulas (its oracle; its nutpie compile is the slow part). ``--per-eval`` samples nothing:
it times one evaluation of the patient-cycles' log likelihood and gradient (the kernel;
the NumPy formulas, value only; the model's log density and gradient compiled by
PyTensor with the kernel Op and with the graph) and prints them as one JSON line::

    python benchmarks/fit_bench.py --setup nutpie --per-eval \
        --patients examples/patient_level/patients.csv --no-evidence

Sampler settings are the spec's unless overridden. Timings: ``compile`` is everything
before the first NUTS step (PyMC: pm.sample's wall time minus its recorded
``sampling_time``), ``sampling`` is tuning + draws. ESS is ArviZ bulk/tail ESS over the
diagnostics gate's variables; ESS/s = ESS / sampling seconds.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--setup",
        choices=("pymc", "nutpie-legacy", "nutpie-graph", "nutpie", "numpyro"),
        required=True,
    )
    ap.add_argument("--spec", default="models/default.yaml")
    ap.add_argument("--draws", type=int, default=None)
    ap.add_argument("--tune", type=int, default=None)
    ap.add_argument("--chains", type=int, default=None)
    ap.add_argument("--target-accept", type=float, default=None)
    ap.add_argument("--patients", default=None, help="a patient-cycle CSV fitted beside the rows")
    ap.add_argument("--no-evidence", action="store_true", help="the patient-cycles alone")
    ap.add_argument("--per-eval", action="store_true", help="time one likelihood evaluation")
    args = ap.parse_args(argv)
    if args.per_eval:
        return per_eval(args)

    t_start = time.perf_counter()
    import arviz as az

    if args.setup == "nutpie-legacy":
        sys.path.insert(0, str(Path(__file__).parent))
        from legacy_likelihood import use_legacy_likelihood

        use_legacy_likelihood()
    from lenasim.model.fit import Fitter, diagnostics, load_data, main_vars
    from lenasim.model.spec import load_spec

    spec = load_spec(args.spec)
    if args.setup == "nutpie-legacy":  # the quadrature of the spec before issue 13
        spec = spec.model_copy(update={"quadrature_nodes": 9, "quadrature_rule": "gauss_hermite"})
    s = spec.sampler
    draws, tune = args.draws or s.draws, args.tune or s.tune
    chains, target = args.chains or s.chains, args.target_accept or s.target_accept
    load1 = os.getloadavg()[0]
    if args.setup in ("nutpie", "nutpie-graph", "pymc"):
        data = None
        if args.patients or args.no_evidence:
            data = load_data(spec, patients=args.patients, evidence=not args.no_evidence)
        fitter = Fitter(spec, data, backend=args.setup.split("-")[0],
                        kernel=args.setup != "nutpie-graph")  # fmt: skip
        t_model = time.perf_counter()
        out = fitter.sample(draws=draws, tune=tune, chains=chains, target_accept=target)
        idata = out.idata
        if args.setup.startswith("nutpie"):
            compile_s, sampling_s = out.seconds["compile"], out.seconds["sampling"]
            version = importlib.metadata.version("nutpie")
        else:
            sampling_s = float(idata.sample_stats.attrs["sampling_time"])
            compile_s = out.seconds["total"] - sampling_s
            version = importlib.metadata.version("pymc")
    elif args.setup == "nutpie-legacy":
        import nutpie

        fitter = Fitter(spec, backend="nutpie", kernel=False)  # the legacy likelihood graph
        t_model = time.perf_counter()
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(fitter.model)
        t1 = time.perf_counter()
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=s.seed,
                              target_accept=target, progress_bar=False)  # fmt: skip
        compile_s, sampling_s = t1 - t0, time.perf_counter() - t1
        version = nutpie.__version__
    else:  # numpyro through PyMC
        import pymc as pm

        fitter = Fitter(spec, backend="pymc")
        t_model = time.perf_counter()
        t0 = time.perf_counter()
        with fitter.model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=s.seed,
                              target_accept=target, progressbar=False,
                              compute_convergence_checks=False, nuts_sampler="numpyro",
                              nuts_sampler_kwargs={"chain_method": "vectorized"})  # fmt: skip
        # Recorded on the posterior; it includes JAX's compilation of the sampler.
        sampling_s = float(idata.posterior.attrs["sampling_time"])
        compile_s = (time.perf_counter() - t0) - sampling_s
        version = importlib.metadata.version("numpyro")

    names = [v for v in main_vars() if v in idata.posterior]
    ess_b = az.ess(idata, var_names=names, method="bulk")

    def flat(ds):
        return np.concatenate([np.ravel(v.values) for v in ds.data_vars.values()])

    eb = flat(ess_b)
    diag = diagnostics(idata)
    stats = idata.sample_stats
    print(json.dumps({
        "setup": args.setup, "version": version, "draws": draws, "tune": tune,
        "chains": chains, "target_accept": target, "model_build_s": t_model - t_start,
        "compile_s": compile_s, "sampling_s": sampling_s,
        "in_process_s": time.perf_counter() - t_start,
        "min_ess_bulk": diag["min_ess_bulk"], "median_ess_bulk": float(np.nanmedian(eb)),
        "min_ess_tail": diag["min_ess_tail"], "max_rhat": diag["max_rhat"],
        "divergences": diag["divergences"],
        "mean_steps": float(stats["n_steps"].mean()) if "n_steps" in stats else None,
        "min_ess_bulk_per_s": diag["min_ess_bulk"] / sampling_s,
        "median_ess_bulk_per_s": float(np.nanmedian(eb)) / sampling_s,
        "load_before": load1, "load_after": os.getloadavg()[0],
        "patients": args.patients, "evidence": not args.no_evidence,
    }))  # fmt: skip


def _best_of(fn, n: int, repeat: int = 7) -> float:
    """The best of ``repeat`` mean times of ``n`` calls (seconds per call)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def per_eval(args) -> None:
    """One evaluation of the patient-cycles' log likelihood (and gradient), timed four
    ways on the same data (see the module docstring)."""
    import pytensor

    from lenasim.model.fit import load_data
    from lenasim.model.graph import build_model
    from lenasim.model.kernel import ThetaLayout
    from lenasim.model.patient_data import patient_loglik_numpy
    from lenasim.model.patient_kernel import patient_arrays, patient_kernel
    from lenasim.model.spec import load_spec

    spec = load_spec(args.spec)
    data = load_data(spec, patients=args.patients, evidence=not args.no_evidence)
    pdata, terms = data.patients, spec.terms_map()
    trial_index = [list(data.trials).index(t) for t in pdata.trials]
    lay = ThetaLayout(terms, len(data.trials))
    theta = np.random.default_rng(0).normal(0.0, 0.5, lay.size)
    ev = lay.events
    params = {
        "a": np.array([theta[lay.intercept(e)] for e in ev]),
        "beta": {e: np.array([theta[lay.beta(e, t)] for t in terms[e]]) for e in ev},
        "sigma": np.abs(np.array([theta[lay.sigma(e)] for e in ev])),
        "u": np.array([[theta[lay.u(i, e)] for e in ev] for i in range(len(data.trials))]),
        "sev_a": theta[lay.intercept(lay.severity)],
        "sev_b": np.array([theta[lay.beta(lay.severity, t)] for t in terms[lay.severity]]),
    }  # fmt: skip
    consts = patient_arrays(pdata, terms, trial_index, data.z, data.w, data.link)
    y = pdata.events.ravel()
    patient_kernel(theta, y, *consts)  # numba's compile (or cache load)
    out = {
        "records": pdata.n_patients, "cells": pdata.n_cells, "designs": int(consts[9].size),
        "kernel_us": 1e6 * _best_of(lambda: patient_kernel(theta, y, *consts), 500),
        "numpy_value_us": 1e6 * _best_of(lambda: patient_loglik_numpy(
            params, pdata, terms, trial_index, data.z, data.w, data.link), 20),
        "load": os.getloadavg()[0],
    }  # fmt: skip
    for name, kernel in (("model_kernel", True), ("model_graph", False)):
        model = build_model(data, spec, kernel=kernel)
        point = model.initial_point()
        t0 = time.perf_counter()
        fn = pytensor.function(model.value_vars, [model.logp(), model.dlogp()])
        out[f"{name}_compile_s"] = time.perf_counter() - t0
        vals = [point[v.name] for v in model.value_vars]
        out[f"{name}_logp_dlogp_us"] = 1e6 * _best_of(
            lambda f=fn, v=vals: f(*v), 50 if kernel else 5
        )
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
