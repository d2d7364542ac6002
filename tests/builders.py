"""Synthetic inputs for the tests, built in one place: hazard parameter draws
(:func:`make_draws`), trial arms (:class:`Arm`), a run's dataset as the engine writes it
(:func:`make_run_dataset`) and a finished run's folder (:func:`write_run`).

Plain importable functions (``from builders import make_draws``); fixtures that use
them are in conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from lenasim.core.hazard import HazardDraws
from lenasim.core.regimen import Regimen
from lenasim.core.vocabulary import DOSE_COLUMNS, EVENTS, OUTPUT_EVENTS, SEVERITY

# ---------------------------------------------------------------- hazard parameter draws

# The terms of the default model spec (models/default.yaml), so synthetic posteriors
# exercise the same covariates as the real one.
DEFAULT_TERMS: dict[str, tuple[str, ...]] = {
    "flare": ("log_dose", "first", "rise", "log_cycle", "untreated", "anti_cd20", "chemo", "cdk_inhibitor"),
    "tls": ("log_dose", "first", "rise", "untreated", "consolidation", "anti_cd20", "chemo", "cdk_inhibitor"),
    "neutropenia": ("log_dose", "log_frac_on", "log_cycle", "untreated", "consolidation", "elderly",
                    "anti_cd20", "chemo", "cdk_inhibitor"),
    SEVERITY: ("log_dose", "steroid"),
}  # fmt: skip
# Plausible centres: per-cycle risks of a few percent to ~30% at 10 mg.
PLAUSIBLE_INTERCEPTS: dict[str, float] = {
    "flare": -1.0,
    "tls": -3.5,
    "neutropenia": -1.2,
    SEVERITY: -1.5,
}
PLAUSIBLE_COEFS: dict[str, float] = {"log_dose": 0.5, "first": 1.0, "rise": 0.5, "log_cycle": -0.3}


def make_draws(
    n_draws: int = 40,
    *,
    seed: int | np.random.Generator = 7,
    terms: Mapping[str, tuple[str, ...]] | None = None,
    intercept: float | Mapping[str, float] | None = None,
    coef: Mapping[str, float] | None = None,
    tau: float | np.ndarray | None = 0.4,
    sigma: float | np.ndarray | None = 0.6,
    spread: float = 0.3,
) -> HazardDraws:
    """Synthetic parameter draws of the hazard: each intercept and coefficient is its
    centre plus ``spread`` x N(0, 1), independently per draw.

    Parameters
    ----------
    terms : hazard (and :data:`SEVERITY`) -> its terms; default :data:`DEFAULT_TERMS`.
    intercept : one centre for every hazard, or hazard -> centre over
        :data:`PLAUSIBLE_INTERCEPTS`; default those.
    coef : term -> centre, the same in every hazard that uses the term; terms not named
        are centred on 0. Default :data:`PLAUSIBLE_COEFS`.
    tau, sigma : the trial and frailty SDs of every event: a number (the same in every
        draw), an (n_draws,) array, or None for 0.
    spread : 0 makes every draw identical.
    seed : seed (or Generator) of the normals, drawn hazard by hazard: the intercept,
        then the coefficients in the order of its terms.
    """
    rng = np.random.default_rng(seed)
    terms = dict(DEFAULT_TERMS if terms is None else terms)
    if intercept is None or isinstance(intercept, Mapping):
        centre_a = PLAUSIBLE_INTERCEPTS | dict(intercept or {})
    else:
        centre_a = dict.fromkeys(PLAUSIBLE_INTERCEPTS, float(intercept))
    centre_b = PLAUSIBLE_COEFS if coef is None else coef

    def sd(value: float | np.ndarray | None) -> np.ndarray:
        v = 0.0 if value is None else value
        return np.broadcast_to(np.asarray(v, float), (n_draws,)).copy()

    out_a, out_c, out_tau, out_sigma = {}, {}, {}, {}
    for block in (*EVENTS, SEVERITY):
        out_a[block] = centre_a[block] + spread * rng.standard_normal(n_draws)
        out_c[block] = {
            t: centre_b.get(t, 0.0) + spread * rng.standard_normal(n_draws) for t in terms[block]
        }
        if block != SEVERITY:
            out_tau[block], out_sigma[block] = sd(tau), sd(sigma)
    return HazardDraws(terms=terms, intercept=out_a, coefs=out_c, tau=out_tau, sigma=out_sigma)


# ---------------------------------------------------------------- trial arms


@dataclass(frozen=True)
class Arm:
    """A synthetic trial arm with the fields the model reads (the evidence loader's
    arms carry more)."""

    n: int
    regimen: Regimen
    setting: str = "relapsed"
    elderly: bool = False
    partner_classes: tuple = ()
    steroid_prophylaxis: bool = False


# ---------------------------------------------------------------- run datasets


def make_run_dataset(
    per_cycle: np.ndarray | None = None,
    *,
    n_draws: int = 30,
    n_cycles: int = 5,
    events: Sequence[str] = OUTPUT_EVENTS,
    scale: float = 1.0,
    scenario: str = "A",
    seed: int = 7,
    n_patients: int = 100,
    population_effect: str = "new_trial",
    posterior_index: np.ndarray | None = None,
    rng: int | np.random.Generator = 3,
) -> xr.Dataset:
    """A synthetic draws.nc, with the variables, dimensions, coordinates and attributes
    the engine writes (:func:`lenasim.simulation.engine.simulate`).

    ``per_cycle`` (draw, event, cycle) defaults to uniform(0.01, 0.3) x ``scale``
    (clipped to [0, 1]); then ``n_draws``, ``n_cycles`` and ``events`` follow its
    shape. ``per_cycle_sampled`` equals it and ``cumulative`` is 1 - prod(1 - p) over
    the cycles. Doses double from 2.5 mg to a 10 mg target (2.5, 5, 10, 10, ...) on
    days 1-21 of 28; the shares are small and plausible (held, reduced, stopped,
    starting the cycle, at target). ``rng`` seeds the synthetic values; ``seed`` and
    the rest are the run's attributes.
    """
    rng = np.random.default_rng(rng)
    if per_cycle is None:
        p = rng.uniform(0.01, 0.3, size=(n_draws, len(events), n_cycles))
        per_cycle = np.clip(p * scale, 0, 1)
    per_cycle = np.asarray(per_cycle, float)
    n_draws, _, n_cycles = per_cycle.shape
    pidx = np.arange(n_draws) if posterior_index is None else np.asarray(posterior_index)
    dose = np.tile(np.minimum(2.5 * 2.0 ** np.arange(n_cycles), 10.0), (n_draws, 1))
    held = rng.uniform(0, 0.2, size=(n_draws, n_cycles))
    stopped = 1 - np.cumprod(1 - held / 4, axis=1)
    dose_vars = {
        "dose_mean_mg": dose,
        "dose_intensity": dose * 0.7,
        "share_on": 1 - np.concatenate([np.zeros((n_draws, 1)), stopped[:, :-1]], axis=1),
        "share_at_target": np.where(dose >= 10.0, 1 - held, 0.0),
        "share_held": held,
        "share_reduced": held / 2,
        "share_stopped": stopped,
    }
    assert tuple(dose_vars) == DOSE_COLUMNS  # every dose output, in the engine's order
    ds = xr.Dataset(
        {
            "per_cycle": (("draw", "event", "cycle"), per_cycle),
            "per_cycle_sampled": (("draw", "event", "cycle"), per_cycle.copy()),
            "cumulative": (("draw", "event", "cycle"), 1 - np.cumprod(1 - per_cycle, axis=2)),
            **{v: (("draw", "cycle"), a) for v, a in dose_vars.items()},
            "planned_intensity": (("cycle",), dose[0] * 0.75),
        },
        coords={
            "draw": np.arange(n_draws),
            "event": list(events),
            "cycle": np.arange(1, n_cycles + 1),
            "posterior_index": ("draw", pidx.astype(np.int64)),
        },
        attrs={
            "scenario": scenario,
            "seed": seed,
            "n_patients": n_patients,
            "population_effect": population_effect,
        },
    )
    for v in ("dose_mean_mg", "dose_intensity", "planned_intensity"):
        ds[v].attrs["units"] = "mg/day"
    return ds


def as_run_dataset(ds: xr.Dataset):
    """``ds`` as the engine's own :class:`lenasim.simulation.dataset.RunDataset` (NumPy
    only: a process that unpickles it, or draws it, need not import xarray)."""
    from lenasim.simulation.dataset import RunDataset, Variable

    def var(v: xr.Variable) -> Variable:
        return Variable(tuple(map(str, v.dims)), np.asarray(v.values), dict(v.attrs))

    coords = {str(n): var(ds[n].variable) for n in ds.coords}
    return RunDataset({str(n): var(v.variable) for n, v in ds.data_vars.items()}, coords,
                      dict(ds.attrs))  # fmt: skip


def write_run(root: Path, ds: xr.Dataset, manifest: Mapping | None = None) -> Path:
    """A finished run's folder as `run` leaves it, root/<scenario>/: draws.nc and, unless
    ``manifest`` is None, manifest.json (saying it is a run, with its files' hashes, as the
    atomic writer stamps it; keys of ``manifest`` win). Returns the folder."""
    from lenasim.core.writers import file_hashes
    from lenasim.outputs.tables.netcdf import write_dataset

    d = Path(root) / str(ds.attrs["scenario"])
    d.mkdir(parents=True)
    write_dataset(ds, d / "draws.nc")  # as `run` writes it (xarray's writer if it must)
    if manifest is not None:
        stamp = {"lenasim_result": "run", "files": file_hashes(d)}
        (d / "manifest.json").write_text(json.dumps(stamp | dict(manifest)))
    return d


def params_from_theta(theta: np.ndarray, lay, terms: Mapping, n_trials: int) -> dict:
    """The kernel's flat parameter vector ``theta`` (laid out by ``lay``, a
    :class:`~lenasim.model.kernel.ThetaLayout`) as the parameter dict of
    :func:`~lenasim.model.likelihood.row_probabilities`, with a leading draws axis of 1."""
    from lenasim.core.hazard import EVENTS

    def one(v):
        return np.atleast_1d(np.asarray(v, float))

    blocks = (*EVENTS, lay.severity)
    return {
        "intercept": {b: one(theta[lay.intercept(b)]) for b in blocks},
        "beta": {b: {t: one(theta[lay.beta(b, t)]) for t in terms[b]} for b in blocks},
        "sigma": {ev: one(theta[lay.sigma(ev)]) for ev in EVENTS},
        "u": {ev: np.array([[theta[lay.u(t, ev)] for t in range(n_trials)]]) for ev in EVENTS},
    }
