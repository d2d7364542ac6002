"""Kidney function and exposure: creatinine clearance (Cockcroft-Gault), the renal exposure
factor and the CrCl bands of the label (issue 24, item 2).

Lenalidomide is cleared by the kidneys: about 82% of a dose is excreted unchanged in urine
within 24 h (Chen, Zhou, Palmisano, Clin Pharmacokinet 2017;56:139), exposure (AUC) is
proportional to dose from 5 to 400 mg (Chen et al., Cancer Chemother Pharmacol 2012), and
CL/F rises with CrCl (Connarn et al., Clin Pharmacol Drug Dev 2018;7:465). So a patient's
exposure is mg x F(CrCl), F the ratio of AUC at that CrCl to AUC at normal function, and
the model's dose terms (``log_dose``, ``first_log_dose``) act on log(mg x F / 10 mg).

The relation F(CrCl) is read from the AUC ratios of the renal impairment study (single
25 mg dose, n = 30; Chen et al., J Clin Pharmacol 2007): mild impairment (CrCl 50-80)
differed from normal by 11-32% (midpoint +21%, placed at CrCl 65), moderate (CrCl 30-50)
+185% (placed at 40), end-stage +420% (placed at CrCl 10). F is interpolated linearly in
log F between these points, is 1 at CrCl >= 80 (normal function, the reference) and 5.2
below 10. The severe band (< 30, not on dialysis) is interpolated, not read. The AUC
ratios are of a small single-dose study in non-CLL subjects: the relation's uncertainty is
a prior, log F_patient = theta x log F(CrCl) with log theta ~ N(0, RENAL_THETA_SD) drawn
once per posterior draw (:func:`lenasim.simulation.population.prior_terms`).

This module imports nothing from lenasim.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CRCL_BANDS",
    "CRCL_REFERENCE",
    "RENAL_THETA_SD",
    "cockcroft_gault",
    "crcl_band",
    "log_exposure_factor",
]

CRCL_REFERENCE = 80.0
"""mL/min: at or above it exposure is that of normal function (F = 1; Chen 2007's normal
group had CrCl > 80)."""

# (CrCl mL/min, AUC ratio to normal), Chen et al., J Clin Pharmacol 2007 (see the module
# docstring for where each point is placed); increasing CrCl.
_POINTS = ((10.0, 5.20), (40.0, 2.85), (65.0, 1.21), (80.0, 1.0))

RENAL_THETA_SD = 0.3
"""SD of log theta, the multiplier of log F: theta's 90% interval 0.61-1.64 covers the
mild band's 11-32% spread and the 29% lower CL/F of patients than volunteers (Connarn
2018) as a shift of the whole relation. A stated prior, not fitted."""

CRCL_BANDS: tuple[tuple[str, float, float], ...] = (
    ("<30", 0.0, 30.0),
    ("30-60", 30.0, 60.0),
    (">=60", 60.0, float("inf")),
)
"""The CrCl bands of the dosing rules (ORIGIN, CC-5013-CLL-008: 30-60 on half dose; EU
SmPC: < 30 every other day), as (label, lower, upper): lower <= CrCl < upper."""


def cockcroft_gault(age, weight_kg, creatinine_mg_dl, female) -> np.ndarray:
    """Creatinine clearance (mL/min), Cockcroft DW, Gault MH, Nephron 1976;16:31:
    (140 - age) x weight / (72 x serum creatinine), x 0.85 for women."""
    age = np.asarray(age, float)
    crcl = (140.0 - age) * np.asarray(weight_kg, float) / (72.0 * np.asarray(creatinine_mg_dl))
    return crcl * np.where(np.asarray(female, bool), 0.85, 1.0)


def log_exposure_factor(crcl) -> np.ndarray:
    """log F(CrCl): the log AUC ratio against normal function (0 at CrCl >= 80)."""
    x, y = np.array(_POINTS).T
    return np.interp(np.asarray(crcl, float), x, np.log(y))


def crcl_band(crcl) -> np.ndarray:
    """The label of each CrCl's band (:data:`CRCL_BANDS`)."""
    crcl = np.asarray(crcl, float)
    out = np.empty(crcl.shape, object)
    for label, lo, hi in CRCL_BANDS:
        out[(crcl >= lo) & (crcl < hi)] = label
    return out
