"""The pipelines the commands call, one module per job: ``run`` (configs -> posterior ->
simulation -> judgement -> results folder), ``search`` (a search config -> candidates on
common random numbers -> results/search-<name>/), ``validate`` (leave-one-trial-out, SBC,
prior sensitivity -> results/validation/), ``patient`` (one patient's risks), with
``posterior`` (the fitted posterior a run uses, loaded once; the one way to the fit,
``--refit``), ``memory`` (the memory probe every simulating command checks),
``manifest`` (a run's manifest.json), ``plots`` (a run's figures drawn by a forked child
beside the rest of the run) and ``config_docs`` (docs/configuration.md from the schema).

The layer under ``explore`` and ``commands`` (which parse arguments, call a pipeline and
print) and above every other stage: ``search``, ``design``, ``validation``, ``outputs``,
``simulation``, ``model``, ``evidence``, ``core``. The explorer calls
:func:`lenasim.pipeline.run.simulate_run` with a validated scenario and gets the result
in memory; :func:`lenasim.pipeline.run.write_run` writes it as a results folder.
"""
