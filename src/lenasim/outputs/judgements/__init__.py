"""What the numbers mean for a decision: P(risk > limit) and the overdose-control verdict
(``limits``, ``decision``; between two runs ``paired_limits``) and how far the dose prior
must move to flip them (``tipping`` over ``reweighting``), the caveats that travel
with them (``caveats``), the mirrored trial against its report (``mirror``) and a run's
setup in words (``words``). Imports only ``tables`` of outputs."""
