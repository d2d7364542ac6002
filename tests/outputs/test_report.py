"""Reports: self-contained, valid HTML with every plot embedded and all text escaped."""

from __future__ import annotations

import json
import types
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from builders import make_run_dataset, write_run
from lenasim.outputs.figures import compare as compare_plots
from lenasim.outputs.figures import run as plots
from lenasim.outputs.report import tables as report_tables
from lenasim.outputs.report.run import headline_table, run_report

VOID = {"meta", "img", "br", "hr", "link", "input"}


class _Checker(HTMLParser):
    """Collects tags, data URIs and external references; checks nesting."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: list[str] = []
        self.img_src: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append(tag)
        a = dict(attrs)
        if tag == "img":
            self.img_src.append(a.get("src", ""))
        if tag in ("script", "link", "iframe", "object"):
            self.external.append(tag)
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith(("data:", "#")):
                self.external.append(f"{tag} {key}={a[key][:40]}")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check_html(path: Path) -> _Checker:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    c = _Checker()
    c.feed(text)
    c.close()
    assert not c.errors, c.errors[:5]
    assert not c.stack, f"unclosed: {c.stack}"
    for tag in ("html", "head", "body", "main", "table", "h1", "h2"):
        assert tag in c.seen, tag
    assert not c.external, f"report must not load anything external: {c.external}"
    return c


def make_run(root: Path, *, manifest: bool = True) -> Path:
    ds = make_run_dataset(n_draws=25, n_cycles=4, scenario="slow-ramp", seed=3, n_patients=50,
                          rng=5)  # fmt: skip
    S = ds.sizes["draw"]
    if manifest:
        m = {
            "name": "slow-ramp",
            "config": {
                "description": "Start <2.5 mg> & escalate",
                "mirrors": "Aue 2018",
                "population": {"setting": "relapsed/refractory", "elderly": 0.4},
                "rules": [{"event": "neutropenia", "action": "hold"}],
            },
            "regimen_text": "2.5 mg days 1-21 of a 28-day cycle, +2.5 mg every cycle to 10 mg",
            "hashes": {
                "config": "c0ffee",
                "evidence": "e1",
                "posterior": "p1",
                "posterior_index": "i1",
            },
            "versions": {"lenasim": "0.1.0", "numpy": "2.0"},
            "seed": 3,
            "n_patients": 50,
            "n_draws": S,
            "population_effect": "new_trial",
            "posterior_attrs": {"max_rhat": 1.003, "divergences": 0},
        }
    else:
        m = None
    return write_run(root, ds, m)


@pytest.fixture
def fake_evidence(monkeypatch):
    """Three evidence rows (one not in the fit) and two arms, as the evidence stage gives
    them to the report (records with ``_asdict``, arms with ``n``)."""
    frame = pd.DataFrame(
        {
            "trial": ["CLL-009", "CLL-009", "Aue <2009>"],
            "arm_ids": [("a",), ("a",), ("b",)],
            "n": [30, 30, 18],
            "outcome": ["tls", "flare_any", "flare_any"],
            "unit": ["patients"] * 3,
            "events": [1, 20, 14],
            "in_fit": [True, True, False],
        }
    )
    rows = list(frame.itertuples(index=False, name="Row"))
    monkeypatch.setattr(report_tables, "table_rows", lambda: rows)
    arms = {"a": types.SimpleNamespace(n=30), "b": types.SimpleNamespace(n=18)}
    monkeypatch.setattr(report_tables, "load_arms", lambda: arms)


def test_run_report_is_valid_and_self_contained(tmp_path, fake_evidence):
    d = make_run(tmp_path)
    # the folder's PNGs (stand-ins: the page embeds their bytes and reads the header's
    # size; drawing them cost ~0.4 s; test_plots checks the drawing, the next test a page
    # that draws its own)
    for i, name in enumerate(plots.SCENARIO_PNGS):
        (d / name).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(8) + (300 + i).to_bytes(4, "big")
                               + (200).to_bytes(4, "big") + bytes(i + 1))  # fmt: skip
    out = run_report(d)
    assert out == d / "report.html"
    c = check_html(out)
    assert len(c.img_src) == 3 and all(s.startswith("data:image/png;base64,") for s in c.img_src)
    text = out.read_text()
    assert "Start &lt;2.5 mg&gt; &amp; escalate" in text  # escaped, not injected
    assert "Aue &lt;2009&gt;" not in text  # not in the fit, not listed
    body = " ".join(c.text)
    for needle in (
        "Grade 3-4 neutropenia",
        "Tumor lysis syndrome",
        "CLL-009",
        "c0ffee",
        "max_rhat",
        "Cycles 3+",
        "By end of cycle 4",
        "relapsed/refractory",
    ):
        assert needle in body, needle


def test_run_report_without_pngs_or_manifest_or_evidence(tmp_path, monkeypatch):
    def broken():
        raise FileNotFoundError("data/evidence.csv")

    monkeypatch.setattr(report_tables, "table_rows", broken)
    d = make_run(tmp_path, manifest=False)
    out = run_report(d)  # renders the plots itself
    c = check_html(out)
    assert len(c.img_src) == 3
    body = " ".join(c.text)
    assert "evidence table could not be loaded" in body and "data/evidence.csv" in body
    assert "manifest.json was not found" in body


def test_headline_table_matches_draws(tmp_path):
    ds = xr.load_dataset(make_run(tmp_path) / "draws.nc")
    tab = headline_table(ds).set_index("event")
    x = ds["per_cycle"].sel(event="tls", cycle=1).values
    cell = tab.loc["tls", "Cycle 1"]  # median / mean (90% interval)
    assert cell.startswith(f"{100 * np.median(x):.1f}% / {100 * x.mean():.1f}% (")
    x3 = ds["per_cycle"].sel(event="flare", cycle=[3, 4]).mean("cycle").values
    assert f" / {100 * x3.mean():.1f}% (" in tab.loc["flare", "Cycles 3+ (per cycle)"]


def test_compare_report_embeds_every_plot(tmp_path, fake_evidence):
    from lenasim.outputs.report.comparison import compare_runs

    roots = [tmp_path / "a", tmp_path / "b"]
    for r in roots:
        r.mkdir()
    a, b = (make_run(r) for r in roots)  # two runs with the same name: labels made unique
    compare_runs([a, b], tmp_path / "cmp", quiet=True)
    for f in ("comparison.csv", "dose.csv", "report.html", "per_cycle_overlay.png",
              "cumulative_overlay.png", "differences.png", "dose_overlay.png"):  # fmt: skip
        assert (tmp_path / "cmp" / f).is_file(), f  # (moved from test_compare.py)
    for f in compare_plots.COMPARISON_PNGS:  # drawn, not empty (test_plots' slow twin too)
        assert (tmp_path / "cmp" / f).stat().st_size > 1000, f
    c = check_html(tmp_path / "cmp" / "report.html")
    assert len(c.img_src) == len(compare_plots.COMPARISON_PNGS)
    assert all(s.startswith("data:image/png;base64,") for s in c.img_src)
    body = " ".join(c.text)
    assert "Main differences" in body and "P(riskier)" in body and "paired" in body


def _no_figures(monkeypatch) -> None:
    """run_report without its figures (drawn when the folder has no PNGs): for the tests
    that read the text only (each figure drawn cost ~0.25 s of CPU)."""
    from lenasim.outputs.report import run as run_page

    monkeypatch.setattr(run_page, "later_images", lambda *a, **k: [])  # no <img>
    monkeypatch.setattr(run_page, "fill_images", lambda html, *a, **k: html)


def test_unconverged_posterior_is_flagged(tmp_path, fake_evidence, monkeypatch):
    _no_figures(monkeypatch)  # the text is checked
    d = make_run(tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    m["posterior"] = {"path": "models/default.nc", "converged": False}
    (d / "manifest.json").write_text(json.dumps(m))
    body = " ".join(check_html(run_report(d)).text)
    assert "did NOT pass the convergence gate" in body


def test_run_report_with_the_package_evidence(tmp_path, monkeypatch):
    """The shipped evidence table renders (trials, fitted figures) and stays valid HTML."""
    _no_figures(monkeypatch)  # the text is checked
    d = make_run(tmp_path)
    body = " ".join(check_html(run_report(d)).text)
    assert "could not be loaded" not in body
    assert "reported figures from" in body


def test_headline_table_leaves_out_cycles_nobody_started(tmp_path):
    """In a draw where every patient stopped, later per-cycle values are NaN: cycles 3+
    averages the cycles that were started, and the other draws are unaffected."""
    ds = xr.open_dataset(make_run(tmp_path) / "draws.nc", engine="h5netcdf").load()
    pc = ds["per_cycle"].values.copy()
    pc[0, :, 3:] = np.nan  # draw 0: nobody starts cycle 4 or later
    ds["per_cycle"] = (ds["per_cycle"].dims, pc)
    tab = headline_table(ds).set_index("event")
    c3 = np.nanmean(pc[:, :, 2:], axis=2)  # (draw, event)
    e = list(ds["event"].values).index("tls")
    expected = c3[:, e].mean()
    assert f" / {100 * expected:.1f}% (" in tab.loc["tls", "Cycles 3+ (per cycle)"]


def test_run_report_from_the_dataset_in_memory_equals_from_draws_nc(
    tmp_path, fake_evidence, monkeypatch
):
    """`run` hands its dataset to run_report instead of reading draws.nc back: the
    report is the same, byte for byte apart from its timestamp. Its text is compared
    without figures: both reports embedded the same PNG files, drawn once from the
    dataset in memory, so the figures added no comparison (~0.6 s of CPU)."""
    import re

    _no_figures(monkeypatch)
    d = make_run(tmp_path)
    mem = xr.open_dataset(d / "draws.nc", engine="h5netcdf").load()
    mem = mem.assign_coords(event=mem["event"].values.astype(str))  # as simulate makes it

    def text() -> str:
        return re.sub(r"Written by lenasim on [0-9: -]+\.", "", (d / "report.html").read_text())

    run_report(d)
    from_disk = text()
    run_report(d, ds=mem)
    assert text() == from_disk
