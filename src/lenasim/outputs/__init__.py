"""What a run and a comparison write, from the dataset a simulation returned: tables and
the headline numbers (``summaries``), paired comparisons (``comparison``), figures
(``figures``), the HTML report (``report``), the draws.nc writer (``netcdf``) and the
atomic folder writer (``writers``).

May import core and evidence; not the simulation nor the model (it reads their
results, not their code).
"""
