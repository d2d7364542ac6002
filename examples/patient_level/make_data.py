"""Make the synthetic patient-level example: patients.csv from known parameters, by the engine.

    cd <repo> && python examples/patient_level/make_data.py

The known parameters (truth.json) are the shipped posterior's medians, each parameter
on its own (a plausible model, not a fitted one), with a trial effect per synthetic trial
drawn from N(0, tau). Three single-agent trials in relapsed CLL, 60 patients each, 40%
aged 65 or more, six 28-day cycles of days 1-21, at three dose levels, so that the data
speak to the dose slopes:

- SYN-LOW: 2.5 mg, then 5 mg from cycle 2 and 10 mg from cycle 3 (Chen 2011's amended
  protocol, seed 003);
- SYN-MID: 5 mg, +5 mg every cycle to 15 mg (Badoux 2011's escalation without its lead-in);
- SYN-HIGH: 25 mg from day 1 (the early CLL trials' dose, Chanan-Khan 2006, seed 001).

A quarter of each trial's patients are cut by the end of follow-up (entered late).
The output is the same, byte for byte, on every run (seeded).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lenasim.core.hazard import EVENTS, HazardDraws
from lenasim.core.regimen import Escalation, Regimen
from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.model.posterior import load_posterior
from lenasim.model.spec import posterior_path
from lenasim.validation.patient_level import SyntheticTrial, simulate_patient_cycles

HERE = Path(__file__).resolve().parent
SEED = 20261207


def trials() -> list[SyntheticTrial]:
    def reg(start, **kw):
        return Regimen(cycle_days=28, days_on=(1, 21), start_mg=start, cycles=6, **kw)

    low = reg(2.5, target_mg=10, escalation=Escalation(levels_mg=[2.5, 5, 10], every=1,
                                                        unit="cycles"))  # fmt: skip
    mid = reg(5, target_mg=15, escalation=Escalation(step_mg=5, every=1, unit="cycles"))
    high = reg(25)
    return [
        SyntheticTrial(name, r, patients=60, elderly_share=0.4, censored_share=0.25)
        for name, r in (("SYN-LOW", low), ("SYN-MID", mid), ("SYN-HIGH", high))
    ]


def truth() -> HazardDraws:
    """The shipped posterior's median of each parameter, as one draw."""
    d = load_posterior(posterior_path(DEFAULT_SPEC), DEFAULT_SPEC).draws

    def med(a):
        return np.array([float(np.median(a))])

    return HazardDraws(
        terms=d.terms,
        intercept={k: med(v) for k, v in d.intercept.items()},
        coefs={b: {t: med(v) for t, v in c.items()} for b, c in d.coefs.items()},
        tau={k: med(v) for k, v in d.tau.items()},
        sigma={k: med(v) for k, v in d.sigma.items()},
        trial_df=None,
        link=d.link,
    )


def main() -> None:
    tr = trials()
    t = truth()
    df, effects = simulate_patient_cycles(t, tr, SEED)
    df.to_csv(HERE / "patients.csv", index=False, lineterminator="\n")
    known = {
        "source": "the shipped posterior's medians (models/default.nc), one parameter at a time",
        "seed": SEED,
        "intercept": {k: round(float(v[0]), 6) for k, v in t.intercept.items()},
        "coef": {b: {k: round(float(v[0]), 6) for k, v in c.items()} for b, c in t.coefs.items()},
        "sigma": {k: round(float(v[0]), 6) for k, v in t.sigma.items()},
        "tau": {k: round(float(v[0]), 6) for k, v in t.tau.items()},
        "trial_effect": {
            x.name: {k: round(float(effects[i, e]), 6) for e, k in enumerate(EVENTS)}
            for i, x in enumerate(tr)
        },
    }
    (HERE / "truth.json").write_text(json.dumps(known, indent=1) + "\n")
    spec = DEFAULT_SPEC.read_text().replace("name: default\n", "name: patient_level\n", 1)
    head = (
        "# The shipped model spec (models/default.yaml, copied by make_data.py) with the\n"
        "# synthetic patient-cycles of this folder fitted beside the evidence rows.\n"
        "patient_data: patients.csv\n"
    )
    (HERE / "spec.yaml").write_text(head + spec)
    n_pat = df.groupby(["trial", "patient"]).ngroups
    print(f"wrote {HERE / 'patients.csv'}: {len(df)} patient-cycles of {n_pat} patients")
    print(df.groupby("trial")[list(EVENTS)].mean().round(3).to_string())


if __name__ == "__main__":
    main()
