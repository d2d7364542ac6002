"""Issue 24, item 3: `compare` shows the paired effect of renal dose adjustment against none
by CrCl band (lenasim.outputs.tables.subgroup_compare), on the shipped posterior.

The two configs differ only in the regimen of the CrCl < 60 group (renal_dosing), on the
same seed and draws: the >= 60 band's cohort meets the same random numbers on the same
schedule, so its difference is exactly 0; the 30-60 band's starting dose is halved, so its
risks fall draw by draw (the dose slopes are positive in every draw of the shipped model):
no Monte Carlo tolerance is needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.outputs.report.comparison import compare_runs

ROOT = Path(__file__).resolve().parents[2]
PATIENTS = ROOT / "configs" / "patients"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import json
    import shutil

    from lenasim.pipeline.posterior import ensure_posterior
    from lenasim.pipeline.run import simulate_run, write_run

    post = ensure_posterior(DEFAULT_SPEC, quiet=True)
    out = tmp_path_factory.mktemp("runs")
    folders = {}
    for name in ("renal_origin", "renal_origin_adjusted"):
        doc = yaml.safe_load((PATIENTS / f"{name}.yaml").read_text())
        doc["posterior"] = {"spec": str(DEFAULT_SPEC), "draws": 20}
        doc["population"]["patients"] = 100
        # 3 cycles of the 12 (the escalation reaches its last level at cycle 3): every
        # assertion reads cycle 1 or a band's identity; the profiles' hazard tables and
        # the mixing cost per cycle (~2.3 -> ~0.9 s CPU for three runs; issue 22.12)
        for regimen in [doc["regimen"], *(r["regimen"] for r in doc.get("renal_dosing", []))]:
            regimen["cycles"] = 3
        res = simulate_run(doc, post)
        folders[doc["name"]] = write_run(res, out / doc["name"], plots=False)
    # The adjusted run as if simulated with seed 7: its folder with the manifest saying so
    # (the manifest is the record `compare` pairs by; it holds no hash of itself). Its
    # subgroup draws are the adjusted run's own, so only the pairing keeps them out of a
    # comparison (a third simulation cost ~0.6 s of CPU; issue 22.12).
    seed7 = shutil.copytree(folders["renal_origin_adjusted"], out / "renal_origin_adjusted_seed7")
    manifest = json.loads((seed7 / "manifest.json").read_text())
    assert manifest["seed"] != 7
    manifest.update(seed=7, name="renal_origin_adjusted_seed7")
    (seed7 / "manifest.json").write_text(json.dumps(manifest, indent=2))
    folders["renal_origin_adjusted_seed7"] = seed7
    return folders


@pytest.fixture(scope="module")
def paired(runs, tmp_path_factory):
    """The paired compare of the two renal runs (no plots), made once for the tests that
    read it: (its folder, its terminal text). Tests read it; never change it."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("cmp") / "cmp"
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        compare_runs([runs["renal_origin"], runs["renal_origin_adjusted"]], out, plots=False)
    return out, text.getvalue()


def test_compare_shows_the_renal_adjustment_by_crcl_band(runs, paired):
    out, text = paired
    assert "renal_origin_adjusted vs renal_origin by CrCl band (mL/min) (paired" in text
    import pandas as pd

    df = pd.read_csv(out / "subgroups.csv", dtype={"level": str})
    crcl = df[df["subgroup"] == "crcl_band"].set_index(["level", "event", "quantity"]).sort_index()
    assert set(crcl.index.get_level_values("level")) == {"30-60", ">=60"}
    assert crcl.loc[">=60", "identical"].all()  # same schedule, same random numbers
    for ev in ("flare", "tls", "neutropenia"):
        row = crcl.loc[("30-60", ev, "cycle1")]
        assert row.diff_mean < 0 and row.diff_q95 <= 0 and row.p_riskier == 0, ev
        assert row.n_draws == 20
    # the band rows agree with each run's own subgroup table
    ref = pd.read_csv(runs["renal_origin"] / "subgroups.csv", dtype={"level": str})
    m = ref[(ref.subgroup == "crcl_band") & (ref.level == "30-60") & (ref.event == "flare")]
    assert crcl.loc[("30-60", "flare", "cycle1"), "ref_mean"] == pytest.approx(
        float(m["cycle1_mean"].iloc[0]), rel=1e-6
    )


def test_the_compare_report_shows_the_crcl_bands(paired):
    """report.html carries the same paired band rows as the terminal and subgroups.csv."""
    import re

    import pandas as pd

    out, _ = paired
    html = (out / "report.html").read_text()
    assert '<h2 id="subgroups">By creatinine clearance band</h2>' in html
    section = html.split('id="subgroups"', 1)[1].split("<h2", 1)[0]
    df = pd.read_csv(out / "subgroups.csv", dtype={"level": str})
    r = df[(df.subgroup == "crcl_band") & (df.level == "30-60") & (df.event == "flare")
           & (df.quantity == "cycle1")].iloc[0]  # fmt: skip
    row = re.search(r"<tr><td>Tumor flare \(any grade\)</td><td>30-60</td><td>Cycle 1</td>(.*?)</tr>",
                    section.replace("\n", ""))  # fmt: skip
    assert row, section[:2000]
    assert f"{100 * r.ref_mean:.1f}%" in row.group(1) and f"{100 * r.scen_mean:.1f}%" in row.group(
        1
    )
    # riskier in no draw (the dose was halved), with the MCSE subgroups.csv gives
    assert f"0.00 ± {r.p_riskier_mcse:.2f}" in row.group(1)
    same = df[(df.subgroup == "crcl_band") & df.identical]
    assert set(same["level"]) == {">=60"} and len(same) == 8  # 4 events x 2 quantities
    assert section.count(">identical in every draw</td>") == len(same)


def test_no_subgroup_rows_without_pairing(runs, tmp_path, capsys):
    compare_runs([runs["renal_origin"], runs["renal_origin_adjusted_seed7"]], tmp_path / "c",
                 plots=False)  # fmt: skip
    printed = capsys.readouterr()
    assert "seed differs" in printed.err and "comparing unpaired" in printed.err
    assert "by CrCl band" not in printed.out
    assert not (tmp_path / "c" / "subgroups.csv").exists()
