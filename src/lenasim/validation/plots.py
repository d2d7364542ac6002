"""Figures of the validation: calibration (observed against predicted intervals), PIT
histogram, SBC rank histograms."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from lenasim.core.vocabulary import FITTED_OUTCOMES as OUTCOMES


def _plt():
    """matplotlib's pyplot on the Agg back end: the stage's one import of matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def calibration_plot(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Observed rate against the LOTO predictive median, with 50% (thick) and 90%
    (thin) predictive intervals as horizontal bars; one panel per outcome."""
    plt = _plt()

    fig, axes = plt.subplots(1, len(OUTCOMES), figsize=(4.2 * len(OUTCOMES), 4.4), squeeze=False)
    for ax, oc in zip(axes[0], OUTCOMES):
        g = table[table["outcome"] == oc]
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", zorder=0)
        top = 1.02  # each outcome on its own scale: TLS and grade >= 3 flare are a few per cent
        if len(g):
            nn = g["n"].to_numpy(float)
            seen = np.concatenate([g["observed"] / nn, g["hi90"] / nn])
            top = min(1.02, max(0.05, 1.1 * float(np.nanmax(seen))))
            n = g["n"].to_numpy(float)
            y = g["observed"].to_numpy(float) / n
            med = g["pred_median"].to_numpy(float) / n
            for lo, hi, lw, alpha in (("lo90", "hi90", 1.2, 0.45), ("lo50", "hi50", 4.0, 0.8)):
                ax.hlines(y, g[lo] / n, g[hi] / n, lw=lw, alpha=alpha, color="C0")
            inside = g["inside90"].to_numpy(bool)
            ax.scatter(med[inside], y[inside], s=22, color="C0", zorder=3, label="inside 90%")
            ax.scatter(med[~inside], y[~inside], s=30, color="C3", marker="D", zorder=3,
                       label="outside 90%")  # fmt: skip
            for xi, yi, rid in zip(med[~inside], y[~inside], g["row_id"][~inside]):
                ax.annotate(rid, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlim(-0.02 * top, top)
        ax.set_ylim(-0.02 * top, top)
        ax.set_title(f"{oc} ({len(g)} rows)")
        ax.set_xlabel("predicted (median; bars 50% / 90%)")
        ax.set_ylabel("observed share")
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.suptitle(
        title or "Leave-one-trial-out predictions: each row predicted from the other trials"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pit_plot(table: pd.DataFrame, path: Path) -> Path:
    plt = _plt()

    fig, ax = plt.subplots(figsize=(5, 3.5))
    n = len(table)
    ax.hist(table["pit"], bins=10, range=(0, 1), color="C0", alpha=0.8, edgecolor="white")
    ax.axhline(n / 10, color="k", lw=1, ls="--", label="uniform")
    ax.set_xlabel("randomised PIT of the observed count")
    ax.set_ylabel("rows")
    ax.set_title(f"LOTO PIT ({n} rows)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rank_histograms(ranks: pd.DataFrame, path: Path, bins: int | None = None) -> Path:
    """One rank histogram per parameter, with the 99% band of a uniform bin count."""
    plt = _plt()

    params = list(dict.fromkeys(ranks["param"]))
    ncol = 3
    nrow = math.ceil(len(params) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.8 * nrow), squeeze=False)
    for ax, name in zip(axes.ravel(), params):
        g = ranks[ranks["param"] == name]
        n, L = len(g), int(g["L"].iloc[0])
        b = bins or max(2, min(20, n // 5))
        ax.hist(g["rank"], bins=np.linspace(0, L + 1, b + 1), color="C0", edgecolor="white")
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / b)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(n / b, color="k", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, L + 1)
    for ax in axes.ravel()[len(params) :]:
        ax.axis("off")
    fig.suptitle(f"SBC rank histograms ({ranks['fit'].nunique()} fits; grey: 99% band)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
