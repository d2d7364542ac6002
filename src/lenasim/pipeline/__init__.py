"""The pipelines the commands call, one module per job: ``run`` (configs -> posterior ->
simulation -> judgement -> results folder), ``search`` (a search config -> candidates on
common random numbers -> results/search-<name>/), ``validate`` (leave-one-trial-out, SBC,
prior sensitivity -> results/validation/), with ``posterior`` (the fitted posterior a run
uses, loaded once), ``memory`` (the memory probe every simulating command checks),
``manifest`` (a run's manifest.json) and ``plots`` (a run's figures drawn by a forked child
beside the rest of the run).

The layer under ``commands/`` (which parse arguments, call a pipeline and print) and
above every other stage: ``search``, ``validation``, ``outputs``, ``simulation``,
``model``, ``evidence``, ``core``. A web explorer calls
:func:`lenasim.pipeline.run.simulate_run` with a validated scenario and gets the result
in memory; :func:`lenasim.pipeline.run.write_run` writes it as a results folder.
"""
