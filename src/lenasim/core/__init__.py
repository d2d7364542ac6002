"""The base that every stage shares, the fit and the simulator included: the regimen
language (``regimen``: a protocol's schedule -> daily doses and per-cycle exposure
features), the per-cycle hazard written once for NumPy and PyTensor (``hazard``), the
vocabulary (``vocabulary``, with its ``entries``: events, outcomes, titles, terms, the
covariate encoding, the dose columns), the configs' strict base and error formatter
(``schema``), strict YAML and the one config reader (``yamlio``), risk limits
(``limits``), partner drugs (``partners``), kidney function (``renal``), the one atomic
writer of every file and folder (``writers``, with the results' ``manifest``), where the
shipped model lives (``shipped``), interrupts, progress bars and the errors (``errors``).

Imports no other stage of lenasim (NumPy, pydantic and PyYAML at the top; SciPy inside a
function; the hazard's PyTensor backend is passed in by the model).
"""
