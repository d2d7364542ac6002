"""The likelihood's mean as it was before the compact version (lenasim <= 0.1.0, commit
250f558): every event's hazard on the whole (component, cycle, node) grid, masked. Kept
as the reference peer of ``benchmarks/fit_bench.py`` ("today's" nutpie set-up) and as an
independent oracle of :func:`lenasim.model.likelihood.row_probabilities` in
``tests/model/test_fit.py``.

``use_legacy_likelihood()`` swaps it into :mod:`lenasim.model.likelihood` (for the
benchmark's baseline model graph).
"""

from __future__ import annotations

from lenasim.core.hazard import (
    EVENTS,
    NUMPY,
    SEVERITY,
    Backend,
    cycle_probability,
    linear_predictor,
)
from lenasim.model.likelihood import ModelData


def row_probabilities(params: dict, data: ModelData, terms: dict, xp: Backend = NUMPY):
    """Expected reported rate of every row, and the variance terms of ``cycles`` rows.

    ``params``: ``intercept`` {event: a}, ``beta`` {event: {term: b}}, ``sigma`` {event},
    ``u`` {event: (..., trial)} trial effects, with the same keys for SEVERITY in
    ``intercept`` and ``beta``. NumPy values carry a leading draws axis (shape (S,),
    (S, trial)); PyTensor values are scalars / vectors.

    Returns
    -------
    P : (..., row) expected rate; var_s : (..., comp) Var(S) of one patient's event-cycle
    count (used for ``cycles`` rows only).
    """
    f = data.features
    eta = 0.0
    sig = 0.0
    u_c = 0.0
    for e, ev in enumerate(EVENTS):
        a = params["intercept"][ev][..., None, None]
        b = {t: params["beta"][ev][t][..., None, None] for t in terms[ev]}
        onehot = data.comp_event[:, e]
        eta = eta + onehot[:, None] * linear_predictor(a, b, f, terms[ev])
        sig = sig + onehot * params["sigma"][ev][..., None]
        u_c = u_c + onehot * (params["u"][ev] @ data.comp_trial)
    a_s = params["intercept"][SEVERITY][..., None, None]
    b_s = {t: params["beta"][SEVERITY][t][..., None, None] for t in terms[SEVERITY]}
    sev = xp.sigmoid(linear_predictor(a_s, b_s, f, terms[SEVERITY]))
    sev = 1.0 + data.comp_severe[:, None] * (sev - 1.0)  # 1 where not a grade >= 3 row
    # (..., comp, C, Q)
    p = cycle_probability(
        eta[..., None], u_c[..., None, None], sig[..., None, None], data.z,
        f["exposed"][..., None], xp,
    ) * sev[..., None]  # fmt: skip
    p = p * (1.0 - 1e-9)  # keeps log(1 - p) finite when p rounds to 1
    mask = data.mask[..., None]
    w = data.w
    log_surv = (mask * xp.log1p(-p)).sum(axis=-2)  # (..., comp, Q)
    p_patients = 1.0 - (w * xp.exp(log_surv)).sum(axis=-1)
    m = data.mask.sum(axis=-1)
    sum_p = (mask * p).sum(axis=-2)  # (..., comp, Q): one patient's expected event cycles
    p_mean = (w * sum_p).sum(axis=-1) / m
    p_comp = data.comp_patients_unit * p_patients + (1.0 - data.comp_patients_unit) * p_mean
    var_s = (w * (mask * p * (1.0 - p)).sum(axis=-2)).sum(axis=-1) + (
        (w * sum_p**2).sum(axis=-1) - ((w * sum_p).sum(axis=-1)) ** 2
    )
    P = p_comp @ data.mixing.T
    return P, var_s


def use_legacy_likelihood() -> None:
    """Build models with this likelihood mean from now on (this process only)."""
    import lenasim.model.likelihood as lik

    lik.row_probabilities = row_probabilities
