"""The headline numbers of a run, computed once (outputs.summaries.headline) and shown
by the terminal table, the report and the prior sensitivity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders import make_draws, make_run_dataset
from lenasim.outputs.report.run import headline_table
from lenasim.outputs.tables.summaries import compact_table, format_compact, headline

REPO = Path(__file__).resolve().parents[2]


def summary(x: np.ndarray) -> list[float]:
    """mean, 5% and 95% quantiles over draws, NaN draws left out."""
    x = x[np.isfinite(x)]
    return [x.mean(), *np.quantile(x, [0.05, 0.95])]


def test_headline_by_hand():
    """Cycle 1, cycle 2, the per-draw mean of cycles 3-5 (a draw in which nobody starts
    cycles 4 and 5 averages cycle 3 alone), cumulative by the end of cycle 5."""
    ds = make_run_dataset(n_draws=50, n_cycles=5, rng=8)
    pc = ds["per_cycle"].values.copy()
    pc[0, :, 3:] = np.nan
    ds["per_cycle"] = (ds["per_cycle"].dims, pc)
    cum = ds["cumulative"].values
    h = headline(ds).set_index(["event", "quantity"])
    assert list(h.index.get_level_values("quantity").unique()) == [
        "cycle 1", "cycle 2", "cycles 3+", "cumulative (5 cycles)",
    ]  # fmt: skip
    cycles3 = np.array([pc[0, :, 2], *pc[1:, :, 2:].mean(axis=2)])  # (draw, event)
    for e, ev in enumerate(ds["event"].values):
        for quantity, x in (("cycle 1", pc[:, e, 0]), ("cycle 2", pc[:, e, 1]),
                            ("cycles 3+", cycles3[:, e]),
                            ("cumulative (5 cycles)", cum[:, e, -1])):  # fmt: skip
            got = h.loc[(ev, quantity), ["mean", "q05", "q95"]].to_numpy(float)
            np.testing.assert_allclose(got, summary(x), rtol=1e-12, err_msg=f"{ev} {quantity}")


def test_short_schedule_has_no_later_cycles():
    h = headline(make_run_dataset(n_cycles=2)).set_index(["event", "quantity"])
    assert h.xs("cycles 3+", level="quantity")["mean"].isna().all()
    assert h.xs("cycle 2", level="quantity")["mean"].notna().all()
    assert "cumulative (2 cycles)" in h.index.get_level_values("quantity")


def test_terminal_table_and_report_show_the_headline():
    ds = make_run_dataset(n_draws=40, n_cycles=4)
    h = headline(ds).set_index(["event", "quantity"])
    compact = compact_table(ds)
    report = headline_table(ds).set_index("event")
    labels = {"cycle 1": "Cycle 1", "cycle 2": "Cycle 2", "cycles 3+": "Cycles 3+ (per cycle)",
              "cumulative (4 cycles)": "By end of cycle 4"}  # fmt: skip
    for (event, quantity), (m, lo, md, hi) in h[["mean", "q05", "q50", "q95"]].iterrows():
        assert compact.loc[event, quantity] == (m, lo, hi, md)
        cell = f"{100 * md:.1f}% / {100 * m:.1f}% ({100 * lo:.1f}% to {100 * hi:.1f}%)"
        assert report.loc[event, labels[quantity]] == cell
    text = format_compact(compact)
    m, lo, md, hi = h.loc[("tls", "cycle 1"), ["mean", "q05", "q50", "q95"]]
    assert f"{100 * md:.1f}% / {100 * m:.1f}% ({100 * lo:.1f}% to {100 * hi:.1f}%)" in text
    assert "Tumor lysis syndrome" in text and "flare_grade3plus" not in text


def test_prior_sensitivity_reports_the_headlines_cycle_1_and_cumulative():
    """headline_numbers simulates a config on evenly spaced draws: its numbers are the
    cycle-1 and cumulative headline of that simulation."""
    from lenasim.simulation.engine import simulate
    from lenasim.simulation.scenario import load_scenario
    from lenasim.simulation.streams import select_draws
    from lenasim.validation.sensitivity import headline_numbers

    draws = make_draws(30, seed=2)
    config = REPO / "configs" / "pulse_21of42.yaml"
    got = headline_numbers(draws, [config], patients=40, n_draws=12)
    sc = load_scenario(config)
    idx = select_draws(30, 12, sc.seed)
    ds = simulate(sc.regimen.expand(), sc.population, sc.rules, draws.take(idx), n_patients=40,
                  seed=sc.seed, population_effect=sc.population_effect, posterior_index=idx)  # fmt: skip
    last = ds.sizes["cycle"]
    assert list(got.columns) == ["config", "event", "quantity", "mean", "q05", "q95"]
    assert (got["config"] == sc.name).all()
    assert set(got["quantity"]) == {"cycle 1", f"cumulative ({last} cycles)"}
    for r in got.itertuples():
        var, cycle = ("per_cycle", 0) if r.quantity == "cycle 1" else ("cumulative", -1)
        x = ds[var].sel(event=r.event).values[:, cycle]
        assert [r.mean, r.q05, r.q95] == pytest.approx(summary(x), rel=1e-12)
