"""What a run and a comparison write, from the dataset a simulation returned: tables and
the headline numbers (``summaries``), paired comparisons (``comparison``), figures
(``figures``), the HTML report (``report``) and the draws.nc writer (``netcdf``); files
are written by ``lenasim.core.writers``.

May import core, evidence and the model (the mirrored trial's predictions, the caveats'
prior-dominated terms); not the simulation (a forbidden contract: it reads what a run
wrote, not the engine).
"""
