"""The Bayesian model: the spec (``spec``: models/*.yaml, terms and priors), the
likelihood (``likelihood``: evidence rows -> expected reported rates, the PyMC graph),
its compiled kernel (``kernel``: the likelihood and its gradient by numba, a PyTensor
Op; ``compiled``: the compile cache), the fit (``fit``: build and sample, the
diagnostics gate), the posterior store (``posterior``: netCDF with its provenance,
staleness), new-trial predictions (``predictive``) and the posterior plots (``plots``).

May import core and evidence; not the simulation, which shares only core with it. The
only stage that imports PyMC, PyTensor or a sampler (inside functions, so that reading a
posterior loads none of them).
"""
