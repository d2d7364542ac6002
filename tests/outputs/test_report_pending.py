"""The run report rendered before its PNGs exist (lenasim.outputs.report.run.pending_run_report,
what `lenasim run` does while a child draws the figures): once the PNGs are in, the page
is byte for byte the one run_report writes with the PNGs there from the start."""

from __future__ import annotations

import shutil
import struct

import pytest

from lenasim.outputs.figures.run import SCENARIO_PNGS
from lenasim.outputs.report import page
from lenasim.outputs.report import run as report
from lenasim.outputs.tables.runs import load_run


@pytest.fixture
def run_dir(finished_runs, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "stamp", lambda: "2026-01-01 00:00")
    out = tmp_path / "slow_escalation"
    shutil.copytree(finished_runs / "slow_escalation", out)
    return out


def test_pending_report_is_the_report(run_dir):
    ds = load_run(run_dir).ds
    finish = report.pending_run_report(run_dir, ds)
    assert not (run_dir / "report.html").exists()
    # the PNGs arrive after the page was rendered: stand-ins with their own sizes (the
    # page reads a PNG's bytes and its header's size; drawing them cost ~0.7 s; issue 22.12)
    for i, name in enumerate(SCENARIO_PNGS):
        png = b"\x89PNG\r\n\x1a\n" + bytes(8) + struct.pack(">II", 300 + i, 200 + i) + bytes(i + 1)
        (run_dir / name).write_bytes(png)
    late = finish().read_bytes()
    assert b"LenasimPng" not in late
    (run_dir / "report.html").unlink()
    assert report.run_report(run_dir, ds).read_bytes() == late
    for name in SCENARIO_PNGS:  # each PNG is in the page, where the template puts it
        uri = page.data_uri((run_dir / name).read_bytes())
        assert late.decode().count(uri) == 1


def test_a_placeholder_the_page_does_not_hold_once_is_an_error(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(8) + struct.pack(">II", 3, 4)
    (tmp_path / "per_cycle.png").write_bytes(png)
    filled = page.fill_images("LenasimPng0Uri LenasimPng0Width LenasimPng0Height", tmp_path,
                              ["per_cycle.png"], None)  # fmt: skip
    assert filled == f"{page.data_uri(png)} 3 4"
    with pytest.raises(ValueError, match="LenasimPng0Uri 0 times"):
        page.fill_images("no placeholder", tmp_path, ["per_cycle.png"], None)
