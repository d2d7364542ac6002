"""A tipping point confirmed by a refit (slow): the model refitted with the dose-slope
prior moved to the tipping factor that reweighting found gives P(exceed) at the
threshold, within Monte Carlo error.

The verdict: configs/continuous_10mg.yaml (10 mg continuously, +5 mg a cycle to 25 mg),
grade >= 3 flare by the end of cycle 12 <= 5%: not acceptable on the shipped posterior
(P(exceed) ~0.30), acceptable by reweighting once the dose effect (the log-dose slopes
of flare and of its severity) is less than ~0.5x its prior median (README, "What the
evidence can and cannot say").
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_refit_at_the_tipping_factor_puts_p_exceed_at_the_threshold():
    from lenasim.core.shipped import DEFAULT_SPEC
    from lenasim.model.fit import Fitter
    from lenasim.model.posterior import draws_from_dataset, link_of, load_posterior, trial_df_of
    from lenasim.model.spec import ModelSpec, load_spec
    from lenasim.outputs.judgements.limits import risk_draws
    from lenasim.outputs.judgements.reweighting import ess, find_tipping
    from lenasim.outputs.judgements.tipping import shift_for, spec_of
    from lenasim.outputs.tables.summaries import probability_mcse
    from lenasim.pipeline.run import simulate_run
    from lenasim.simulation.population import simulate_scenario
    from lenasim.simulation.scenario import load_scenario

    sc = load_scenario(REPO / "configs" / "continuous_10mg.yaml")
    sc = sc.model_copy(update={"population": sc.population.model_copy(update={"patients": 300})})
    event, lim = next((e, x) for e, x in sc.limits.items() if e == "flare_grade3plus")
    cut = sc.limits.max_probability

    # 1. reweighting: the tipping factor k below 1
    post = load_posterior(DEFAULT_SPEC.with_suffix(".nc"), check=False)
    res = simulate_run(sc, post)
    hits = (risk_draws(res.ds, event, lim) > lim.max).astype(float)
    assert hits.mean() > cut  # not acceptable as shipped
    shift = shift_for(event, post.draws.take(res.index), spec_of(post))
    tip = find_tipping(hits, shift, cut)
    assert tip.low_kind == "flip", tip
    k = tip.low
    ess_k = float(ess(shift.log_weights(np.array([k]))[0]))

    # 2. the refit with both log-dose slope priors' medians times k
    spec = load_spec(DEFAULT_SPEC)
    data = spec.model_dump()
    for block in ("flare", "flare_severity"):
        prior = spec.prior(block, "log_dose").model_dump()
        prior["mu"] += math.log(k)
        data["priors"].setdefault(block, {}).setdefault("coef", {})["log_dose"] = prior
    moved = ModelSpec.model_validate(data)
    idata = Fitter(moved).sample(draws=500, tune=500, chains=2, seed=5).idata
    draws = draws_from_dataset(idata.posterior)
    attrs = {"spec": moved.canonical_json()}
    draws = dataclasses.replace(draws, trial_df=trial_df_of(attrs), link=link_of(attrs))
    ds = simulate_scenario(sc, draws, posterior_index=np.arange(draws.n_draws))
    refit = (risk_draws(ds, event, lim) > lim.max).astype(float)

    # 3. at the tipping factor the refit's P(exceed) is the threshold, within the Monte
    # Carlo error of both: the reweighted estimate's sqrt(p(1 - p) / ESS) and the refit's
    # MCSE (batch means over its chains).
    se = math.sqrt(cut * (1 - cut) / ess_k + probability_mcse(refit) ** 2)
    print(
        f"tipping factor {k:.3f} (ESS {ess_k:.0f}); refit P(exceed) {refit.mean():.3f}, "
        f"threshold {cut}, SE {se:.3f}"
    )
    assert abs(refit.mean() - cut) < 3 * se, (k, refit.mean(), se, ess_k)
