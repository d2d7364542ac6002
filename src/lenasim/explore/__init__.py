"""The local web explorer (``python -m lenasim explore``, a Shiny app): edit a scenario in
a form generated from the config schema (``form``) and see its risks move in a preview
(``session``: settings, the paired reference, the preview's tables; ``charts``: its SVG;
``app``: the tabs). ``pipeline_adapter`` is the one module that calls the run pipeline:
a full run is written as ``lenasim run`` writes it.

May import every stage below ``commands`` (core, evidence, model, simulation, outputs,
validation, search, design, pipeline). Shiny is imported by ``app``, which
``commands.explore`` imports only when the command runs.
"""
