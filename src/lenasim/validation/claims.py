"""The literature's qualitative claims, side by side with the model (issue 14, item 7).

Each claim is a paired comparison of two schedules (or two populations) on the same
virtual patients and posterior draws (common random numbers), on the population of
``configs/slow_escalation.yaml`` (previously untreated CLL, no steroid prophylaxis)
with only the compared feature changed, as ``../shared/tools/check-claims`` does:

- TLS and grade >= 3 flare in cycle 1 are higher under 25 mg from day 1, and under
  10 mg with weekly 5 mg steps to 25 mg, than under slow escalation from 2.5 mg (the
  two protocols stopped for toxicity: Chanan-Khan et al., J Clin Oncol 2006; Andritsos
  et al., J Clin Oncol 2008; Chen et al., J Clin Oncol 2011);
- flare falls over cycles: at a constant 25 mg, cycle-2 flare is below cycle-1 flare
  (Chanan-Khan et al., Cancer 2011: over 90% of flares only in cycle 1);
- grade 3-4 neutropenia rises with dose at a fixed schedule (flat 25 mg against flat
  10 mg, days 1-21 of 28; seed 002 on 10 against 25 mg in MDS);
- prednisone lowers the severity of flare but not its incidence (Chanan-Khan et al.,
  Blood 2006;108:4987 abstract; Cancer 2011).

Each probability is computed twice: on the posterior, and on the prior draws stored
with it (``prior`` group of the posterior file). A claim is *carried by the data* when
the prior alone does not reach the aim and the posterior does; *carried by the prior*
when the prior alone already reaches it (then the data neither contradict nor add to
it: the monotone slopes make every dose claim a prior belief, stated openly); *not
supported* when the posterior falls short.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.hazard import HazardDraws
from lenasim.core.regimen import Regimen
from lenasim.simulation.engine import simulate
from lenasim.simulation.scenario import load_scenario
from lenasim.simulation.streams import select_draws

__all__ = ["CLAIMS", "Claim", "claims_table"]

_SLOW = {
    "cycle_days": 28, "days_on": [1, 21], "start_mg": 2.5, "target_mg": 10,
    "escalation": {"levels_mg": [2.5, 5, 10], "every": 1, "unit": "cycles"}, "cycles": 12,
}  # fmt: skip
_FLAT25 = {"cycle_days": 28, "days_on": [1, 21], "start_mg": 25, "cycles": 12}
_FLAT10 = {"cycle_days": 28, "days_on": [1, 21], "start_mg": 10, "cycles": 12}
_WEEKLY = {
    "cycle_days": 28, "days_on": [1, 21], "start_mg": 10, "target_mg": 25,
    "escalation": {"step_mg": 5, "every": 1, "unit": "weeks"}, "cycles": 12,
}  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """P(quantity under ``b`` > quantity under ``a``) (or < with ``lower``), per draw."""

    text: str
    source: str
    event: str
    a: dict  # regimen of the reference
    b: dict  # regimen compared
    aim: float
    cycle_a: int = 1
    cycle_b: int = 1
    steroid_b: bool = False  # steroid prophylaxis in b (population change, not regimen)
    lower: bool = False  # the claim is that b is lower


CLAIMS: tuple[Claim, ...] = (
    Claim("TLS in cycle 1: 25 mg from day 1 above slow escalation",
          "Chanan-Khan et al., J Clin Oncol 2006; Chen et al., J Clin Oncol 2011",
          "tls", _SLOW, _FLAT25, 0.9),
    Claim("TLS in cycle 1: 10 mg with weekly 5 mg steps above slow escalation",
          "Chanan-Khan et al., J Clin Oncol 2006 (group B); Chen et al., J Clin Oncol 2011",
          "tls", _SLOW, _WEEKLY, 0.8),
    Claim("grade >= 3 flare in cycle 1: 25 mg from day 1 above slow escalation",
          "Andritsos et al., J Clin Oncol 2008; Chanan-Khan et al., Cancer 2011",
          "flare_grade3plus", _SLOW, _FLAT25, 0.9),
    Claim("grade >= 3 flare in cycle 1: weekly steps above slow escalation",
          "Chanan-Khan et al., Cancer 2011",
          "flare_grade3plus", _SLOW, _WEEKLY, 0.8),
    Claim("flare falls over cycles: cycle 2 below cycle 1 at a constant 25 mg",
          "Chanan-Khan et al., Cancer 2011 (over 90% of flares only in cycle 1)",
          "flare", _FLAT25, _FLAT25, 0.9, cycle_a=1, cycle_b=2, lower=True),
    Claim("grade 3-4 neutropenia in cycle 1: flat 25 mg above flat 10 mg",
          "seed 002 (10 against 25 mg in MDS); Ferrajoli et al., Blood 2008",
          "neutropenia", _FLAT10, _FLAT25, 0.95),
    Claim("prednisone lowers grade >= 3 flare in cycle 1 (25 mg from day 1)",
          "Chanan-Khan et al., Blood 2006;108:4987 (abstract); Cancer 2011",
          "flare_grade3plus", _FLAT25, _FLAT25, 0.8, steroid_b=True, lower=True),
    Claim("prednisone leaves any-grade flare in cycle 1 unchanged (25 mg from day 1)",
          "Chanan-Khan et al., Blood 2006;108:4987 (abstract); Cancer 2011",
          "flare", _FLAT25, _FLAT25, float("nan"), steroid_b=True, lower=True),
)  # fmt: skip


def _risk(draws: HazardDraws, idx: np.ndarray, base, regimen: dict, steroid: bool,
          event: str, cycle: int, patients: int) -> np.ndarray:  # fmt: skip

    pop = base.population.model_copy(update={"steroid_prophylaxis": steroid})
    # light: the engine's NumPy dataset, not the xarray one built from it (~6 ms each)
    ds = simulate(Regimen.model_validate(regimen).expand(), pop, base.rules, draws.take(idx),
                  n_patients=patients, seed=base.seed, population_effect="new_trial",
                  posterior_index=idx, light=True)  # fmt: skip
    return np.asarray(ds["per_cycle"].sel(event=event, cycle=cycle).values, float)


def _probability(claim: Claim, draws: HazardDraws, base, n_draws: int, patients: int) -> dict:
    idx = select_draws(draws.n_draws, min(n_draws, draws.n_draws), base.seed)
    ra = _risk(draws, idx, base, claim.a, base.population.steroid_prophylaxis, claim.event,
               claim.cycle_a, patients)  # fmt: skip
    rb = _risk(draws, idx, base, claim.b, claim.steroid_b or base.population.steroid_prophylaxis,
               claim.event, claim.cycle_b, patients)  # fmt: skip
    ok = ~(np.isnan(ra) | np.isnan(rb))
    ra, rb = ra[ok], rb[ok]
    wins = rb < ra if claim.lower else rb > ra
    return {"p": float(np.mean(wins)), "identical": bool(np.allclose(ra, rb, rtol=1e-12)),
            "diff_mean": float(np.mean(rb - ra))}  # fmt: skip


def claims_table(posterior: HazardDraws, prior: HazardDraws | None, base_config: Path, *,
                 n_draws: int = 1000, patients: int = 1000) -> pd.DataFrame:  # fmt: skip
    """One row per claim: the paired probability under the posterior and the prior, and
    what carries it. Per-cycle risks are the engine's Rao-Blackwellised expectations, so
    the paired difference in each draw is exact up to the frailty sampling of
    ``patients`` patients."""

    base = load_scenario(base_config)
    rows = []
    for c in CLAIMS:
        post = _probability(c, posterior, base, n_draws, patients)
        pri = _probability(c, prior, base, n_draws, patients) if prior is not None else None
        if np.isnan(c.aim):
            verdict = ("identical by the model's structure" if post["identical"]
                       else "differs")  # fmt: skip
        elif post["p"] < c.aim:
            verdict = "not supported"
        elif pri is not None and pri["p"] >= c.aim:
            verdict = "carried by the prior"
        else:
            verdict = "carried by the data"
        rows.append({
            "claim": c.text, "source": c.source, "event": c.event,
            "aim": c.aim, "p_posterior": post["p"],
            "p_prior": np.nan if pri is None else pri["p"],
            "mean_difference": post["diff_mean"], "verdict": verdict,
        })  # fmt: skip
    return pd.DataFrame(rows)
