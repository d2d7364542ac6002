"""One thin module per command of ``python -m lenasim`` (``lenasim.cli`` parses the
arguments and imports only the command it runs): each validates its inputs, calls a
pipeline (or another stage) and prints.

The top of the stages but ``cli``: may import every other stage (core, evidence, model,
simulation, outputs, validation, search, design, pipeline, explore); only ``lenasim.cli``
imports it. A command imports the heavy libraries (and the app of ``explore``) inside its
handler, so that a command loads only what it uses (``run`` imports the model's fit only
with ``--refit``, through :func:`lenasim.pipeline.posterior.ensure_posterior`).
"""
