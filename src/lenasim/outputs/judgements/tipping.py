"""Tipping points of verdicts: how far the dose priors would have to move to flip them.

Every limit verdict of a run (P(risk > limit) <= ``max_probability``) and every paired
comparison (P(one schedule's risk is below, or above, the other's) against 1/2) is
computed over the posterior draws the run simulated; :mod:`lenasim.outputs.judgements.reweighting`
reweights them to a dose-slope prior whose median is moved by a factor k and finds where
the verdict flips. The slopes moved are the ``log_dose`` coefficients of the hazards the
limit's event is made of (flare, TLS or neutropenia; for grade >= 3 flare the flare and
its severity), their prior is the model spec stored with the posterior (else the run's
spec file), and the draws are the run's (``posterior_index`` of ``draws.nc``). Where a
tipping point cannot be computed (unpaired runs, a posterior gone or changed, slopes that
are not positive under a log-normal prior), the columns say why.

The tipping columns (:data:`~lenasim.outputs.judgements.reweighting.TIPPING_COLUMNS`) go into a
run's ``limits.csv``, and a comparison's ``comparison.csv`` and ``limits.csv``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from lenasim.core.errors import LenasimError
from lenasim.core.vocabulary import active, event_title
from lenasim.model.posterior import load_posterior
from lenasim.model.spec import ModelSpec, load_spec
from lenasim.outputs.judgements.limits import risk_draws
from lenasim.outputs.judgements.reweighting import (
    TIPPING_COLUMNS,
    Shift,
    find_tipping,
    find_tippings,
    short_words,
)
from lenasim.outputs.tables.frame import Columns, as_columns

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

    from lenasim.core.hazard import HazardDraws
    from lenasim.core.limits import RiskLimits

__all__ = [
    "comparison_rows_tipping",
    "compare_tipping",
    "format_rows_tipping",
    "format_tipping",
    "limit_tipping",
    "limit_tipping_rows",
    "pair_tipping",
    "ref_posterior",
    "run_posterior",
    "shift_for",
    "spec_of",
    "tipping_rows",
    "unavailable_rows",
    "with_tipping",
]

TERMS = ("log_dose",)  # the dose slopes moved


def spec_of(post, spec_path=None):
    """The model spec a posterior was fitted with: stored in its attributes, else the spec
    file ``spec_path`` (whose hash the run checked against the posterior's). Raises
    LookupError saying why when neither is readable."""

    try:
        return ModelSpec.model_validate(json.loads(post.attrs["spec"]))
    except (KeyError, TypeError, ValueError):
        if spec_path is None:
            raise LookupError(f"the posterior {post.path} stores no readable model spec") from None
    try:
        return load_spec(spec_path)
    except LenasimError:
        raise LookupError(f"the model spec {spec_path} of the run cannot be read") from None


def hazards_of(event: str) -> tuple[str, ...]:
    """The fitted hazards an output event's risk is made of (grade >= 3 flare: the flare
    and its severity)."""

    v = active()
    if event == v.severity.output:
        return (v.severity.event, v.severity.name)
    return (event,)


def shift_for(event: str, draws: HazardDraws, spec, terms: tuple[str, ...] = TERMS) -> Shift:
    """The dose slopes of ``event``'s hazards in ``draws`` (the simulated ones, in order)
    and their priors in ``spec``."""
    cols, mus, sds, lns, names = [], [], [], [], []
    for hz in hazards_of(event):
        for t in terms:
            if t not in draws.coefs.get(hz, {}):
                continue
            prior = spec.prior(hz, t)
            cols.append(np.asarray(draws.coefs[hz][t], float))
            mus.append(prior.mu)
            sds.append(prior.sigma)
            lns.append(prior.dist == "lognormal")
            names.append(f"{hz}.{t}")
    if not cols:
        raise LookupError(f"the posterior has no dose slope ({', '.join(terms)}) for {event}")
    if any(ln and np.any(c <= 0) for ln, c in zip(lns, cols, strict=True)):
        raise LookupError(f"a dose slope of {event} is not positive in every draw, as its "
                          "log-normal prior requires")  # fmt: skip
    return Shift(np.stack(cols, 1), np.array(mus), np.array(sds), np.array(lns), tuple(names))


def limit_tipping(ds: xr.Dataset, limits: RiskLimits, draws: HazardDraws, spec) -> pd.DataFrame:
    """:func:`limit_tipping_rows` as a DataFrame."""
    return limit_tipping_rows(ds, limits, draws, spec).to_pandas()


def limit_tipping_rows(ds: xr.Dataset, limits: RiskLimits, draws: HazardDraws, spec) -> Columns:
    """Per limit (in the order of :func:`lenasim.outputs.judgements.limits.evaluate_limits`), where
    the verdict P(risk > max) <= max_probability flips: the columns of
    :data:`TIPPING_COLUMNS`. ``draws``: the posterior draws the run simulated, in the
    order of ``ds``'s ``draw`` dimension."""
    rows, shifts = [], {}
    for event, lim in limits.items():
        r = risk_draws(ds, event, lim)
        ok = ~np.isnan(r)
        sub = _defined(shifts, event, draws, spec, ok)
        t = find_tipping((r[ok] > lim.max).astype(float), sub, limits.max_probability)
        rows.append(t.row("holds"))
    return Columns.from_rows(rows, TIPPING_COLUMNS)


def pair_tipping(reference: xr.Dataset, other: xr.Dataset, limits: RiskLimits,
                 draws: HazardDraws, spec) -> Columns:  # fmt: skip
    """Per limit, where P(``other``'s risk < ``reference``'s) (ties one half) crosses 1/2,
    for runs paired on the same posterior draws (``draws``, in their order)."""
    rows, shifts = [], {}
    for event, lim in limits.items():
        a, b = risk_draws(reference, event, lim), risk_draws(other, event, lim)
        ok = ~(np.isnan(a) | np.isnan(b))
        hits = (b[ok] < a[ok]) + 0.5 * (b[ok] == a[ok])
        sub = _defined(shifts, event, draws, spec, ok)
        rows.append(find_tipping(hits, sub, 0.5).row("the ranking holds"))
    return Columns.from_rows(rows, TIPPING_COLUMNS)


def _defined(shifts: dict, event: str, draws: HazardDraws, spec, ok: np.ndarray) -> Shift:
    """``event``'s :class:`Shift` (made once per event in ``shifts``: limits on the same
    event share its reweighting grids) restricted to the draws ``ok``."""
    if event not in shifts:
        shifts[event] = shift_for(event, draws, spec)
    shift = shifts[event]
    if ok.all():
        return shift
    return Shift(shift.beta[ok], shift.mu, shift.sigma, shift.lognormal, shift.names)


def unavailable(n: int, why: str) -> pd.DataFrame:
    """:func:`unavailable_rows` as a DataFrame."""
    return unavailable_rows(n, why).to_pandas()


def unavailable_rows(n: int, why: str) -> Columns:
    """Tipping columns for ``n`` rows that could not be computed, saying why."""
    row = {"tipping_low": 1.0, "tipping_low_kind": "not computed", "tipping_high": 1.0,
           "tipping_high_kind": "not computed", "tipping_fragile": False,
           "tipping": f"not computed: {why}"}  # fmt: skip
    return Columns.from_rows([row] * n, TIPPING_COLUMNS)


def format_tipping(limits: Columns | pd.DataFrame, label: str = "limit") -> str:
    """Lines under a decision table: per row, its tipping point in words."""
    limits = as_columns(limits)
    if "tipping" not in limits or not len(limits):
        return ""
    lines = ["Tipping points (how far the prior median of the dose slope must move to flip the "
             "verdict, by reweighting the posterior draws):"]  # fmt: skip
    for r in limits.itertuples():
        lines.append(f"  {getattr(r, label)}: {r.tipping}")
    return "\n".join(lines)


def with_tipping(table: Columns | pd.DataFrame, ds: xr.Dataset, limits: RiskLimits,
                 draws: HazardDraws, post, other: xr.Dataset | None = None,
                 spec_path=None) -> Columns | pd.DataFrame:  # fmt: skip
    """``table`` (one row per limit, in the limits' order) with the tipping columns
    (:func:`tipping_rows`), a table of the same kind (Columns or DataFrame)."""
    if isinstance(table, Columns):
        if not len(table):
            return table.join(Columns({c: [] for c in TIPPING_COLUMNS}))
        return table.join(tipping_rows(len(table), ds, limits, draws, post, other, spec_path))
    import pandas as pd

    if not len(table):
        return table.reindex(columns=[*table.columns, *TIPPING_COLUMNS])
    tip = tipping_rows(len(table), ds, limits, draws, post, other, spec_path).to_pandas()
    return pd.concat([table.reset_index(drop=True), tip], axis=1)


def tipping_rows(n: int, ds: xr.Dataset, limits: RiskLimits, draws: HazardDraws, post,
                 other: xr.Dataset | None = None, spec_path=None) -> Columns:  # fmt: skip
    """The tipping columns of the ``n`` limits: of each run verdict, or with ``other``, of
    P(``other`` safer than ``ds``). Where they cannot be computed, the columns say why
    (``not computed: ...``)."""
    try:
        spec = spec_of(post, spec_path)
        return (limit_tipping_rows(ds, limits, draws, spec) if other is None
                else pair_tipping(ds, other, limits, draws, spec))  # fmt: skip
    except LookupError as err:
        return unavailable_rows(n, str(err))


def run_posterior(manifest: dict, ds: xr.Dataset):
    """The posterior a finished run simulated (the file its manifest names, checked against
    the hash it records) and the draws it used, in the order of its ``draw`` dimension.

    Raises LookupError saying why when the posterior is gone or changed since the run."""

    path = (manifest.get("posterior") or {}).get("path")
    expected = (manifest.get("hashes") or {}).get("posterior")
    if not path or "posterior_index" not in ds.coords:
        raise LookupError("the run does not record its posterior draws")
    try:
        post = load_posterior(path, check=False)
    except LenasimError:
        raise LookupError(f"the posterior {path} of the run cannot be read") from None
    if expected and post.hash != expected:
        raise LookupError(f"the posterior {path} changed since the run")
    return post, post.draws.take(np.asarray(ds["posterior_index"].values, int))


def ref_posterior(ref):
    """:func:`run_posterior` of a :class:`lenasim.outputs.tables.runs.Run`, read once per
    run and posterior (a comparison asks for the reference's per pair and per table)."""
    key = ("posterior", json.dumps([ref.manifest.get("posterior"), ref.manifest.get("hashes")],
                                   sort_keys=True, default=str))  # fmt: skip
    if key not in ref.memo:
        try:
            ref.memo[key] = run_posterior(ref.manifest, ref.ds)
        except LookupError as err:
            ref.memo[key] = err
    got = ref.memo[key]
    if isinstance(got, LookupError):
        raise LookupError(str(got))
    return got


def compare_tipping(frame: pd.DataFrame, ref, run, limits: RiskLimits, paired: bool):
    """A compare limits ``frame`` (one row per limit of ``limits``) with the tipping point
    of each P(safer) (``ref``, ``run``: :class:`lenasim.outputs.tables.runs.Run`)."""
    import pandas as pd

    if not paired:
        tip = unavailable(len(frame), "the runs are not paired on the same posterior draws")
        return pd.concat([frame.reset_index(drop=True), tip], axis=1)
    try:
        post, draws = ref_posterior(ref)
    except LookupError as err:
        return pd.concat([frame.reset_index(drop=True), unavailable(len(frame), str(err))], axis=1)
    return with_tipping(frame, ref.ds, limits, draws, post, other=run.ds,
                        spec_path=_spec_path(ref.manifest))  # fmt: skip


def _spec_path(manifest: dict):
    """The model spec a run's config named (resolved in its manifest), or None."""
    cfg = manifest.get("config")
    post = cfg.get("posterior") if isinstance(cfg, dict) else None
    return post.get("spec") if isinstance(post, dict) else None


def comparison_rows_tipping(df: pd.DataFrame, ref, run, paired: bool) -> pd.DataFrame:
    """The event rows of comparison.csv for one pair (``df``: quantity, event, cycle,
    p_riskier, identical, ...) with the tipping point of each P(riskier) (the share of
    draws in which the scenario's value is above the reference's) crossing 1/2."""
    import pandas as pd

    df = df.reset_index(drop=True)
    if not len(df):
        return df.reindex(columns=[*df.columns, *TIPPING_COLUMNS])
    if not paired:
        why = "the runs are not paired on the same posterior draws"
        return pd.concat([df, unavailable(len(df), why)], axis=1)
    try:
        post, draws = ref_posterior(ref)
        spec = spec_of(post, _spec_path(ref.manifest))
        shifts = {str(e): shift_for(str(e), draws, spec) for e in df["event"].unique()}
    except LookupError as err:
        return pd.concat([df, unavailable(len(df), str(err))], axis=1)
    tip = unavailable(len(df), "identical in every draw: nothing to flip")
    tip["tipping_low_kind"] = tip["tipping_high_kind"] = "identical"
    at: list[int] = []  # the rows computed, and their columns: set once per column below
    cols: dict[str, list] = {c: [] for c in TIPPING_COLUMNS}
    for (qty, event), rows in df.groupby(["quantity", "event"], sort=False):
        todo = rows[~rows["identical"].astype(bool)]
        if not len(todo):
            continue
        cycles = todo["cycle"].to_numpy()
        a = np.asarray(ref.ds[qty].sel(event=event, cycle=cycles).transpose("draw", "cycle"), float)
        b = np.asarray(run.ds[qty].sel(event=event, cycle=cycles).transpose("draw", "cycle"), float)
        mask = ~(np.isnan(a) | np.isnan(b))
        hits = np.where(mask, b > a, False)
        found = find_tippings(hits, shifts[str(event)], 0.5, mask=mask)
        for i, t in zip(todo.index, found, strict=True):
            at.append(i)
            for c, v in t.row("the ranking holds").items():
                cols[c].append(v)
    if at:
        for c in TIPPING_COLUMNS:
            tip.loc[at, c] = cols[c]
    return pd.concat([df, tip], axis=1)


def format_rows_tipping(df: pd.DataFrame) -> str:
    """Under compare's main rows: per scenario and event, the tipping point of P(riskier)
    in cycle 1 and by the last cycle (:func:`short_words`)."""

    if "tipping" not in df or not len(df):
        return ""
    lines = []
    for name, sub in df.groupby("scenario", sort=False):
        last = int(sub.loc[sub["quantity"] == "cumulative", "cycle"].max())
        lines.append(f"{name} vs {sub['reference'].iloc[0]}: where each P(riskier) would cross "
                     "1/2, as factors on the prior median of the dose slope (FRAGILE: within "
                     "the prior's 50% interval; 'holds a-b': no flip as far as reweighting "
                     "can tell):")  # fmt: skip
        first: dict[tuple, int] = {}  # (quantity, event, cycle) -> its first row in sub
        for i, key in enumerate(zip(sub["quantity"], sub["event"], sub["cycle"], strict=True)):
            first.setdefault(key, i)
        for event in dict.fromkeys(sub["event"]):
            cells = []
            for qty, cyc, label in (("per_cycle", 1, "cycle 1"),
                                    ("cumulative", last, f"by end of cycle {last}")):  # fmt: skip
                if (qty, event, cyc) in first:
                    cells.append(f"{label} {short_words(sub.iloc[first[qty, event, cyc]])}")
            lines.append(f"  {event_title(str(event)):<26} {'; '.join(cells)}")
    return "\n".join(lines)
