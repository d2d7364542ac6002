"""The truth of each simulated trial, as potential outcomes (:class:`~lenasim.design.trial.Outcomes`).

Every random number is keyed by (seed, trial, patient): the same seed gives every design
the same patients, whatever the design does with them.

- :func:`dose_level_outcomes`: the dose-finding textbook's special case, one cycle and one
  binary toxicity with a true rate per candidate. Patient n of trial t has one latent
  uniform U and has the toxicity on candidate j when U < p_j (the shared latent uniforms
  of Sweeting et al. 2023, which the R package escalation uses to pair designs): a
  patient who is toxic on a candidate is toxic on every more intense one.
"""

from __future__ import annotations

import numpy as np

from lenasim.design.trial import Outcomes

__all__ = ["dose_level_outcomes", "trial_rng"]

_PURPOSE_LATENT, _PURPOSE_ARRIVALS = 0x1A7E, 0xACC


def trial_rng(seed: int, trial: int, purpose: int) -> np.random.Generator:
    """A generator keyed by (seed, trial, purpose): the same for every design."""
    return np.random.default_rng([int(seed), int(trial), int(purpose)])


def arrivals_rng(seed: int, trial: int) -> np.random.Generator:
    """The generator of a trial's arrival times."""
    return trial_rng(seed, trial, _PURPOSE_ARRIVALS)


def dose_level_outcomes(
    rates, n_patients: int, seed: int, trial: int, cycle_days: float = 28.0
) -> Outcomes:
    """One cycle, one toxicity with true rate ``rates[j]`` on candidate j (see the module
    docstring)."""
    p = np.asarray(rates, float)
    u = trial_rng(seed, trial, _PURPOSE_LATENT).random(n_patients)
    events = (u[:, None] < p[None, :]).astype(np.int8)[:, :, None, None]
    return Outcomes(
        events=events,
        cycle_days=np.full((p.size, 1), float(cycle_days)),
        intensity=np.full((n_patients, p.size), np.nan),
    )
