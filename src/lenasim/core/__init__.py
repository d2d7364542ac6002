"""The base that the fit and the simulator share: the regimen language (``regimen``:
a protocol's schedule -> daily doses and per-cycle exposure features), the per-cycle
hazard written once for NumPy and PyTensor (``hazard``), the vocabulary (``vocabulary``:
events, outcomes, titles, terms, the covariate encoding, the dose columns) and the
errors (``errors``).

Imports no other stage of lenasim (NumPy, SciPy and pydantic only).
"""
