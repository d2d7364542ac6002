"""Two designs compared on the same simulated trials: paired differences with their
Monte Carlo SE.

Designs run with the same seed, posterior, truths and number of trials meet the same
truths and patients (:mod:`lenasim.design.truth`), so a difference is estimated trial by
trial: its SE is sd(a_t - b_t) / sqrt(T), smaller than the unpaired
sqrt(var a / T + var b / T) whenever the two designs' results are positively correlated
over trials (the escalation package's ``simulate_compare``, Sweeting et al. 2023, does
the same on shared latent uniforms). The inputs are the designs' ``trials.csv`` tables;
rows that do not pair (another truth, trial or posterior draw) are refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lenasim.core.errors import LenasimError

__all__ = ["paired_differences"]


def paired_differences(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per truth, b minus a: P(select each candidate or none), mean patients, duration.

    Columns: truth, quantity, candidate, a, b, difference, mcse_paired, mcse_unpaired.
    """
    key = ["truth", "trial", "posterior_index"]
    if len(a) != len(b) or not a[key].reset_index(drop=True).equals(b[key].reset_index(drop=True)):
        raise LenasimError(
            "the two designs' trials do not pair (truths, trial numbers or posterior draws "
            "differ): run both with the same seed, posterior, truths and number of trials"
        )
    rows = []
    for truth, ga in a.groupby("truth", sort=False):
        gb = b[b.truth == truth]
        cands = list(dict.fromkeys([*ga.selected, *gb.selected]))
        series = {("p_select", c): ((ga.selected == c).to_numpy(float),
                                    (gb.selected == c).to_numpy(float)) for c in cands}  # fmt: skip
        series[("patients", "")] = (ga.patients.to_numpy(float), gb.patients.to_numpy(float))
        series[("duration_days", "")] = (ga.duration_days.to_numpy(float),
                                         gb.duration_days.to_numpy(float))  # fmt: skip
        n = len(ga)
        for (quantity, cand), (x, y) in series.items():
            d = y - x
            rows.append({
                "truth": truth, "quantity": quantity, "candidate": cand,
                "a": x.mean(), "b": y.mean(), "difference": d.mean(),
                "mcse_paired": d.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan,
                "mcse_unpaired": np.sqrt((x.var(ddof=1) + y.var(ddof=1)) / n) if n > 1 else np.nan,
            })  # fmt: skip
    return pd.DataFrame(rows)
