"""report.md of a design: its summary says what operating_characteristics.csv says, it
names no raw identifier outside code spans, and it calls a stop for toxicity a false stop
where every candidate is truly within the limits (:mod:`lenasim.design.report`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lenasim.cli import main
from lenasim.design.config import load_design
from lenasim.design.report import design_report, false_stops
from lenasim.design.simulate import DesignResult
from lenasim.design.trial import STOP_REASONS

ROOT = Path(__file__).resolve().parents[2]


def _summary_rows(report: str) -> dict[str, dict[str, str]]:
    """The summary table, truth -> {column: cell}."""
    part = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in part.splitlines() if ln.startswith("| ")]
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    out = {}
    for ln in rows[2:]:  # after the header and its rule
        cells = [c.strip() for c in ln.strip("|").split("|")]
        out[cells[0].strip("`")] = dict(zip(head, cells, strict=True))
    return out


def _percent(cell: str, n: int) -> tuple[float, float]:
    """(value, MCSE) of a proportion cell: "12.3% (± 1.0)", "0 of n trials (...)" or
    "n of n trials"."""
    m = re.fullmatch(r"(\d+) of ([\d,]+) trials.*", cell)
    if m:
        assert int(m[2].replace(",", "")) == n
        k = int(m[1])
        return k / n, np.sqrt(k * (n - k)) / n**1.5
    m = re.fullmatch(r"(?:`[^`]+`: )?([\d.]+)% \(± ([\d.]+)\)", cell)
    assert m, cell
    return float(m[1]) / 100, float(m[2]) / 100


@pytest.fixture(scope="module")
def small_design(tmp_path_factory):
    """A small design run on the synthetic posterior: (folder, report text)."""
    from conftest import make_posterior_workdir

    tmp = tmp_path_factory.mktemp("design_report")
    with pytest.MonkeyPatch.context() as mp:
        make_posterior_workdir(tmp, mp)
        mp.chdir(tmp)
        code = main(["design", "configs/design_untreated.yaml", "--trials", "15", "--draws",
                     "40", "--results", str(tmp / "r"), "--quiet", "--no-plots"])  # fmt: skip
    assert code == 0
    out = tmp / "r" / "design-untreated"
    return out, (out / "report.md").read_text()


def test_the_summary_comes_first_with_the_caveat(small_design):
    _, report = small_design
    heads = re.findall(r"^## (.+)$", report, flags=re.M)
    assert heads[0] == "Summary"
    summary = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "**Caveat:** the truths come from a posterior whose schedule differences rest on " \
           "the dose priors" in summary  # fmt: skip
    assert "Stops for toxicity:" in summary
    for truth in _summary_rows(report):  # one sentence per truth on its stops
        assert len(re.findall(rf"^- Under `{re.escape(truth)}` ", summary, flags=re.M)) == 1


def test_the_summary_says_what_the_csv_says(small_design):
    out, report = small_design
    oc = pd.read_csv(out / "operating_characteristics.csv").fillna({"candidate": "", "what": ""})
    n = 15
    rows = _summary_rows(report)
    assert set(rows) == set(oc.truth)

    def csv(truth, quantity, candidate="", what=""):
        r = oc[(oc.truth == truth) & (oc.quantity == quantity) & (oc.candidate == candidate)
               & (oc.what == what)]  # fmt: skip
        assert len(r) == 1, (truth, quantity, candidate, what)
        return float(r.value.iloc[0]), float(r.mcse.iloc[0])

    limits = oc[oc.quantity == "p_selected_over_limit"].what.unique()
    for truth, row in rows.items():
        # Rounded to 0.1 point in the report: half a point of rounding, in proportions.
        v, se = _percent(row["P(stop for toxicity)"], n)
        assert v == pytest.approx(csv(truth, "p_stop", what="too_toxic")[0], abs=5e-4)
        assert se == pytest.approx(csv(truth, "p_stop", what="too_toxic")[1], abs=5e-4)
        best = row["most often selected"]
        sel = oc[(oc.truth == truth) & (oc.quantity == "p_select") & (oc.candidate != "none")]
        if best == "none selected":
            assert (sel.value == 0).all()
        else:
            name = re.match(r"`([^`]+)`", best)[1]
            assert sel.set_index("candidate").value[name] == sel.value.max()
            assert _percent(best, n)[0] == pytest.approx(sel.value.max(), abs=5e-4)
        cols = [c for c in row if c.startswith("P(the selected exceeds")]
        assert len(cols) == len(limits)
        for col in cols:
            # The column names the limit's event in words; the CSV names the whole limit.
            lim = [w for w in limits if w.lower().startswith(col.split("the ", 2)[2][:-7])]
            assert len(lim) == 1, col
            v, _ = _percent(row[col], n)
            assert v == pytest.approx(csv(truth, "p_selected_over_limit", what=lim[0])[0],
                                      abs=5e-4)  # fmt: skip
        m = re.fullmatch(r"([\d.]+)(?: \(± [\d.]+\)| in every trial)", row["mean patients"])
        assert float(m[1]) == pytest.approx(csv(truth, "patients")[0], abs=0.05)


_RAW = re.compile(
    r"\b(p_select|p_selected_over_limit|patients_with_event|patients_over_limit|"
    r"patients_backfill|p_stop|duration_days|dose_intensity|low_ess_decisions|width_prior|"
    r"width_after|flare_grade3plus|flare_any|neutropenia_grade34|too_toxic|enough_patients|max_patients|design_end|tls|"
    r"new_trial|tls_odds_x2\.7|p10|p50|p90|d21_2\.5_ladder2w|d21_5_to10|cont2\.5_slow|"
    r"cont2\.5_ladder|cont5_to10|cont10)\b"
)


def test_no_raw_identifier_outside_code_spans(small_design):
    _, report = small_design
    prose = re.sub(r"`[^`]*`", "", report)
    assert _RAW.findall(prose) == []
    assert _RAW.findall(report)  # the identifiers are there, in code spans
    assert "-0.0" not in report
    assert not re.search(r"\(± 0\.0*\)", report)  # an MCSE of 0 says nothing: counts instead
    assert "nan" not in report.lower().split()


def _result(cfg, stops: dict[str, list[str]], risks: dict[str, np.ndarray]) -> DesignResult:
    """A hand-made result: the stops and true risks given, P(select) and P(stop) from them."""
    names = [c.name for c in cfg.candidates]
    rows, tabs = [], []
    for truth, st in stops.items():
        st = np.array(st)
        sel = np.where(st == "too_toxic", "none", names[0])
        for c in [*names, "none"]:
            p = float(np.mean(sel == c))
            rows.append((truth, "p_select", c, "", p, np.sqrt(p * (1 - p) / st.size)))
        for reason in STOP_REASONS:
            p = float(np.mean(st == reason))
            rows.append((truth, "p_stop", "", reason, p, np.sqrt(p * (1 - p) / st.size)))
        tabs.append(pd.DataFrame({"truth": truth, "trial": np.arange(st.size), "stop": st}))
    oc = pd.DataFrame(rows, columns=["truth", "quantity", "candidate", "what", "value", "mcse"])
    dec = pd.DataFrame(columns=["event", "cohort_1", "then", "cohort_2", "next"])
    return DesignResult(oc, pd.concat(tabs, ignore_index=True), dec, {}, {}, risks)


def test_a_stop_where_every_candidate_is_within_the_limits_is_a_false_stop():
    cfg = load_design(ROOT / "configs" / "design_untreated.yaml")
    n, n_j = 20, len(cfg.candidates)
    cfg = cfg.model_copy(update={"trials": n, "truths": cfg.truths[1:4]})
    lmax = np.array([lim.max for _, lim in cfg.limits.items()])
    low = np.broadcast_to(lmax / 2, (n, n_j, lmax.size)).copy()  # every candidate within
    high = low * 4  # every candidate over every limit
    stops = {"p10": ["too_toxic"] * 7 + ["max_patients"] * 13,
             "p50": ["too_toxic"] * 5 + ["enough_patients"] * 15,
             "p90": ["too_toxic"] * 20}  # fmt: skip
    report = design_report(cfg, _result(cfg, stops, {"p10": low, "p50": low, "p90": high}),
                           "synthetic")  # fmt: skip
    said = dict(re.findall(r"^- Under `(\w+)` (.+)$", report, flags=re.M))
    # 7 of 20 trials; MCSE sqrt(0.35 x 0.65 / 20) = 0.107
    expected = ("every candidate is truly within every limit, yet the trial stops for "
                "toxicity in 35.0% (± 10.7) of trials: each of these is a false stop.")  # fmt: skip
    assert said["p10"] == expected
    assert "25.0% (± 9.7)" in said["p50"] and "false stop" in said["p50"]
    assert "no candidate is truly within every limit" in said["p90"]
    assert "false" not in said["p90"]
    assert _summary_rows(report)["p10"]["truly within every limit"] == "all"
    assert _summary_rows(report)["p90"]["truly within every limit"] == "none"


def test_false_stops_count_only_stops_where_a_candidate_was_within():
    stops = np.array(["too_toxic", "too_toxic", "too_toxic", "max_patients"])
    within = np.array([[True, False], [False, True], [False, False], [True, True]])
    fs = false_stops(stops, within, start=0)
    assert fs["any"][0] == pytest.approx(2 / 4)  # trials 0 and 1 (not 2: none within)
    assert fs["start"][0] == pytest.approx(1 / 4)  # trial 0 only
    assert fs["any"][1] == pytest.approx(np.sqrt(0.5 * 0.5 / 4))
