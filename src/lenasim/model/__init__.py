"""The Bayesian model: the spec (``spec``: models/*.yaml, terms and priors), the
likelihood (``likelihood``: evidence rows -> expected reported rates, the PyMC graph),
the fit (``fit``: build and sample, the diagnostics gate), the posterior store
(``posterior``: netCDF with its provenance, staleness) and the posterior plots
(``plots``).

May import core and evidence; not the simulation nor the outputs, which share only core
with it. The only stage that imports PyMC, PyTensor or a sampler (inside functions, so
that reading a posterior loads none of them).
"""
