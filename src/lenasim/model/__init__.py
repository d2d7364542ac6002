"""The Bayesian model: the spec (``spec``: models/*.yaml, terms and priors), the
likelihood (``likelihood``: evidence rows -> expected reported rates, one formula for
NumPy and PyTensor), its compiled kernel (``kernel``: the likelihood and its gradient by
numba), the PyMC side (``graph``: the PyMC model, the kernel as a PyTensor Op, the
patient-cycles' potential and the samplers; ``compiled``: nutpie's compile cache), the fit
(``fit``: build and sample through ``Fitter``, the diagnostics gate), the posterior store
(``posterior``: netCDF with its provenance, staleness), new-trial predictions
(``predictive``), patient-level data (``patient_csv``, ``patient_data``) and the posterior
plots (``plots``).

May import core and evidence; not the simulation, which shares only core with it. The
only stage that imports PyMC, PyTensor or a sampler: at the top of ``graph`` (and
``compiled``), which ``fit.Fitter`` alone imports, inside its constructor, so that
reading a posterior, or checking a spec, loads none of them.
"""
