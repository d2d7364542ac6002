"""The gaps in a run's outputs that issues 22 and 24 name, closed: a run without `rules`
says what the protocol does on each event in report.html and caveats.json (issue 22,
item 7); a population with characteristics shows its risks by subgroup in report.html
(issue 24, item 5); no output holds a NaN or a blank cell when the rules stop every
patient in cycle 1 (issue 22, item 4). Each runs the pipeline end to end on a synthetic
posterior (tests/conftest.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from builders import make_draws
from lenasim.pipeline import run as pipeline
from lenasim.pipeline.posterior import ensure_posterior

REPO = Path(__file__).resolve().parents[2]
SPEC = Path("models/default.yaml")


def config(file: str, **changes) -> dict:
    """A shipped config as a mapping, small (20 patients x 6 draws) and on the workdir's
    synthetic posterior; ``changes`` replace top-level keys (None removes one)."""
    data = yaml.safe_load((REPO / "configs" / file).read_text())
    data["posterior"] = {"spec": str(SPEC), "draws": 6}
    data["population"]["patients"] = 20
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def run_folder(data: dict, out: Path, *, figures: bool = False) -> Path:
    """Simulate and write ``data`` (report included) into ``out``; its PNGs are drawn
    and embedded only with ``figures`` (the tests read the report's text: drawing them
    was most of each run's CPU)."""
    from lenasim.outputs.figures import run as run_figures
    from lenasim.outputs.report import run as run_page

    post = ensure_posterior(SPEC)
    res = pipeline.simulate_run(data, post, source="test")
    with pytest.MonkeyPatch.context() as mp:
        if not figures:
            mp.setattr(run_figures, "scenario_plots", lambda *a, **k: None)
            mp.setattr(run_page, "later_images", lambda *a, **k: [])  # no <img>
            mp.setattr(run_page, "fill_images", lambda html, *a, **k: html)
        return pipeline.write_run(res, out, plots=True)


def page_text(folder: Path) -> str:
    """report.html without tags and with entities decoded, whitespace collapsed."""
    import html

    text = re.sub(r"<[^>]+>", " ", (folder / "report.html").read_text(encoding="utf-8"))
    return re.sub(r"\s+", " ", html.unescape(text))


# ------------------------------------------------------------ issue 22, item 7: no rules


def test_a_run_without_rules_says_what_the_protocol_does_on_each_event(posterior_workdir):
    without = run_folder(config("slow_escalation.yaml", name="norules", rules=None),
                         posterior_workdir / "out" / "norules")  # fmt: skip
    caveats = json.loads((without / "caveats.json").read_text())
    assert caveats["no_rules"] == [
        "on TLS: continue as planned",
        "on grade >= 3 flare: continue as planned",
        "on grade 3-4 neutropenia: continue as planned",
        "escalation: on schedule, whatever the events",
    ]
    text = page_text(without)
    sentence = ("No dose-modification rules in the config (no rule given), so the protocol "
                "carries on whatever happens: on TLS: continue as planned; on grade >= 3 "
                "flare: continue as planned; on grade 3-4 neutropenia: continue as planned")  # fmt: skip
    assert sentence in text
    # ... in the caveats' section, where a reader of the decision looks
    caveats_part = text.split("What these numbers can and cannot say", 1)[1]
    assert sentence in caveats_part.split("Headline numbers", 1)[0]

    # A config that states its rules (even "continue" everywhere) gets no such note.
    rules = {"on_tls": "continue", "on_flare_grade3plus": "continue",
             "on_neutropenia": "continue"}  # fmt: skip
    stated = run_folder(config("slow_escalation.yaml", name="stated", rules=rules),
                        posterior_workdir / "out" / "stated")  # fmt: skip
    assert "no_rules" not in json.loads((stated / "caveats.json").read_text())
    assert "No dose-modification rules" not in page_text(stated)


# ------------------------------------------------ issue 24, item 5: risks by subgroup


def test_the_report_shows_the_risks_by_subgroup_with_their_shares(posterior_workdir):
    data = config("patients/renal_origin.yaml")
    data["population"]["patients"] = 200
    data["regimen"]["cycles"] = 2  # the page shows what the CSV has, on any horizon (~0.3 s)
    out = run_folder(data, posterior_workdir / "out" / "renal")
    sub = pd.read_csv(out / "subgroups.csv")
    text = page_text(out)
    assert "Risks by subgroup" in text
    section = text.split("Risks by subgroup", 1)[1]
    # every subgroup of the CSV, in words, with its share and count of the run's patients
    for (group, level), g in sub.groupby(["subgroup", "level"], sort=False):
        share = float(g["share"].iloc[0])
        words = {"crcl_band": f"Creatinine clearance: {level} mL/min",
                 "age_band": f"Age: {level} years",
                 "bulky": f"Largest lymph node >= 5 cm (bulky): {level}"}[group]  # fmt: skip
        count = f"{100 * share:.1f}% (about {round(share * 200)} of 200)"
        # its row: the subgroup, its share, then each event's risk as the CSV has it
        for key in ("cycle1", "cumulative"):
            cells = [rf"{100 * r[key + '_mean']:.1f}% \([^)]*\)" for _, r in g.iterrows()]
            row = r"\s+".join([re.escape(words), re.escape(count), *cells])
            assert re.search(row, section), (words, key)
    assert "prior only" in section

    # A run without characteristics writes no subgroups.csv and the page has no section.
    plain = run_folder(config("slow_escalation.yaml"), posterior_workdir / "out" / "plain")
    assert not (plain / "subgroups.csv").exists()
    assert "Risks by subgroup" not in page_text(plain)


# ------------------------------------- issue 22, item 4: no NaN when nobody is left


def stopping_posterior(workdir: Path) -> None:
    """models/default.nc replaced by draws with TLS near 100% in cycle 1 (an intercept of
    +9 on the logit scale, frailty and trial SDs 0.3): with "discontinue on TLS" no patient
    starts cycle 2 in any draw."""
    from lenasim.evidence.table import evidence_hash
    from lenasim.model.posterior import write_posterior
    from lenasim.model.spec import load_spec

    draws = make_draws(60, seed=5, intercept={"tls": 9.0}, tau=0.3, sigma=0.3)
    attrs = {"evidence_hash": evidence_hash(), "spec_hash": load_spec(workdir / SPEC).hash(),
             "converged": 1, "created": "synthetic: TLS near 100% in cycle 1"}  # fmt: skip
    write_posterior(workdir / "models" / "default.nc", draws, attrs)


def blank_cells(folder: Path) -> list[str]:
    """Every NaN or empty cell of the folder's CSVs, as 'file: column, row'."""
    bad = []
    for path in sorted(folder.glob("*.csv")):
        df = pd.read_csv(path, keep_default_na=False, dtype=str)
        for col in df.columns:
            for i, v in enumerate(df[col]):
                if v.strip().lower() in ("", "nan", "none", "<na>"):
                    bad.append(f"{path.name}: {col}, row {i}")
    return bad


def test_no_nan_or_blank_cell_when_the_rules_stop_every_patient(posterior_workdir):
    stopping_posterior(posterior_workdir)
    rules = {"on_tls": "discontinue"}
    out = run_folder(config("slow_escalation.yaml", name="all_stop", rules=rules),
                     posterior_workdir / "out" / "all_stop", figures=True)  # fmt: skip
    import xarray as xr

    ds = xr.load_dataset(out / "draws.nc")
    nobody = np.all(np.isnan(ds["per_cycle"].values), axis=(0, 1))  # (cycle,): in no draw
    assert not nobody[0] and nobody[1:].all(), "the synthetic posterior stops everyone"

    assert blank_cells(out) == []
    per_cycle = pd.read_csv(out / "per_cycle.csv")
    assert sorted(set(per_cycle["cycle"])) == [1]  # cycles no draw defines are left out
    assert (per_cycle["n_draws"] == ds.sizes["draw"]).all()
    dose = pd.read_csv(out / "dose.csv")
    assert list(dose["cycle"]) == [1] and list(dose["n_draws"]) == [ds.sizes["draw"]]

    text = page_text(out)
    assert "no patient reaches cycle 2" in text
    assert not re.search(r"\bnan\b", text, flags=re.I)
    assert "No patient reaches cycle 2 in any of the 6 posterior draws" in text

    # compare, the stopping run against one that carries on: no NaN or blank either
    from lenasim.outputs.report.comparison import compare_runs

    other = run_folder(config("slow_escalation.yaml", name="carry_on", rules={"on_tls": "continue"}),
                       posterior_workdir / "out" / "carry_on")  # fmt: skip
    cmp_dir = posterior_workdir / "out" / "compare"
    compare_runs([other, out], cmp_dir, quiet=True, plots=False)  # the text is checked
    assert blank_cells(cmp_dir) == []
    assert not re.search(r"\bnan\b", page_text(cmp_dir), flags=re.I)


def test_a_limit_on_cycles_no_patient_reaches_is_said_in_words_not_nan():
    """A per-cycle limit on cycle 3 of a run in which nobody starts cycle 2 or later: no
    draw defines its risk; limits.csv says so in its verdict (nobody is exposed there, so
    nothing exceeds the limit) and holds no NaN; a limit on cycle 1 is judged as ever."""
    from builders import make_run_dataset
    from lenasim.core.limits import RiskLimits
    from lenasim.outputs.judgements.decision import limits_table

    pc = np.full((20, 4, 4), np.nan)
    pc[:, :, 0] = 0.5  # everyone has an event in cycle 1 and stops
    ds = make_run_dataset(pc)
    limits = RiskLimits.model_validate(
        {"tls": [{"max": 0.02, "cycle": 3}, {"max": 0.02, "cycle": 1}]}
    )
    df = limits_table(ds, limits)
    assert not df.isna().any().any()
    late, first = df.iloc[0], df.iloc[1]
    assert late["verdict"] == "acceptable: no patient reaches cycle 3"
    assert late["n_draws"] == 0 and late["p_exceed"] == 0
    assert first["verdict"] == "not acceptable" and first["n_draws"] == 20
    assert "unreached" not in df.columns  # limits.csv keeps its columns
