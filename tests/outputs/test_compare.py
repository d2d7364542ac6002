"""compare: paired differences on common random numbers, unpaired fallback with a warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from builders import make_run_dataset
from builders import write_run as _write_run
from lenasim.commands.compare import cmd_compare
from lenasim.core.errors import LenasimError
from lenasim.core.vocabulary import DOSE_COLUMNS, OUTPUT_EVENTS
from lenasim.outputs.report.comparison import compare_runs

EVENTS = list(OUTPUT_EVENTS)
S, C = 40, 4


def _base_per_cycle(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.01, 0.4, size=(S, len(EVENTS), C))


def write_run(
    root: Path,
    name: str,
    per_cycle: np.ndarray,
    *,
    seed: int = 7,
    posterior_index: np.ndarray | None = None,
    manifest_extra: dict | None = None,
) -> Path:
    """A synthetic finished run with the layout `run` writes and the manifest fields
    the pairing reads."""
    ds = make_run_dataset(per_cycle, scenario=name, seed=seed, posterior_index=posterior_index)
    pidx = ds["posterior_index"].values
    manifest = {
        "name": name,
        "seed": seed,
        "n_patients": 100,
        "population_effect": "new_trial",
        "hashes": {"posterior": "abc", "posterior_index": str(hash(pidx.tobytes()))},
        "config": {"description": f"scenario {name}"},
    }
    return _write_run(root, ds, manifest | (manifest_extra or {}))


def test_paired_identical_cycle1_gives_exact_zero(tmp_path, capsys):
    base = _base_per_cycle()
    other = base.copy()
    other[:, :, 1:] *= 1.5  # the schedules differ from cycle 2 on
    a = write_run(tmp_path, "a", base)
    b = write_run(tmp_path, "b", other)
    df = compare_runs([a, b])
    assert "warning" not in capsys.readouterr().err
    assert df["paired"].all()
    c1 = df[(df["quantity"] == "per_cycle") & (df["cycle"] == 1)]
    assert len(c1) == len(EVENTS)
    assert (c1["diff_mean"] == 0).all() and (c1["diff_mcse"] == 0).all()
    assert (c1["diff_q05"] == 0).all() and (c1["diff_q95"] == 0).all()
    assert (c1["p_riskier"] == 0).all()
    np.testing.assert_allclose(c1["ratio_q50"], 1.0)
    # the cumulative at cycle 1 equals the per-cycle probability: also zero
    cu1 = df[(df["quantity"] == "cumulative") & (df["cycle"] == 1)]
    assert (cu1["diff_mean"] == 0).all()
    # later cycles: every draw riskier, paired difference equals the per-draw difference
    c2 = df[(df["quantity"] == "per_cycle") & (df["cycle"] == 2)].set_index("event")
    assert (c2["p_riskier"] == 1).all()
    np.testing.assert_allclose(c2.loc[EVENTS, "diff_mean"], (0.5 * base[:, :, 1]).mean(axis=0))
    sd = (0.5 * base[:, :, 1]).std(axis=0, ddof=1)
    np.testing.assert_allclose(c2.loc[EVENTS, "diff_mcse"], sd / np.sqrt(S))
    assert (df["quantity"] != "dose").all()  # dose differences: dose_differences.csv
    assert (df["n_draws"] == S).all()


def test_dose_differences_are_their_own_table(tmp_path):
    base = _base_per_cycle()
    a = write_run(tmp_path, "a", base)
    b = write_run(tmp_path, "b", base * 1.2)
    compare_runs([a, b], tmp_path / "cmp", quiet=True, plots=False)  # tables only
    dose = pd.read_csv(tmp_path / "cmp" / "dose_differences.csv")
    assert list(dict.fromkeys(dose["measure"])) == list(DOSE_COLUMNS)  # the engine's order
    assert {"p_higher", "p_higher_mcse", "n_draws"} <= set(dose.columns)


def test_draws_where_nobody_is_left_are_left_out_and_counted(tmp_path, capsys):
    """Issue 22 item 4: a draw in which every patient has stopped has no per-cycle risk
    from then on; compare computes each cell over the draws where both runs define it,
    says how many, and writes no NaN or blank cell anywhere."""
    base = _base_per_cycle()
    other = base * 1.3
    other[:5, :, 1:] = np.nan  # 5 draws: nobody left after cycle 1
    a = write_run(tmp_path, "a", base)
    b = write_run(tmp_path, "b", other)
    df = compare_runs([a, b], tmp_path / "cmp", plots=False)  # text checked, not figures
    c2 = df[(df["quantity"] == "per_cycle") & (df["cycle"] == 2)].set_index("event")
    assert (c2["n_draws"] == S - 5).all()
    d = other[5:, :, 1] - base[5:, :, 1]
    np.testing.assert_allclose(c2.loc[EVENTS, "diff_mean"], d.mean(axis=0))
    for name in ("comparison.csv", "limits.csv", "dose.csv", "dose_differences.csv"):
        table = pd.read_csv(tmp_path / "cmp" / name, keep_default_na=False)
        assert not (table.astype(str) == "").any().any(), name
        assert not table.astype(str).isin(["nan", "NaN"]).any().any(), name
    import re

    html = (tmp_path / "cmp" / "report.html").read_text()
    text = re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", html))
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    assert f"[{S - 5} of {S} draws]" in text  # the count, where cycle 2 is shown
    assert "in 5 of 40 posterior draws every virtual patient has stopped" in text


@pytest.mark.parametrize("change", ["seed", "posterior_index"])
def test_unpaired_runs_are_detected_and_warned(tmp_path, capsys, change):
    base = _base_per_cycle()
    a = write_run(tmp_path, "a", base)
    if change == "seed":
        b = write_run(tmp_path, "b", base, seed=8)
    else:
        b = write_run(tmp_path, "b", base, posterior_index=np.arange(S) + 100)
    df = compare_runs([a, b])
    err = capsys.readouterr().err
    assert "warning" in err and "unpaired" in err
    assert change in err  # says which field differs
    assert not df["paired"].any()
    # identical draws compared unpaired are no longer exactly zero per draw
    c1 = df[(df["quantity"] == "per_cycle") & (df["cycle"] == 1)]
    assert (c1["diff_mcse"] > 0).all()


def test_missing_manifest_field_is_unpaired(tmp_path, capsys):
    base = _base_per_cycle()
    a = write_run(tmp_path, "a", base)
    b = write_run(tmp_path, "b", base, manifest_extra={"hashes": {"posterior": "abc"}})
    df = compare_runs([a, b])
    assert "hashes.posterior_index is not recorded for b" in capsys.readouterr().err
    assert not df["paired"].any()


def test_unpaired_is_deterministic(tmp_path):
    base = _base_per_cycle()
    a = write_run(tmp_path, "a", base)
    b = write_run(tmp_path, "b", _base_per_cycle(1), seed=99)
    d1 = compare_runs([a, b], quiet=True)
    d2 = compare_runs([a, b], quiet=True)
    assert d1.equals(d2)


def test_missing_result_dir_or_draws_named(tmp_path):
    a = write_run(tmp_path, "a", _base_per_cycle())
    with pytest.raises(LenasimError, match="nope"):
        compare_runs([a, tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LenasimError, match=r"empty.*draws\.nc"):
        compare_runs([a, tmp_path / "empty"])


def test_writes_outputs_and_refuses_overwrite(tmp_path, capsys):
    base = _base_per_cycle()
    a = write_run(tmp_path, "a", base)
    b = write_run(tmp_path, "b", base * 1.2)
    out = tmp_path / "cmp"
    # No figures (~1 s of CPU): the PNGs a compare writes beside these files are checked
    # in test_report.py::test_compare_report_embeds_every_plot, which draws them anyway.
    compare_runs([a, b], out, plots=False)
    printed = capsys.readouterr().out
    assert "Grade 3-4 neutropenia" in printed and "P=" in printed
    for f in ("comparison.csv", "dose.csv", "report.html"):
        assert (out / f).is_file(), f
    before = (out / "comparison.csv").read_text()
    with pytest.raises(LenasimError, match="already exists"):
        compare_runs([a, b], out)
    assert (out / "comparison.csv").read_text() == before
    compare_runs([b, a], out, overwrite=True, plots=False)  # the tables are checked
    assert (out / "comparison.csv").read_text() != before
    # no temporary folders left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "cmp"]


def test_cmd_compare_default_out(tmp_path, monkeypatch):
    from lenasim.outputs.report import compare as compare_page
    from lenasim.outputs.report import comparison

    # where the command writes is checked, not the figures: none is drawn
    monkeypatch.setattr(comparison, "comparison_plots", lambda *a, **k: None)
    monkeypatch.setattr(compare_page, "images", lambda *a, **k: [])
    base = _base_per_cycle()
    a = write_run(tmp_path, "a", base)
    b = write_run(tmp_path, "b", base)

    class Args:
        results = [str(a), str(b)]
        out = None
        overwrite = False

    assert cmd_compare(Args()) == 0
    assert (tmp_path / "compare-a-vs-b" / "report.html").is_file()


def _cfg(setting="relapsed", cycle_days=28, limits=None, partners=()):
    cfg = {"population": {"setting": setting, "elderly_share": 0.0, "partners": list(partners),
                          "steroid_prophylaxis": False},
           "regimen": {"cycle_days": cycle_days}}  # fmt: skip
    if limits is not None:
        cfg["limits"] = limits
    return {"config": cfg}


def test_p_safer_per_limit_is_paired_and_says_identical(tmp_path, capsys):
    """P(safer) = P(scenario's risk < reference's) per posterior draw (ties count one
    half), from the arrays themselves; a limit where the runs never differ is 'identical'."""
    from lenasim.outputs.tables.runs import load_run

    base = _base_per_cycle()
    other = base.copy()
    rng = np.random.default_rng(3)
    other[:, :, 1:] *= rng.uniform(0.5, 1.5, size=(S, len(EVENTS), C - 1))  # cycles 2+ differ
    limits = {"tls": [{"cycle": 1, "max": 0.02}, {"cycle": 3, "max": 0.05}],
              "neutropenia": {"cumulative": True, "max": 0.5}}  # fmt: skip
    a = write_run(tmp_path, "a", base, manifest_extra=_cfg(limits=limits))
    b = write_run(tmp_path, "b", other, manifest_extra=_cfg())
    compare_runs([a, b], tmp_path / "cmp", plots=False)  # limits.csv only
    lim = pd.read_csv(tmp_path / "cmp" / "limits.csv")
    assert list(lim["limit"]) == ["Tumor lysis syndrome in cycle 1 <= 2%",
                                  "Tumor lysis syndrome in cycle 3 <= 5%",
                                  "Grade 3-4 neutropenia by the end of cycle 4 <= 50%"]  # fmt: skip
    ra, rb = load_run(a).ds, load_run(b).ds
    t3a = ra["per_cycle"].sel(event="tls", cycle=3).values
    t3b = rb["per_cycle"].sel(event="tls", cycle=3).values
    assert lim.loc[1, "p_safer"] == pytest.approx(np.mean(t3b < t3a) + 0.5 * np.mean(t3b == t3a))
    assert lim.loc[0, "identical"] and not lim.loc[1, "identical"]
    na = ra["cumulative"].sel(event="neutropenia", cycle=4).values
    assert lim.loc[2, "ref_p_exceed"] == pytest.approx(np.mean(na > 0.5))
    out = capsys.readouterr().out
    assert "P(safer)" in out and "identical" in out
    assert "Tumor lysis syndrome in cycle 1 <= 2%" in out


def test_identical_rows_say_identical_not_p_zero(tmp_path, capsys):
    base = _base_per_cycle()
    a = write_run(tmp_path, "a", base)
    b = write_run(tmp_path, "b", base.copy())
    df = compare_runs([a, b])
    assert df.loc[df["quantity"] != "dose", "identical"].all()
    out = capsys.readouterr().out
    assert "P=0.00" not in out and "identical" in out


@pytest.mark.parametrize(
    "change, words",
    [(dict(setting="untreated"), "setting relapsed vs untreated"),
     (dict(cycle_days=42), "cycle length (days) 28 vs 42"),
     (dict(partners=["rituximab"]), "partner drugs none vs rituximab")],
)  # fmt: skip
def test_compare_warns_when_more_than_the_schedule_differs(tmp_path, capsys, change, words):
    base = _base_per_cycle()
    a = write_run(tmp_path, "a", base, manifest_extra=_cfg())
    b = write_run(tmp_path, "b", base * 1.1, manifest_extra=_cfg(**change))
    compare_runs([a, b], quiet=True)
    err = capsys.readouterr().err
    assert "differ in more than the schedule" in err and words in err
    c = write_run(tmp_path, "c", base * 1.1, manifest_extra=_cfg())
    compare_runs([a, c], quiet=True)
    assert "differ in more than the schedule" not in capsys.readouterr().err
