"""What a run and a comparison write and show, from the dataset a simulation returned, in
four sub-packages, each importing only those below it (the import-linter contract
"outputs-inside" in pyproject.toml; docs/architecture.md's table of outputs):

- ``report``: the HTML pages (``run`` and ``compare``, from ``templates/``), the parts
  every page shares (``page``, ``html``, ``tables``), and the comparison written as a
  folder (``comparison.compare_runs``);
- ``figures``: the PNGs of a run (``run``) and of a comparison (``compare``), their layout
  (``layout``) and panels (``panels``); ``mpl`` is the one module that imports
  matplotlib, on the first figure;
- ``judgements``: what the numbers mean for a decision: risk limits and verdicts
  (``limits``, ``decision``, ``paired_limits``) and their tipping points (``tipping``,
  ``reweighting``), the caveats (``caveats``), the mirrored
  trial (``mirror``) and the setup in words (``words``);
- ``tables``: what a run wrote, read back and summarised: the tables and headline numbers
  (``summaries``), draws.nc (``netcdf``), a run folder checked and loaded (``verify``,
  ``runs``), the paired differences of a comparison (``paired``, by CrCl band
  ``subgroup_compare``), and numbers as text
  (``formats``).

``figures`` and ``judgements`` are independent of each other. Outputs may import core,
evidence and the model (the mirrored trial's predictions, the caveats' prior-dominated
terms), not the simulation: they read what a run wrote.
"""
