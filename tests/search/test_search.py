"""`python -m lenasim search` end to end on synthetic posteriors.

The known-optimum search: a posterior in which only the dose moves the risk (one term,
log(mean dose on the days taken / 10 mg), no trial effect, no frailty, every draw the
same), rules that never hold or stop anyone, and a cycle-1 TLS limit. Cycle-1 TLS risk is
then exactly expit(a + b log(d1 / 10)), d1 the mean dose over cycle 1's days on drug, so a
schedule is feasible exactly when d1 <= 11 mg. The test works out every schedule's
calendar by hand (its own code, not the regimen language's), hence d1, the days to the
target and the mg delivered, and from them the fastest feasible schedule.
"""

from __future__ import annotations

import itertools
import json
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from scipy.special import expit, logit

from conftest import make_draws
from helpers import assert_leaves_unimported
from lenasim.commands import run as run_command  # the `run` command
from lenasim.commands.search import cmd_search
from lenasim.core.errors import ConfigError, LenasimError
from lenasim.core.hazard import SEVERITY
from lenasim.model.posterior import load_posterior, write_posterior

A_TLS, B_TLS = float(logit(0.02)), 2.0  # TLS: 2% at 10 mg, log-dose slope 2
D_LIMIT = 11.0  # the limit is the risk at 11 mg: feasible iff d1 <= 11 mg
STARTS, TARGET, STEPS = (2.5, 5, 10, 15, 20), 20.0, (2.5, 5)
CYCLES, CYCLE_DAYS, DAYS_ON = 6, 28, 21


def tls_risk(dose: float) -> float:
    return float(expit(A_TLS + B_TLS * np.log(dose / 10)))


def known_config(limit_dose: float = D_LIMIT, **extra) -> dict:
    return {
        "name": "known",
        "seed": 3,
        "population": {"patients": 30, "setting": "untreated"},
        "rules": {"on_neutropenia": "continue", "on_flare_grade3plus": "continue",
                  "on_tls": "continue"},
        "posterior": {"spec": "models/default.yaml", "draws": 4},
        "space": {
            "start_mg": list(STARTS), "target_mg": TARGET, "cycles": CYCLES,
            "escalation": [{"step_mg": list(STEPS), "every": [1, 2], "unit": "weeks"},
                           {"step_mg": 5, "every": 1, "unit": "cycles"}],
        },
        "limits": {"tls": {"cycle": 1, "max": tls_risk(limit_dose)}},
        "references": [{"name": "slow_escalation", "regimen": {
            "cycle_days": 28, "days_on": [1, 21], "start_mg": 2.5, "target_mg": 10,
            "escalation": {"levels_mg": [2.5, 5, 10], "every": 1, "unit": "cycles"},
            "cycles": CYCLES}}],
        "top": 1,
    } | extra  # fmt: skip


def hand_calendar(start: float, step: float, every_days: int) -> np.ndarray:
    """Daily dose over the horizon, by hand: step j falls on day j * every_days after the
    first dose (day 0) and counts from the next day on drug; the dose stops at the target."""
    days = np.arange(CYCLES * CYCLE_DAYS)
    on = (days % CYCLE_DAYS) < DAYS_ON
    steps = days // every_days if every_days else 0
    return np.where(on, np.minimum(start + step * steps, TARGET), 0.0)


def hand_expectations() -> pd.DataFrame:
    """Every schedule of the known space, with d1, feasibility, days to the target and the
    mean mg per day over the 6 cycles."""
    rows = []
    for start in STARTS:
        if start == TARGET:
            combos = [(0.0, 0)]  # no escalation
        else:
            combos = [*itertools.product(STEPS, (7, 14)), (5.0, CYCLE_DAYS)]
        for step, every in combos:
            dose = hand_calendar(start, step, every)
            cyc1 = dose[:CYCLE_DAYS][:DAYS_ON]
            at = np.flatnonzero(dose >= TARGET)
            rows.append({"start_mg": start, "step": step, "every_days": every,
                         "d1": cyc1.mean(), "days_to_target": float(at[0]),
                         "intensity": dose.sum() / (CYCLES * CYCLE_DAYS)})  # fmt: skip
    df = pd.DataFrame(rows)
    df["feasible"] = df["d1"] <= D_LIMIT
    return df


@pytest.fixture(scope="module")
def known_posterior(tmp_path_factory) -> Path:
    """A posterior where only the dose moves the risk, with the attrs of the synthetic
    one (up to date with the repo's spec and evidence); written once, copied by tests."""
    import conftest

    terms = {ev: ("log_dose",) for ev in ("flare", "tls", "neutropenia", SEVERITY)}
    draws = make_draws(8, terms=terms, tau=None, sigma=None, spread=0.0,
                       intercept={"tls": A_TLS, "flare": -6.0, "neutropenia": -6.0,
                                  SEVERITY: -6.0},
                       coef={"log_dose": B_TLS})  # fmt: skip
    attrs = load_posterior(conftest._synthetic_posterior(Path(conftest.__file__).parents[1])).attrs
    return write_posterior(tmp_path_factory.mktemp("known") / "default.nc", draws, attrs)


@pytest.fixture
def known_workdir(posterior_workdir, known_posterior):
    """posterior_workdir with a posterior where only the dose moves the risk."""
    import shutil

    shutil.copy(known_posterior, posterior_workdir / "models" / "default.nc")
    return posterior_workdir


@pytest.fixture(scope="module")
def known_search(tmp_path_factory, known_posterior) -> Path:
    """The known search (known_config(), the top 2 written, with the Pareto plot; the run
    folders' own figures, which no assertion reads, left out) run once in a folder of its
    own, for the tests that read what it found and wrote: its results folder. Never
    change it in place."""
    import shutil

    from conftest import make_posterior_workdir
    from lenasim.outputs.figures import run as run_figures
    from lenasim.outputs.report import run as run_page

    root = tmp_path_factory.mktemp("known_search")
    with pytest.MonkeyPatch.context() as mp:
        make_posterior_workdir(root, mp)
        shutil.copy(known_posterior, root / "models" / "default.nc")
        mp.chdir(root)
        mp.setattr(run_figures, "scenario_plots", lambda *a, **k: None)
        mp.setattr(run_page, "later_images", lambda *a, **k: [])  # no <img>
        mp.setattr(run_page, "fill_images", lambda html, *a, **k: html)
        cfg = write_config(root / "known.yaml", known_config())
        assert cmd_search(search_args(cfg, no_plots=False, top=2)) == 0
    return root / "results" / "search-known"


def search_args(config: str, **kw) -> Namespace:
    base = dict(config=config, dask=None, workers=None, batch_size=None, yes=False,
                overwrite=False, results=None, patients=None, draws=None, top=None,
                no_plots=True, quiet=True, refit=False)  # fmt: skip
    return Namespace(**(base | kw))


def write_config(path: Path, cfg: dict) -> str:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path)


def test_hand_calendar_agrees_with_the_worked_example():
    # 5 mg, +5 mg weekly: 5, 10, 15 mg in weeks 1-3 (d1 = 10 mg); the step to 20 mg falls on
    # day 21, a rest day, so 20 mg from day 28.
    dose = hand_calendar(5, 5, 7)
    assert dose[[0, 7, 14, 21, 28]].tolist() == [5, 10, 15, 0, 20]


def test_known_optimum_is_found(known_search, posterior_workdir):
    out = known_search
    got = pd.read_csv(out / "candidates.csv", na_values=["none", "not reached"])
    hand = hand_expectations()
    assert len(got) == len(hand) == 4 * 5 + 1
    # the fastest feasible schedule, ties by the mg delivered (the second objective)
    best = hand[hand["feasible"]].sort_values(["days_to_target", "intensity"],
                                              ascending=[True, False]).iloc[0]  # fmt: skip
    assert (best["start_mg"], best["step"], best["every_days"]) == (5, 5, 7)  # worked by hand
    top = got.iloc[0]
    assert top["feasible"] and top["rank"] == 1
    assert (top["start_mg"], top["step_mg"], top["every"], top["unit"]) == (5, 5, 1, "weeks")
    assert top["days_to_target"] == best["days_to_target"] == 28
    # every schedule's feasibility, days and delivered dose, matched to the hand table
    unit_days = got["unit"].map({"weeks": 7, "cycles": CYCLE_DAYS}).fillna(0)
    got["every_days"] = (got["every"].fillna(0) * unit_days).astype(int)
    got["step"] = got["step_mg"].fillna(0.0)
    merged = got.merge(hand, on=["start_mg", "step", "every_days"], suffixes=("", "_hand"),
                       validate="one_to_one")  # fmt: skip
    assert len(merged) == len(hand)
    assert (merged["feasible"] == merged["feasible_hand"]).all()
    assert (merged["days_to_target"] == merged["days_to_target_hand"]).all()
    np.testing.assert_allclose(merged["dose_intensity_mean"], merged["intensity"], rtol=1e-5)
    np.testing.assert_allclose(
        merged["risk_tls_c1_mean"], [tls_risk(d) for d in merged["d1"]], rtol=1e-5
    )  # candidates.csv keeps 6 significant digits
    assert set(got["p_exceed_tls_c1"]) == {0.0, 1.0}  # identical draws: certain either way
    np.testing.assert_allclose(got["max_excess"], got["p_exceed_tls_c1"] - 0.25)  # EWOC 0.25
    # the best's run folder is a `lenasim run` folder, and rerunning its scenario.yaml
    # reproduces its draws exactly (the search's random numbers are the run's)
    folder = out / "top" / f"01-{top['id']}"
    assert {"draws.nc", "per_cycle.csv", "manifest.json", "scenario.yaml"} <= {
        p.name for p in folder.iterdir()}  # fmt: skip
    from lenasim.outputs.tables.verify import verify_run_folder

    assert "scenario.yaml" in verify_run_folder(folder)["files"]  # compare can check it all
    rerun = Namespace(configs=[str(folder / "scenario.yaml")], overwrite=False, results="rerun",
                      patients=None, draws=None, no_plots=True, quiet=True)  # fmt: skip
    run_command.cmd_run(rerun)
    a = xr.load_dataset(folder / "draws.nc", engine="h5netcdf")
    b = xr.load_dataset(Path("rerun") / f"known-{top['id']}" / "draws.nc", engine="h5netcdf")
    xr.testing.assert_identical(a, b)


def test_exact_risks_in_memory(known_workdir):
    """The rows before rounding: cycle-1 TLS risk equals the formula to 1e-12."""
    from lenasim.search.config import SearchConfig
    from lenasim.search.evaluate import Cohort
    from lenasim.search.execute import evaluate_in_process
    from lenasim.search.space import enumerate_space
    from lenasim.simulation.streams import select_draws

    cfg = SearchConfig.model_validate(known_config())
    post = load_posterior(known_workdir / "models" / "default.nc")
    idx = select_draws(post.draws.n_draws, 4, cfg.seed)
    cands = list(enumerate_space(cfg).candidates)
    rows = evaluate_in_process(cfg, cands, Cohort(post.draws.take(idx), idx), threads=1)
    for cand, row in zip(cands, rows, strict=True):
        on = cand.regimen.expand().daily_doses()[:DAYS_ON]
        assert row["risk_tls_c1_mean"] == pytest.approx(tls_risk(on.mean()), abs=1e-12)
        assert row["share_stopped_mean"] == 0.0  # the rules never stop anyone
    # the risk columns are what `lenasim run` prints for the same schedule (compact table)
    from lenasim.outputs.tables.summaries import compact_table
    from lenasim.search.evaluate import simulate_candidate

    table = compact_table(simulate_candidate(cfg, cands[3], Cohort(post.draws.take(idx), idx)))
    for event in table.index:
        for label, col in (("c1", "cycle 1"), ("cum", f"cumulative ({CYCLES} cycles)")):
            m, lo, hi = table.loc[event, col][:3]
            got = [rows[3][f"{event}_{label}_{s}"] for s in ("mean", "q05", "q95")]
            np.testing.assert_allclose(got, [m, lo, hi], rtol=1e-12, atol=1e-15)


def test_nothing_feasible_says_so_and_shows_the_closest(known_workdir):
    cfg = write_config(known_workdir / "none.yaml", known_config(limit_dose=1.0))
    cmd_search(search_args(cfg))
    out = known_workdir / "results" / "search-known"
    got = pd.read_csv(out / "candidates.csv", na_values=["none", "not reached"])
    assert not got["feasible"].any()
    report = (out / "report.md").read_text()
    assert "**No schedule meets every limit.**" in report
    assert "closest to the limits" in report
    # all exceed with certainty; the closest is the lowest cycle-1 dose: 2.5 mg with
    # monthly steps (d1 = 2.5 mg), worked out by hand
    hand = hand_expectations()
    lowest = hand.loc[hand["d1"].idxmin()]
    assert (lowest["start_mg"], lowest["every_days"]) == (2.5, 28)
    assert (got.iloc[0]["start_mg"], got.iloc[0]["unit"]) == (2.5, "cycles")
    assert got.iloc[0]["id"] in report


def test_results_folder_layout_and_manifest(known_search):
    # the known search with plots (pareto.png is checked) and the top 2 written; the run
    # folders' own figures, which no assertion reads, are left out (they were half of
    # this test's CPU); the search is test_known_optimum_is_found's (it was run twice)
    out = known_search
    names = {p.name for p in out.iterdir()}
    assert names == {"candidates.csv", "references.csv", "comparison.csv", "pareto.png",
                     "report.md", "manifest.json", "top", "references"}  # fmt: skip
    assert sorted(p.name for p in (out / "top").iterdir())[0].startswith("01-")
    assert len(list((out / "top").iterdir())) == 2
    assert (out / "references" / "slow_escalation" / "draws.nc").is_file()
    m = json.loads((out / "manifest.json").read_text())
    assert m["space"]["candidates"] == 21 and m["seed"] == 3
    assert set(m["hashes"]) == {"config", "evidence", "posterior", "posterior_index"}
    comp = pd.read_csv(out / "comparison.csv")
    assert set(comp["reference"]) == {"slow_escalation"} and set(comp["rank"]) == {1, 2}
    # days to target against the reference (56 days): the best gets there 28 days sooner
    d = comp[(comp["rank"] == 1) & (comp["quantity"] == "days_to_target")].iloc[0]
    assert d["diff_mean"] == -28 and d["p_better"] == 1.0
    report = (out / "report.md").read_text()
    assert "## Paired comparison with the reference" in report
    assert (out / "pareto.png").stat().st_size > 10_000
    # issue 22: the caveat opens the report; each verdict carries its MCSE; each top
    # schedule shows where each risk peaks; the Pareto plot's y (the critical quantile) is
    # within the limit exactly for the schedules that meet it
    assert report.splitlines()[2].startswith("> **Caveat:**")
    assert "± " in report and "risk peaks in cycle" in report
    got = pd.read_csv(out / "candidates.csv", na_values=["none", "not reached"])
    assert (got["p_exceed_tls_c1_mcse"] >= 0).all() and "undecided" in got
    cut = tls_risk(D_LIMIT)
    clear = (got["risk_tls_c1_qcrit"] - cut).abs() > 1e-5 * cut  # CSV: 6 significant digits
    below = got["risk_tls_c1_qcrit"] <= cut
    assert clear.sum() > 10 and (below == (got["p_exceed_tls_c1"] <= 0.25))[clear].all()
    assert {"tls_peak_cycle", "flare_peak_cycle"} <= set(got.columns)
    # no empty cell: what does not apply to a schedule says so (issue 22 item 4)
    for name in ("candidates.csv", "references.csv"):
        raw = pd.read_csv(out / name, keep_default_na=False, dtype=str)
        assert not (raw == "").any().any(), name
        assert not raw.isin(["nan", "NaN"]).any().any(), name


def one_schedule_config(**extra) -> dict:
    """known_config with a space of one schedule (20 mg throughout), for the tests of what
    the command does around the search, not of what it finds (21 cost ~0.3 s more each)."""
    cfg = known_config(**extra)
    cfg["space"] = cfg["space"] | {"start_mg": [TARGET]}
    return cfg


def test_existing_results_refused_and_a_failed_write_leaves_nothing(known_workdir, monkeypatch):
    cfg = write_config(known_workdir / "known.yaml", one_schedule_config(top=0))
    cmd_search(search_args(cfg))
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        cmd_search(search_args(cfg))
    import lenasim.search.results as results

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(results, "search_report", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        cmd_search(search_args(cfg, overwrite=True))
    # the earlier results are intact and no temporary folder is left
    assert (known_workdir / "results" / "search-known" / "candidates.csv").is_file()
    assert [p.name for p in (known_workdir / "results").iterdir()] == ["search-known"]


def test_time_budget_refused_unless_yes(known_workdir):
    cfg = write_config(known_workdir / "slow.yaml", one_schedule_config(time_budget_minutes=1e-6))
    with pytest.raises(LenasimError, match=r"slow.yaml: time_budget_minutes: .* pass --yes"):
        cmd_search(search_args(cfg))
    assert not (known_workdir / "results" / "search-known").exists()
    assert cmd_search(search_args(cfg, yes=True)) == 0


def test_empty_space_refused_before_loading_the_posterior(known_workdir):
    bad = known_config()
    bad["space"] |= {"start_mg": [25], "target_mg": [20]}
    cfg = write_config(known_workdir / "empty.yaml", bad)
    (known_workdir / "models" / "default.nc").unlink()  # would fail later, if reached
    with pytest.raises(ConfigError, match="empty.yaml: space: the search space is empty"):
        cmd_search(search_args(cfg))


@pytest.mark.slow  # end to end: a search in a fresh interpreter (issue 22.12)
def test_search_imports_neither_pymc_nor_pytensor(known_workdir):
    cfg = write_config(known_workdir / "known.yaml", known_config(top=1))
    code = f"from lenasim.cli import main; assert main(['search', {cfg!r}, '--quiet']) == 0"
    assert_leaves_unimported(code, ("pymc", "pytensor"), cwd=known_workdir)


def test_objectives_on_a_hand_made_dataset():
    """Two draws, three cycles of 28, 28 and 35 days; K = 2 for the objectives."""
    from lenasim.search.evaluate import objective_draws

    dims = ("draw", "cycle")
    ds = xr.Dataset(
        {
            # mg/day per patient who starts the cycle; NaN where nobody starts it
            "dose_intensity": (dims, [[10.0, 20.0, 20.0], [10.0, np.nan, np.nan]]),
            "share_on": (dims, [[1.0, 0.5, 0.5], [1.0, 0.0, 0.0]]),
            "share_at_target": (dims, [[0.0, 0.8, 1.0], [0.0, np.nan, np.nan]]),
            "share_stopped": (dims, [[0.5, 0.5, 0.6], [1.0, 1.0, 1.0]]),
        },
        coords={"draw": [0, 1], "cycle": [1, 2, 3]},
    )
    got = objective_draws(ds, 2, np.array([28, 28, 35]))
    # draw 0: (10 * 28 + 20 * 0.5 * 28) / 56 = 10; draw 1: everyone stopped after cycle 1
    np.testing.assert_allclose(got["dose_intensity"], [10.0, 5.0])
    np.testing.assert_allclose(got["share_at_target"], [0.4, 0.0])  # 0.8 of the half on
    np.testing.assert_allclose(got["share_stopped"], [0.6, 1.0])  # by the last cycle
    got3 = objective_draws(ds, 3, np.array([28, 28, 35]))
    np.testing.assert_allclose(got3["dose_intensity"][0], (280 + 280 + 350) / 91)


def test_row_risks_are_the_run_summary_on_a_spread_posterior():
    """Cycle-1 and cumulative risks in a row are `lenasim run`'s compact table (draws differ)."""
    from lenasim.outputs.tables.summaries import compact_table
    from lenasim.search.config import SearchConfig
    from lenasim.search.evaluate import Cohort, candidate_row, simulate_candidate
    from lenasim.search.space import enumerate_space

    cfg = SearchConfig.model_validate(known_config() | {"population": {
        "patients": 50, "setting": "relapsed"}})  # fmt: skip
    cand = enumerate_space(cfg).candidates[2]
    draws = make_draws(40, seed=2)
    ds = simulate_candidate(cfg, cand, Cohort(draws, np.arange(40)))
    row, table = candidate_row(cfg, cand, ds), compact_table(ds)
    assert table.loc["tls", "cycle 1"][2] > table.loc["tls", "cycle 1"][1]  # an interval
    for event in table.index:
        for label, col in (("c1", "cycle 1"), ("cum", f"cumulative ({CYCLES} cycles)")):
            got = [row[f"{event}_{label}_{s}"] for s in ("mean", "q05", "q95")]
            np.testing.assert_allclose(got, table.loc[event, col][:3], rtol=1e-12, atol=1e-15)


def test_no_blanks_fills_missing_numbers_and_empty_text_only():
    """candidates.csv's cells: a NaN (any dtype) becomes "none" ("not reached" for
    days_to_target), an empty string too; numbers of a column with a blank are written
    as the CSV writes them; columns with no blank, numeric or not, are left as they are."""
    from lenasim.search.results import FLOAT_FORMAT, no_blanks

    df = pd.DataFrame({
        "days_to_target": [28.0, np.nan], "step_mg": [np.nan, 2.5], "unit": ["", "weeks"],
        "n": [1, 2], "ok": [True, False], "text": ["a", "b"], "x": [0.125, 1e-7],
        "nullable": pd.array([1, None], dtype="Int64"),
    })  # fmt: skip
    out = no_blanks(df)
    assert out["days_to_target"].tolist() == [FLOAT_FORMAT % 28.0, "not reached"]
    assert out["step_mg"].tolist() == ["none", FLOAT_FORMAT % 2.5]
    assert out["unit"].tolist() == ["none", "weeks"]
    assert out["nullable"].tolist() == [1, "none"]
    for col in ("n", "ok", "text", "x"):
        pd.testing.assert_series_equal(out[col], df[col])
    assert df["unit"].tolist() == ["", "weeks"]  # the input is not changed
