"""The schedule search: many candidate regimens on common random numbers, within risk limits.

    config.py    the search config (pydantic): a scenario whose regimen is a space
    space.py     the space -> candidate Regimens (skipped and duplicate combinations counted)
    evaluate.py  one candidate -> one row (risks, P(exceed) per limit, objectives)
    execute.py   rows of all candidates, in process or in batches on Dask; the time estimate
    pareto.py    feasibility, the Pareto front, the ranking
    figures.py   pareto.png
    report.py    report.md and the paired comparison with a reference schedule
    results.py   results/search-<name>/, written atomically

Above ``validation`` and below ``pipeline`` in the layers; it never imports PyMC. The
search pipeline (:mod:`lenasim.pipeline.search`) wires them together and writes the
``run`` folders of the best schedules with the run pipeline's own writer.
"""
