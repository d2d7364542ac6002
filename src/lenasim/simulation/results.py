"""The engine's results: the compiled kernel's result rows (their columns are laid out by
:class:`lenasim.simulation.streams.Layout`) gathered per variable, and the dataset of a
run (draws.nc: draw x event x cycle) with each variable's description.

The dataset is a :class:`~lenasim.simulation.dataset.RunDataset` (NumPy arrays with
dimension names, read as an ``xarray.Dataset`` is; xarray and pandas cost ~0.4 s of a
1 s run); :meth:`RunDataset.to_xarray` gives the ``xarray.Dataset`` that callers doing arithmetic
on it (a population mixed from groups, a search, the explorer) get from
:func:`dataset`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lenasim.core.regimen import Schedule, nominal_features
from lenasim.core.vocabulary import DOSE_COLUMNS, OUTPUT_EVENTS
from lenasim.simulation.dataset import DataArray, RunDataset, Variable
from lenasim.simulation.streams import Layout

__all__ = ["DOSE_VARS", "DataArray", "Results", "RunDataset", "Variable", "dataset"]

DOSE_VARS = DOSE_COLUMNS  # the per-cycle dose outputs, in the order of the tables
EVENT_VARS = ("per_cycle", "per_cycle_sampled", "cumulative")


class Results:
    """The outputs of a run of ``n_draws`` draws over ``n_cycles`` cycles, filled chunk by
    chunk from the kernel's result rows (:meth:`store`)."""

    def __init__(self, lay: Layout, n_draws: int, n_cycles: int) -> None:
        self.lay = lay
        self.out = {v: np.full((n_draws, lay.n_outputs, n_cycles), np.nan) for v in EVENT_VARS}
        for v in DOSE_VARS:
            self.out[v] = np.full((n_draws, n_cycles), np.nan)

    def store(self, j0: int, j1: int, res: np.ndarray) -> None:
        """The result rows ``res`` (j1 - j0, C, lay.n_res) of draws j0..j1."""
        lay, n_out = self.lay, self.lay.n_outputs
        for v, col in (("per_cycle", lay.r_p), ("per_cycle_sampled", lay.r_sampled),
                       ("cumulative", lay.r_cum)):  # fmt: skip
            self.out[v][j0:j1] = res[:, :, col : col + n_out].transpose(0, 2, 1)
        for i, v in enumerate(DOSE_VARS):
            self.out[v][j0:j1] = res[:, :, lay.r_dose + i]


DOC = {
    "per_cycle": ("probability of the event in the cycle for a patient who starts it "
                  "(Rao-Blackwellised: mean of p over the patients starting the cycle)"),
    "per_cycle_sampled": "share of the patients starting the cycle who had the event (sampled)",
    "cumulative": ("probability of at least one event by the end of the cycle, of all "
                   "patients (Rao-Blackwellised)"),
    "dose_mean_mg": ("mean daily dose on the days on drug (mg/day), mean over patients "
                     "starting the cycle (0 in cycles without lenalidomide)"),
    "dose_intensity": "mg delivered per day of the cycle, mean over patients starting it",
    "planned_intensity": "nominal mg per day of the cycle under the regimen (no events)",
    "share_on": "share of all patients who start the cycle",
    "share_at_target": "share of the patients starting the cycle whose dose reaches the target",
    "share_held": "share of the patients starting the cycle held or reduced in it",
    "share_reduced": "share of the patients starting the cycle reduced one level after it",
    "share_stopped": "share of all patients discontinued by the end of the cycle",
}  # fmt: skip
UNITS = {"dose_mean_mg": "mg/day", "dose_intensity": "mg/day", "planned_intensity": "mg/day"}


def dataset(
    out: dict[str, np.ndarray],
    schedule: Schedule,
    keys: np.ndarray,
    name: str,
    seed: int,
    n_patients: int,
    population_effect: str,
    events: tuple[str, ...] = OUTPUT_EVENTS,
    *,
    light: bool = False,
) -> Any:
    """Assemble draws.nc. Dims: draw, event, cycle (1-based). An ``xarray.Dataset``, or
    with ``light`` the :class:`RunDataset` it is made from (no xarray imported)."""
    n_cyc = schedule.n_cycles
    coords = {
        "draw": Variable(("draw",), np.arange(keys.size)),
        "event": Variable(("event",), np.array(list(events))),
        "cycle": Variable(("cycle",), np.arange(1, n_cyc + 1)),
        "posterior_index": Variable(("draw",), keys.astype(np.int64)),
    }
    data = {}
    for v in EVENT_VARS:
        data[v] = Variable(("draw", "event", "cycle"), out[v])
    for v in DOSE_VARS:
        data[v] = Variable(("draw", "cycle"), out[v])
    data["planned_intensity"] = Variable(
        ("cycle",), np.asarray(nominal_features(schedule)["intensity"], float)
    )
    for v, var in data.items():
        var.attrs = {"description": DOC[v], **({"units": UNITS[v]} if v in UNITS else {})}
    attrs = {"scenario": name, "seed": int(seed), "n_patients": int(n_patients),
             "population_effect": population_effect}  # fmt: skip
    ds = RunDataset(data, coords, attrs)
    return ds if light else ds.to_xarray()
