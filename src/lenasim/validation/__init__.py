"""Statistical validation of the model: leave-one-trial-out (LOTO) prediction,
simulation-based calibration (SBC), prior sensitivity and a comparison with a model
without dose terms. `python -m lenasim validate` (lenasim.commands.validate) writes
``results/validation/``. Modules: ``predictive`` (predictive laws, new-trial
predictions, the baseline), ``loto``, ``sbc``, ``sensitivity``, ``plots``, ``report``.

This stage may import core, evidence, model, simulation and outputs (not search nor the
commands); never PyMC directly: the model stage fits.

Leave-one-trial-out
    For each trial with fitted rows, the model is refitted without that trial and each
    of its rows is predicted the way a *new* trial would be: the arms' regimens, n,
    setting and partners (:func:`lenasim.model.likelihood.prepare` on the held-out rows), a new
    trial effect u_k ~ N(0, tau_k) per posterior draw (``effects_per_draw`` of them
    per draw), and the reporting noise of the row's unit: Binomial(n, P) for
    ``patients`` and ``cycle_k`` rows; for ``cycles`` rows the model's own Normal with
    mean N P and variance sum_arms n_patients Var(S) + 1/4 (see
    :func:`lenasim.model.graph.build_model`). The predictive distribution of a row is the
    exact mixture of these over the draws (no sampling of counts): its quantiles give
    the median and the central 50% and 90% intervals, and
    ``log p(y) = log mean_s p(y | draw s)`` is the row's contribution to the expected
    log predictive density (ELPD).

    PIT: the *randomised* PIT, P(Y < y) + V P(Y = y) with V ~ U(0, 1) from a seeded
    Generator (for ``cycles`` rows, the continuous P(Y <= y)). Under a calibrated model
    it is exactly U(0, 1), whatever the discreteness of the counts; P(Y < y) and
    P(Y <= y) are kept in ``loto.csv`` so the mid-PIT can be recomputed.

    Refits use the sampler settings of `fit` (the spec's, unless ``--draws``/``--tune``
    override them) on one model compiled once (:class:`lenasim.model.fit.Fitter`): the
    held-out trial's rows get likelihood weight 0, which gives exactly the posterior
    without that trial, its own trial effect staying at its prior. Their convergence
    diagnostics are recorded per refit.

Baseline
    A model that ignores dose and schedule: one pooled rate per outcome, setting and
    unit family (``patients``, or per cycle for ``cycles`` / ``cycle_k``), with a
    Beta(1, 1) prior updated by the training rows of that group (events and non-events
    summed), so that a held-out row's predictive is Beta-binomial(n, 1 + events,
    1 + non-events), exactly (no MCMC). With no training row in its group, the
    predictive is the Beta(1, 1)-binomial, uniform on 0..n.

Model comparison
    The full model against the same model without dose terms (``log_dose``,
    ``log_frac_on`` and ``rise`` dropped from every event, ``log_dose`` from the
    severity): difference of LOTO ELPD summed over held-out rows, with standard error
    sqrt(n_rows * var(pointwise differences)). Within 2 SE the data cannot tell them
    apart.

Simulation-based calibration
    Parameters drawn from the model's own prior (``pm.sample_prior_predictive``), evidence
    simulated with the real table's shape
    (same rows, units, n and arms), the model refitted; the rank of each true value
    among ``L`` thinned posterior draws is uniform on 0..L when the inference is right.
    Parameters: the intercepts, the ``log_dose`` slopes and the trial SDs tau of the
    three events. Uniformity: a chi-square test per parameter on equal-width rank
    bins, and the rank-mean z-test.

Prior sensitivity
    The model refitted with every prior scale multiplied (``ModelSpec.scaled``); the
    shipped scenario configs simulated on both posteriors (same seed, common random
    numbers); cycle-1 and cumulative risk per event, side by side.
"""
