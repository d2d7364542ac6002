"""The PNGs of a run (``run``: per-cycle risk, cumulative incidence, dose) and of a
comparison (``compare``), their layout (``layout``) and what the panels draw
(``panels``). ``mpl`` is the one module of outputs that imports matplotlib (and Pillow),
on the first figure. Imports only ``tables`` of outputs."""
