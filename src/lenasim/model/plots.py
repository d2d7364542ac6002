"""Posterior and prior plots of a fit, written beside the posterior (models/<spec>/).

Figure functions take data (and ``ax=None`` where one axes suffices) and return the
figure; matplotlib is imported inside them. The numbers behind the dose-response and
prior-predictive figures come from :func:`cycle1_probability`, which uses the same
hazard as the fit and the simulator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lenasim.core.hazard import EVENTS, SEVERITY, HazardDraws, frailty_quadrature
from lenasim.core.vocabulary import OUTPUT_EVENTS, covariate_features, event_title
from lenasim.core.writers import replace_file
from lenasim.model.likelihood import UNITS
from lenasim.model.posterior import draws_from_dataset
from lenasim.model.predictive import new_trial_effects

REFERENCE = "relapsed CLL, single agent, days 1-21 of 28, first cycle, no prophylaxis"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cycle1_probability(
    draws: HazardDraws,
    doses_mg,
    *,
    new_trial: bool = True,
    days_on: int = 21,
    cycle_days: int = 28,
    nodes: int = 25,
    rng: np.random.Generator | None = None,
    trials_per_draw: int = 4,
) -> dict:
    """Cycle-1 probability of each outcome against dose for the reference patient.

    Frailty is integrated by quadrature. With ``new_trial`` and no ``rng`` the trial
    effect is integrated too (u ~ N(0, tau) and z ~ N(0, 1) add on the logit scale, so
    one quadrature over N(0, tau^2 + sigma^2) does both): the mean risk over new trials,
    whose spread across draws is the parameter uncertainty only. With ``rng`` each draw
    gets ``trials_per_draw`` new trials instead, each with its own effect u ~ N(0, tau)
    (Student-t when the fit used it): the spread of the risk a new trial will have,
    which is what a band for "a new trial" must show. Returns outcome -> (S, len(doses)),
    or (S * trials_per_draw, len(doses)) with ``rng``.
    """
    doses = np.asarray(doses_mg, float)
    ones = np.ones_like(doses)
    feats = {
        "log_dose": np.log(doses / 10.0),
        "log_frac_on": np.full(doses.shape, np.log(days_on / cycle_days)),
        "first": ones,
        "first_log_dose": np.log(doses / 10.0),
        "rise": np.zeros_like(doses),
        "log_cycle": np.zeros_like(doses),
        "restart": np.zeros_like(doses),
        "cum_exposure": np.zeros_like(doses),  # cycle 1: nothing carried
        **covariate_features("relapsed", (), False, elderly=0.0, first=ones),
    }
    z, w = frailty_quadrature(nodes)
    from scipy.special import expit

    u = None
    if new_trial and rng is not None:
        draws, u3 = new_trial_effects(draws, 1, trials_per_draw, rng)
        u = dict(zip(EVENTS, np.moveaxis(u3[:, 0, :], -1, 0), strict=True))  # event -> (S,)
    out = {}
    for ev in EVENTS:
        eta = draws.eta(ev, feats)  # (S, D)
        if u is not None:
            eta = eta + u[ev][:, None]
            sd = np.asarray(draws.sigma[ev], float)
        else:
            sd = np.sqrt(draws.sigma[ev] ** 2 + (draws.tau[ev] ** 2 if new_trial else 0.0))
        p = expit(eta[..., None] + sd[:, None, None] * z)  # (S, D, Q)
        out[ev] = p @ w
        if ev == "flare":
            sev = expit(draws.eta(SEVERITY, feats))
            out["flare_grade3plus"] = (p @ w) * sev
    return out


def draws_from_group(ds) -> HazardDraws:

    return draws_from_dataset(ds)


def prior_predictive_table(prior: HazardDraws, doses=(2.5, 10.0, 25.0)) -> pd.DataFrame:
    """What the priors imply: cycle-1 risk at a few doses (new trial), median and 90%."""
    pr = cycle1_probability(prior, doses)
    rows = []
    for o in OUTPUT_EVENTS:
        for j, d in enumerate(doses):
            v = pr[o][:, j]
            rows.append(
                {
                    "outcome": o,
                    "dose_mg": d,
                    "median": np.median(v),
                    "q05": np.quantile(v, 0.05),
                    "q95": np.quantile(v, 0.95),
                }
            )
    return pd.DataFrame(rows)


def dose_response_figure(post: HazardDraws, prior: HazardDraws | None = None, seed: int = 1):
    """Cycle-1 probability against dose (2.5-25 mg), one panel per outcome, with bands:
    the typical trial (u = 0) and a new trial (a new trial effect drawn per draw, so the
    band holds the between-trial spread). Each outcome has its own y scale (TLS and
    grade >= 3 flare are a few per cent); the prior's band may run off the top."""
    plt = _plt()
    doses = np.geomspace(2.5, 25, 40)
    rng = np.random.default_rng(seed)
    typ = cycle1_probability(post, doses, new_trial=False)
    new = cycle1_probability(post, doses, new_trial=True, rng=rng)
    pri = cycle1_probability(prior, doses, new_trial=True, rng=rng) if prior is not None else None
    fig, axes = plt.subplots(1, 4, figsize=(15, 4), sharex=True)
    for ax, o in zip(axes, OUTPUT_EVENTS):
        q = np.quantile(typ[o], [0.05, 0.25, 0.5, 0.75, 0.95], axis=0) * 100
        ax.fill_between(doses, q[0], q[4], color="C0", alpha=0.2, label="90% (typical trial)")
        ax.fill_between(doses, q[1], q[3], color="C0", alpha=0.35, label="50% (typical trial)")
        ax.plot(doses, q[2], color="C0", lw=2, label="median")
        qn = np.quantile(new[o], [0.05, 0.95], axis=0) * 100
        ax.plot(doses, qn[0], "C0--", lw=1, label="90% (a new trial)")
        ax.plot(doses, qn[1], "C0--", lw=1)
        if pri is not None:
            qp = np.quantile(pri[o], [0.05, 0.95], axis=0) * 100
            ax.plot(doses, qp[0], color="0.5", ls=":", lw=1, label="90% prior")
            ax.plot(doses, qp[1], color="0.5", ls=":", lw=1)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks([2.5, 5, 10, 15, 25], ["2.5", "5", "10", "15", "25"])
        ax.set_ylim(0, min(100.0, 1.15 * float(max(qn[1].max(), q[4].max()))) or 1.0)
        ax.set_title(event_title(o))
        ax.set_xlabel("dose (mg/day)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probability in cycle 1 (%)")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Cycle-1 risk against starting dose ({REFERENCE})", fontsize=11)
    fig.tight_layout()
    return fig


def prior_predictive_figure(prior: HazardDraws):
    """Prior-implied cycle-1 risk at 2.5, 10 and 25 mg: what the priors say before data."""
    plt = _plt()
    doses = (2.5, 10.0, 25.0)
    pr = cycle1_probability(prior, doses)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))  # each outcome on its own scale
    for ax, o in zip(axes, OUTPUT_EVENTS):
        ax.violinplot([pr[o][:, j] * 100 for j in range(3)], showmedians=True)
        ax.set_xticks([1, 2, 3], [f"{d:g} mg" for d in doses])
        ax.set_title(event_title(o))
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("prior cycle-1 probability (%)")
    fig.suptitle(
        "Prior predictive check: cycle-1 risk implied by the priors alone (a new trial)",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def _predictive_rates(p_row: np.ndarray, data, rng) -> np.ndarray:
    """(S, row) predictive reported rates: binomial noise for patient and cycle-k rows;
    for share-of-cycles rows, the expected share (their noise is not binomial)."""
    out = p_row.copy()
    b = data.row_unit != UNITS.index("cycles")
    n = data.n[b].astype(int)
    out[:, b] = rng.binomial(n, p_row[:, b]) / n
    return out


def evidence_forest_figure(p_row: np.ndarray, data, seed: int = 1):
    """Observed rate of every fitted row against its 90% posterior predictive interval."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    pred = _predictive_rates(p_row, data, rng) * 100
    rows = data.rows
    obs = rows["events"].to_numpy(float) / rows["n"].to_numpy(float) * 100
    order = np.lexsort((rows["row_id"].to_numpy(), rows["outcome"].to_numpy()))
    n = len(rows)
    fig, ax = plt.subplots(figsize=(10, 0.28 * n + 1.5))
    q = np.quantile(pred, [0.05, 0.5, 0.95], axis=0)
    inside = (obs >= q[0] - 1e-9) & (obs <= q[2] + 1e-9)
    for y, i in enumerate(order):
        ax.plot([q[0, i], q[2, i]], [y, y], color="C0", lw=3, alpha=0.5)
        ax.plot(q[1, i], y, "|", color="C0", ms=10)
        ax.plot(obs[i], y, "o", color="k" if inside[i] else "C3", ms=5)
    labels = [
        f"{rows['row_id'].iloc[i]}  ({int(rows['events'].iloc[i])}/{int(rows['n'].iloc[i])}"
        f" {rows['unit'].iloc[i]})"
        for i in order
    ]
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlim(-2, 102)
    ax.set_xlabel(
        "reported rate (%): dot = observed (red if outside), bar = 90% posterior predictive"
    )
    ax.set_title(f"Every fitted evidence row: {inside.sum()} of {n} inside their 90% interval")
    ax.grid(alpha=0.3, axis="x")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def cycle_curve_figure(p_row: np.ndarray, data, trial_key: str = "aue", seed: int = 2, ax=None):
    """Per-cycle flare of the model against a trial's reported cycle-k flare rates (Aue)."""
    plt = _plt()
    rows = data.rows
    sel = np.flatnonzero(
        rows["trial"].str.contains(trial_key)
        & (rows["unit"] == "cycle_k")
        & (rows["outcome"] == "flare_any")
    )
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    if sel.size == 0:
        ax.text(
            0.5,
            0.5,
            f"no cycle-k flare rows for '{trial_key}' in the fit",
            ha="center",
            transform=ax.transAxes,
        )
        return fig
    from scipy.stats import beta

    rng = np.random.default_rng(seed)
    k = rows["cycle_k"].to_numpy(float)[sel]
    ev = rows["events"].to_numpy(float)[sel]
    n = rows["n"].to_numpy(float)[sel]
    pred = rng.binomial(n.astype(int), p_row[:, sel]) / n * 100
    q = np.quantile(pred, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    ax.fill_between(k, q[0], q[4], color="C1", alpha=0.2, label="model, 90% predictive")
    ax.fill_between(k, q[1], q[3], color="C1", alpha=0.35, label="model, 50% predictive")
    ax.plot(k, q[2], color="C1", lw=2)
    lo, hi = beta.ppf(0.05, ev + 0.5, n - ev + 0.5), beta.ppf(0.95, ev + 0.5, n - ev + 0.5)
    ax.errorbar(
        k,
        ev / n * 100,
        yerr=[ev / n * 100 - lo * 100, hi * 100 - ev / n * 100],
        fmt="o",
        color="k",
        capsize=4,
        label="reported (90% Jeffreys)",
    )
    ax.set_xticks(k)
    ax.set_xlabel("cycle")
    ax.set_ylabel("flare in the cycle (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Per-cycle tumor flare: model against Aue G et al., Blood 2010 (ASH abstract)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def prior_posterior_figure(prior: HazardDraws, post: HazardDraws):
    """Prior (grey) against posterior (blue) for the main parameters of each event."""
    plt = _plt()
    params = [
        ("intercept", "intercept"),
        ("log_dose", "dose slope (per log mg)"),
        ("tau", "between-trial SD"),
        ("sigma", "frailty SD"),
    ]
    fig, axes = plt.subplots(len(params), 3, figsize=(12, 9))

    def get(d: HazardDraws, ev: str, p: str):
        if p == "intercept":
            return d.intercept[ev]
        if p in ("tau", "sigma"):
            return getattr(d, p)[ev]
        return d.coefs[ev].get(p)

    for i, (p, label) in enumerate(params):
        for j, ev in enumerate(EVENTS):
            ax = axes[i, j]
            a, b = get(prior, ev, p), get(post, ev, p)
            if a is None or b is None:
                ax.set_axis_off()
                continue
            lo, hi = np.quantile(np.concatenate([a, b]), [0.005, 0.995])
            bins = np.linspace(lo, hi, 50)
            ax.hist(a, bins=bins, density=True, color="0.6", alpha=0.6, label="prior")
            ax.hist(b, bins=bins, density=True, color="C0", alpha=0.6, label="posterior")
            ax.set_title(f"{event_title(ev)}: {label}", fontsize=9)
            ax.set_yticks([])
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        "Prior against posterior (logit scale): where the data moved the belief", fontsize=11
    )
    fig.tight_layout()
    return fig


def rank_figure(idata):
    """Rank plots of the main parameters (uniform ranks across chains = good mixing)."""
    import arviz as az

    _plt()
    names = ["intercept", "tau", "sigma", "sev_intercept"]
    axes = az.plot_rank(idata, var_names=names, kind="bars", figsize=(12, 14))
    fig = np.asarray(axes).ravel()[0].figure
    for ax in np.asarray(axes).ravel():
        ax.title.set_fontsize(10)
        ax.xaxis.label.set_fontsize(9)
        ax.yaxis.label.set_fontsize(9)
    fig.suptitle("Rank plots: flat bars in every chain = chains agree (good mixing)", fontsize=12)
    fig.tight_layout()
    return fig


def posterior_plots(idata, data, spec, out_dir: str | Path) -> list[Path]:
    """Write every posterior figure (and the prior-predictive table) into ``out_dir``."""
    plt = _plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    post = draws_from_group(idata.posterior)
    prior = draws_from_group(idata.prior) if hasattr(idata, "prior") else None
    p_row = np.asarray(idata.posterior["p_row"].stack(s=("chain", "draw")).transpose("s", "row"))
    figs = {
        "rank.png": rank_figure(idata),
        "evidence_forest.png": evidence_forest_figure(p_row, data),
        "dose_response.png": dose_response_figure(post, prior),
        "flare_by_cycle_aue.png": cycle_curve_figure(p_row, data),
    }
    if prior is not None:
        figs["prior_posterior.png"] = prior_posterior_figure(prior, post)
        figs["prior_predictive.png"] = prior_predictive_figure(prior)
    written = []  # each file through the atomic writer: a reader sees the old or the new one
    for name, fig in figs.items():
        written.append(
            replace_file(
                out_dir / name, lambda tmp, fig=fig: fig.savefig(tmp, dpi=110, format="png")
            )
        )
        plt.close(fig)
    if prior is not None:
        tab = prior_predictive_table(prior)
        written.append(replace_file(
            out_dir / "prior_predictive.csv",
            lambda tmp: tab.to_csv(tmp, index=False, float_format="%.4f"),
        ))  # fmt: skip
    return written
