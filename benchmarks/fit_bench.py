"""One fit of models/default.yaml with one backend, timed; prints one JSON line.

Run by ``benchmarks/run.py --fit`` in a fresh subprocess per backend (so that each
pays its own imports and compilation). Usable alone::

    python benchmarks/fit_bench.py --backend nutpie [--draws 1000 --tune 1000 --chains 4]

Timings: ``compile`` is everything before the first NUTS step (PyMC: pm.sample's wall
time minus the ``sampling_time`` it records; nutpie: ``compile_pymc_model``),
``sampling`` is tuning + draws. ESS is ArviZ bulk/tail ESS over the model's main
parameters (the diagnostics gate's variables); ESS/s = ESS / sampling seconds.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import time

import numpy as np


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", choices=("pymc", "nutpie", "numpyro"), required=True)
    ap.add_argument("--spec", default="models/default.yaml")
    ap.add_argument("--draws", type=int, default=None)
    ap.add_argument("--tune", type=int, default=None)
    ap.add_argument("--chains", type=int, default=None)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    import arviz as az

    from lenasim.model.fit import MAIN_VARS, load_data
    from lenasim.model.likelihood import build_model
    from lenasim.model.spec import load_spec

    spec = load_spec(args.spec)
    s = spec.sampler
    draws, tune = args.draws or s.draws, args.tune or s.tune
    chains = args.chains or s.chains
    data = load_data(spec)
    model = build_model(data, spec)
    t_model = time.perf_counter()
    load1 = os.getloadavg()[0]
    if args.backend == "nutpie":
        import nutpie

        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model)
        t1 = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=s.seed,
            target_accept=s.target_accept,
            progress_bar=False,
        )
        t2 = time.perf_counter()
        compile_s, sampling_s = t1 - t0, t2 - t1
        version = nutpie.__version__
    else:  # PyMC's own NUTS, or its numpyro sampler (needs `pip install numpyro jax`)
        import pymc as pm

        numpyro = args.backend == "numpyro"
        extra = (dict(nuts_sampler="numpyro", nuts_sampler_kwargs={"chain_method": "vectorized"})
                 if numpyro else dict(cores=min(chains, 2)))  # fmt: skip
        t0 = time.perf_counter()
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=s.seed,
                target_accept=s.target_accept,
                progressbar=False,
                compute_convergence_checks=False,
                **extra,
            )
        t2 = time.perf_counter()
        # PyMC records it on sample_stats, or on the posterior for numpyro, where it also
        # includes JAX's compilation of the sampler (on its first call): there "compile"
        # is only the graph's translation to JAX.
        stats = idata.posterior.attrs if numpyro else idata.sample_stats.attrs
        sampling_s = float(stats["sampling_time"])
        compile_s = (t2 - t0) - sampling_s
        version = importlib.metadata.version(args.backend)

    names = [v for v in MAIN_VARS if v in idata.posterior]
    ess_b = az.ess(idata, var_names=names, method="bulk")
    ess_t = az.ess(idata, var_names=names, method="tail")
    rhat = az.rhat(idata, var_names=names)

    def flat(ds):
        return np.concatenate([np.ravel(v.values) for v in ds.data_vars.values()])

    eb, et = flat(ess_b), flat(ess_t)
    div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    print(json.dumps({
        "backend": args.backend, "version": version, "draws": draws, "tune": tune,
        "chains": chains, "model_build_s": t_model - t_start, "compile_s": compile_s,
        "sampling_s": sampling_s, "min_ess_bulk": float(np.nanmin(eb)),
        "median_ess_bulk": float(np.nanmedian(eb)), "min_ess_tail": float(np.nanmin(et)),
        "max_rhat": float(np.nanmax(flat(rhat))), "divergences": div,
        "min_ess_bulk_per_s": float(np.nanmin(eb)) / sampling_s,
        "median_ess_bulk_per_s": float(np.nanmedian(eb)) / sampling_s,
        "load_before": load1, "load_after": os.getloadavg()[0],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
