"""Trial-design simulation: simulated dose-finding trials whose candidates are schedules.

A design moves cohorts of simulated patients between candidate schedules (ordered by
intensity) by a rule (:mod:`.rules`: 3+3, BOIN, escalation with overdose control on an
in-trial posterior), on potential outcomes drawn once per simulated trial
(:mod:`.truth`), so that designs compared meet the same patients. The in-trial posterior
is the lenasim posterior reweighted by the trial's patient-cycles (:mod:`.update`);
operating characteristics carry their Monte Carlo SE (:mod:`.oc`).

Beside ``search`` in the layers (neither imports the other), under ``pipeline``: may
import core, evidence, model, simulation, outputs and validation; never PyMC directly.
"""
