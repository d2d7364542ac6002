"""The virtual-cohort simulator: scenario configs (``scenario``), the Monte Carlo engine
(``engine``, its C core ``_engine.c`` loaded by ``_native``) and the counter-based
random streams (``streams``). It takes posterior draws as
:class:`lenasim.core.hazard.HazardDraws` and returns an xarray dataset (draws.nc).

May import core and evidence; not the model (the hazard it shares with the fit is in
core) nor the outputs.
"""
