"""Tipping points of verdicts (issue 23 item 6): reweighting the posterior draws to a
dose-slope prior whose median is moved by a factor k (lenasim.outputs.judgements.tipping).

The oracle is a conjugate normal model where the moved prior's posterior is known in
closed form: log(beta) ~ N(mu, s) a priori, one observation y ~ N(log beta, tau), so the
posterior of log beta is N(m, v) with v = 1 / (1/s^2 + 1/tau^2) and
m = v (mu / s^2 + y / tau^2). Moving the prior median by k moves mu by log k and the
posterior mean by v log k / s^2, its variance unchanged. A "risk" that exceeds its limit
exactly when log beta > c then has P(exceed | k) = 1 - Phi((c - m - v log k / s^2) / sqrt v).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lenasim.outputs.judgements.reweighting import (
    MIN_ESS,
    TIPPING_COLUMNS,
    Shift,
    ess,
    find_tipping,
    find_tippings,
)

MU, S, TAU, Y = math.log(0.5), 0.75, 0.5, math.log(0.5) + 0.2  # the shipped dose-slope prior
V = 1 / (1 / S**2 + 1 / TAU**2)
M = V * (MU / S**2 + Y / TAU**2)
N = 20_000


def posterior_draws(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(M, math.sqrt(V), N)


def shift_of(theta: np.ndarray) -> Shift:
    return Shift(np.exp(theta)[:, None], np.array([MU]), np.array([S]), np.array([True]))


def cutoff_for(p1: float) -> float:
    """c such that P(log beta > c) = p1 under the original prior's posterior."""
    return M + math.sqrt(V) * stats.norm.ppf(1 - p1)


def exact_log_k(c: float, p: float) -> float:
    """log k at which P(exceed | k) = p (the closed form of the module docstring)."""
    m_k = c - math.sqrt(V) * stats.norm.ppf(1 - p)
    return (m_k - M) * S**2 / V


def tolerance(p: float, ess_at: float) -> float:
    """4 Monte Carlo SEs of the estimated log k: the SE of a reweighted probability,
    sqrt(p(1 - p) / ESS), over the slope dP/dlog k = phi(z) sqrt(v) / s^2; plus the
    interpolation error of the grid (steps of ~0.01 in log k)."""
    z = stats.norm.ppf(1 - p)
    slope = stats.norm.pdf(z) * math.sqrt(V) / S**2
    return 4 * math.sqrt(p * (1 - p) / ess_at) / slope + 0.01


@pytest.mark.parametrize("p1", [0.15, 0.40])
def test_tipping_factor_recovered_within_monte_carlo_error(p1):
    theta = posterior_draws()
    c = cutoff_for(p1)
    t = find_tipping((theta > c).astype(float), shift_of(theta), 0.25)
    want = exact_log_k(c, 0.25)
    if p1 < 0.25:  # acceptable now: a stronger dose effect raises the risk past the limit
        assert t.high_kind == "flip" and t.low_kind != "flip"
        got, e = math.log(t.high), t.ess_high
    else:  # not acceptable now: a weaker dose effect would make it acceptable
        assert t.low_kind == "flip" and t.high_kind != "flip"
        got, e = math.log(t.low), t.ess_low
    assert abs(got - want) < tolerance(0.25, e), (math.exp(got), math.exp(want))


def test_fragile_when_the_flip_lies_within_the_priors_50_percent_interval():
    theta = posterior_draws()
    lo, hi = math.exp(-0.6745 * S), math.exp(0.6745 * S)  # 0.60x to 1.66x
    near = cutoff_for(0.20)  # flips at k = exp(exact_log_k(near, 0.25)) ~ 1.2: inside
    far = cutoff_for(0.02)  # flips at ~ 2.9: outside
    assert 1 < math.exp(exact_log_k(near, 0.25)) < hi < math.exp(exact_log_k(far, 0.25))
    t_near = find_tipping((theta > near).astype(float), shift_of(theta), 0.25)
    t_far = find_tipping((theta > far).astype(float), shift_of(theta), 0.25)
    assert t_near.interval == pytest.approx((lo, hi), rel=1e-3)
    assert t_near.fragile and t_near.words().startswith("fragile: flips within the prior's own")
    assert t_far.high_kind == "flip" and not t_far.fragile
    assert "holds unless the dose effect is more than" in t_far.words()
    assert "fragile" not in t_far.words()


def test_ess_fallback_beyond_what_reweighting_can_tell():
    """A verdict far from its threshold: the search runs out of effective draws before any
    flip, and says so where the ESS falls below the minimum. For draws from the prior
    itself (a posterior the data did not move), the ESS of these weights is
    N exp(-(log k)^2 / s^2), so that happens at log k = +-s sqrt(log(N / MIN_ESS))."""
    theta = np.random.default_rng(4).normal(MU, S, N)
    t = find_tipping((theta > MU + 4 * S).astype(float), shift_of(theta), 0.25)
    assert t.low_kind == t.high_kind == "beyond"
    # The ESS computed from the weights alone is optimistic there (the largest weights
    # were never drawn): with it alone the search stopped at log k = 2.3, not 1.7, and
    # with a Pareto k-hat check beside it at 1.96. It may stop a little earlier (where
    # the draws' own weights or their Pareto tail say so: 1.63 on the low side here),
    # never later.
    reach = S * math.sqrt(math.log(N / MIN_ESS))
    for end in (math.log(t.high), -math.log(t.low)):
        assert 0.9 * reach <= end <= reach + 0.03, (end, reach)
    assert t.ess_high >= MIN_ESS and t.ess_low >= MIN_ESS
    assert "beyond what reweighting can tell" in t.words()
    assert not t.fragile


def test_no_flip_in_the_searched_range_is_said():
    theta = posterior_draws()
    t = find_tipping(np.zeros(N), shift_of(theta), 0.25, k_range=(0.5, 2.0))
    assert (t.low, t.low_kind, t.high, t.high_kind) == (0.5, "none", 2.0, "none")
    assert t.words() == "holds for any dose effect from 0.5x to 2x its prior median"


def test_ess_of_equal_and_of_one_dominant_weight():
    assert ess(np.zeros(50)) == pytest.approx(50)
    assert ess(np.array([0.0, -50.0, -50.0])) == pytest.approx(1.0)


def test_weights_are_the_ratio_of_the_moved_prior_to_the_original():
    """The log weight of a draw is log N(log beta; mu + log k, s) - log N(log beta; mu, s)
    (the Jacobian of log beta cancels), and for a normal prior N(beta; k mu, s) - N(beta;
    mu, s)."""
    beta = np.array([[0.2, 1.5], [0.9, 0.3]])
    sh = Shift(beta, np.array([MU, 1.0]), np.array([S, 0.5]), np.array([True, False]))
    k = 1.7
    want = (stats.norm.logpdf(np.log(beta[:, 0]), MU + math.log(k), S)
            - stats.norm.logpdf(np.log(beta[:, 0]), MU, S)
            + stats.norm.logpdf(beta[:, 1], k * 1.0, 0.5)
            - stats.norm.logpdf(beta[:, 1], 1.0, 0.5))  # fmt: skip
    np.testing.assert_allclose(sh.log_weights(np.array([k]))[0], want)


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped_runs(tmp_path_factory):
    """slow_escalation and standard_25mg on the shipped posterior (100 patients x 300
    draws) and their paired comparison (the one `run A B` writes, no second compare:
    ~0.5 s of CPU; issue 22.12). The tests read tables and report text, no figure:
    the runs are made without plots and their report.html written by run_report with the
    figures left out (drawing them was about half of this fixture's CPU)."""
    from lenasim.cli import main
    from lenasim.outputs.report import run as run_page

    out = tmp_path_factory.mktemp("tipping_runs")
    argv = ["run", str(REPO / "configs/slow_escalation.yaml"),
            str(REPO / "configs/standard_25mg.yaml"), "--patients", "100", "--draws", "300",
            "--results", str(out), "--quiet", "--no-plots"]  # fmt: skip
    assert main(argv) == 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_page, "later_images", lambda *a, **k: [])  # no <img>
        mp.setattr(run_page, "fill_images", lambda html, *a, **k: html)
        for name in ("slow_escalation", "standard_25mg"):
            run_page.run_report(out / name)
    return out


def test_run_limits_carry_their_tipping_point(shipped_runs):
    """limits.csv has the tipping columns, every cell filled, and report.html shows the
    words beside the verdict."""
    run = shipped_runs / "standard_25mg"
    df = pd.read_csv(run / "limits.csv", keep_default_na=False)
    assert list(df.columns[-len(TIPPING_COLUMNS) :]) == list(TIPPING_COLUMNS)
    assert (df[list(TIPPING_COLUMNS)] != "").all().all()
    assert all(w.startswith(("holds", "fragile")) for w in df["tipping"]), df["tipping"].tolist()
    html = (run / "report.html").read_text()
    assert "Tipping point" in html
    for words in df["tipping"]:
        assert words.replace("'", "&#39;") in html


def test_comparisons_carry_their_tipping_point(shipped_runs):
    """comparison.csv and the compare limits.csv: a tipping point for every paired row,
    no blank cell; the report shows them."""
    cmp = shipped_runs / "compare-slow_escalation-vs-standard_25mg"  # written by `run A B`
    for name in ("comparison.csv", "limits.csv"):
        df = pd.read_csv(cmp / name, keep_default_na=False)
        assert (df[list(TIPPING_COLUMNS)] != "").all().all(), name
        words = df["tipping"][~df["identical"].astype(str).eq("True")]
        assert words.str.startswith(("the ranking holds", "fragile")).all(), words.tolist()
    assert "Tipping point of P(safer)" in (cmp / "report.html").read_text()


def test_finished_runs_on_a_non_monotone_posterior_say_why_there_is_none(finished_runs):
    """The tests' synthetic posterior has negative dose slopes, which a log-normal prior
    cannot have: the columns say so rather than stay blank."""
    df = pd.read_csv(finished_runs / "slow_escalation" / "limits.csv", keep_default_na=False)
    assert df["tipping"].str.startswith("not computed: a dose slope").all()
    assert (df[list(TIPPING_COLUMNS)] != "").all().all()


def test_limit_tipping_uses_the_limits_risk_and_the_events_dose_slope():
    """On a synthetic run dataset whose cycle-1 TLS risk rises with the TLS dose slope,
    limit_tipping finds the flip that find_tipping finds on the same hits."""
    import xarray as xr

    from builders import make_draws
    from lenasim.core.limits import RiskLimits
    from lenasim.model.spec import load_spec
    from lenasim.outputs.judgements.tipping import limit_tipping, shift_for

    spec = load_spec(Path(__file__).resolve().parents[2] / "models" / "default.yaml")
    draws = make_draws(400, seed=5, coef={"log_dose": 0.0}, spread=0.0)
    theta = np.random.default_rng(1).normal(MU, S, 400)
    draws.coefs["tls"]["log_dose"] = np.exp(theta)
    draws.coefs["flare"]["log_dose"] = np.exp(theta[::-1])  # another event's: not used
    risk = 0.01 * np.exp(theta - MU)  # the risk rises with the TLS dose slope
    events = ["flare", "flare_grade3plus", "tls", "neutropenia"]
    pc = np.zeros((400, 4, 1))
    pc[:, 2, 0] = risk
    ds = xr.Dataset({"per_cycle": (("draw", "event", "cycle"), pc),
                     "cumulative": (("draw", "event", "cycle"), pc)},
                    coords={"draw": np.arange(400), "event": events, "cycle": [1]})  # fmt: skip
    limits = RiskLimits.model_validate({"events": {"tls": [{"cycle": 1, "max": 0.02}]}})
    got = limit_tipping(ds, limits, draws, spec)
    want = find_tipping(risk > 0.02, shift_for("tls", draws, spec), 0.25, min_ess=MIN_ESS)
    assert got.loc[0, "tipping_high"] == pytest.approx(round(want.high, 4))
    assert got.loc[0, "tipping_high_kind"] == want.high_kind == "flip"
    assert got.loc[0, "tipping_low_kind"] != "flip"


def test_unpaired_or_lost_posterior_says_why(finished_runs):
    """No tipping point without paired draws or without the run's posterior: the columns
    say why instead of staying blank."""
    from lenasim.outputs.judgements.tipping import comparison_rows_tipping, run_posterior
    from lenasim.outputs.tables.runs import load_run

    ref = load_run(finished_runs / "slow_escalation")
    other = load_run(finished_runs / "standard_25mg")
    rows = pd.DataFrame({"quantity": ["per_cycle"], "event": ["tls"], "cycle": [1],
                         "identical": [False]})  # fmt: skip
    got = comparison_rows_tipping(rows, ref, other, paired=False)
    assert (
        got.loc[0, "tipping"] == "not computed: the runs are not paired on the same posterior draws"
    )
    lost = dict(ref.manifest, posterior={"path": str(finished_runs / "gone.nc")})
    with pytest.raises(LookupError, match="gone.nc of the run cannot be read"):
        run_posterior(lost, ref.ds)
    changed = dict(ref.manifest, hashes={**ref.manifest["hashes"], "posterior": "0" * 64})
    with pytest.raises(LookupError, match="changed since the run"):
        run_posterior(changed, ref.ds)


def test_reference_posterior_is_read_once_per_run(finished_runs, monkeypatch):
    """A comparison asks for the reference's posterior per pair and per table: it is read
    once per run, and a lost posterior still says why each time."""
    from lenasim.outputs.judgements import tipping
    from lenasim.outputs.tables.runs import load_run

    ref = load_run(finished_runs / "slow_escalation")
    calls = []
    real = tipping.run_posterior
    monkeypatch.setattr(tipping, "run_posterior", lambda m, ds: calls.append(1) or real(m, ds))

    def outcome():
        try:
            return tipping.ref_posterior(ref)
        except LookupError as err:
            return str(err)

    first, again = outcome(), outcome()
    assert len(calls) == 1
    assert first == again if isinstance(first, str) else first[1] is again[1]
    ref.manifest = dict(ref.manifest, posterior={"path": str(finished_runs / "gone.nc")})
    for _ in range(2):
        with pytest.raises(LookupError, match="gone.nc of the run cannot be read"):
            tipping.ref_posterior(ref)
    assert len(calls) == 2


def side_by_loop(ks, p, e, khat, threshold: float, min_ess: float):
    """reweighting._side as first written: the walk point by point (what follows the
    stop, the k-hat cut and the interpolation, is the module's own)."""
    from lenasim.outputs.judgements.reweighting import _side_end

    above0 = bool(p[0] > threshold)
    end, kind = ks.size - 1, "none"
    for i in range(1, ks.size):
        if e[i] < min_ess:
            end, kind = i - 1, "beyond"
            break
        if (p[i] > threshold) != above0:
            end, kind = i, "flip"
            break
    return _side_end(ks, p, e, khat, threshold, end, kind)


def test_the_walk_stops_where_the_point_by_point_walk_stops():
    """reweighting._side (vectorised) gives what the point-by-point walk gave, to the bit:
    the first point whose ESS is too low (before a flip at the same point) or whose side
    of the threshold changed, on random walks with ties at the threshold, NaN, ESS dips
    and k-hats that end a side early."""
    from lenasim.outputs.judgements import reweighting

    rng = np.random.default_rng(11)
    ks = np.exp(np.linspace(0, math.log(10), 25))
    seen = set()
    for _ in range(400):
        start = rng.choice([0.2, 0.5, 0.8])  # far below, at, far above the threshold
        p = np.round(start + np.cumsum(rng.normal(0, 0.03, ks.size)), 2)
        p[rng.random(ks.size) < 0.05] = np.nan
        e = np.maximum(400 - np.cumsum(rng.exponential(rng.choice([1, 20]), ks.size)), 0)
        khat = np.cumsum(rng.exponential(rng.choice([0.01, 0.05]), ks.size)).__getitem__
        want = side_by_loop(ks, p, e, khat, 0.5, 100)
        assert repr(reweighting._side(ks, p, e, khat, 0.5, 100)) == repr(want)
        seen.add(want[1])
    assert seen == {"beyond", "flip", "none"}


def test_a_shift_computes_its_grid_once_and_the_same_tippings():
    """A Shift's reweighting grid is computed once (a comparison asks it per quantity) and
    gives the tippings a fresh Shift gives."""
    theta = posterior_draws()[:2000]
    hits = np.stack([theta > M, theta > M + 0.3 * math.sqrt(V)], axis=1).astype(float)
    sh = shift_of(theta)
    first = [t.row() for t in find_tippings(hits, sh, 0.5)]
    grids = dict(sh._grids)
    again = [t.row() for t in find_tippings(hits, sh, 0.5)]
    assert first == again and len(grids) == 2
    assert all(sh._grids[k] is grids[k] for k in grids)  # not recomputed
    fresh = [t.row() for t in find_tippings(hits, shift_of(theta), 0.5)]
    assert fresh == first
