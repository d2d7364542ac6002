"""The virtual-cohort simulator: scenario configs (``scenario``), the Monte Carlo engine
(``engine``: the driver; ``tables``: the patient states, their features and
transitions; ``results``: the result rows and the dataset; its C core ``_engine.c``
loaded by ``_native``), the counter-based random streams (``streams``) and virtual
patients with characteristics (``characteristics``, ``population``). It takes
posterior draws as :class:`lenasim.core.hazard.HazardDraws` and returns an xarray
dataset (draws.nc).

May import core and evidence; not the model (the hazard it shares with the fit is in
core) nor the outputs.
"""
