"""Every report, opened in a real browser (headless Chromium) in a 1280-pixel window:
every image loads and nothing is wider than the window. The reports are those of a small
run of four shipped configs on the synthetic posterior and of their comparison (four
scenarios: small multiples). Screenshots of the pages are kept in the test's temporary
folder (``pytest --basetemp DIR`` keeps them where you can look)."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest

import browser
from lenasim.commands.run import cmd_run

CONFIGS = ["slow_escalation", "standard_25mg", "with_rituximab", "pulse_21of42"]

pytestmark = browser.skip_without_chromium()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Run the configs (with plots and reports) and return the report pages."""
    import shutil
    import sys
    import types

    from conftest import make_draws, name_local_spec
    from lenasim.core.errors import PosteriorError
    from lenasim.evidence.table import evidence_hash
    from lenasim.model.posterior import write_posterior
    from lenasim.model.spec import load_spec

    repo = Path(__file__).resolve().parents[2]
    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(repo / "configs", root / "configs")
    for cfg in (root / "configs").glob("*.yaml"):  # the synthetic posterior below, not the shipped
        cfg.write_text(name_local_spec(cfg.read_text()))
    (root / "models").mkdir()
    spec = root / "models" / "default.yaml"
    shutil.copy(repo / "models" / "default.yaml", spec)
    write_posterior(root / "models" / "default.nc", make_draws(60, seed=11),
                    {"evidence_hash": evidence_hash(), "spec_hash": load_spec(spec).hash(),
                     "converged": 1}, prior=make_draws(60, seed=12, spread=1.0))  # fmt: skip
    stub = types.ModuleType("lenasim.model.fit")
    stub.fit_spec = lambda *a, **k: (_ for _ in ()).throw(PosteriorError("no fits in tests"))
    old = sys.modules.get("lenasim.model.fit")
    sys.modules["lenasim.model.fit"] = stub
    try:
        args = Namespace(configs=[str(root / "configs" / f"{c}.yaml") for c in CONFIGS],
                         overwrite=False, results=str(root / "results"), patients=40, draws=20,
                         no_plots=False, quiet=True)  # fmt: skip
        assert cmd_run(args) == 0
    finally:
        if old is not None:
            sys.modules["lenasim.model.fit"] = old
        else:
            del sys.modules["lenasim.model.fit"]
    pages = sorted((root / "results").glob("*/report.html"))
    assert len(pages) == len(CONFIGS) + 1  # the runs and their comparison
    return pages


@pytest.mark.slow  # four runs with plots and a comparison, five pages in the browser
def test_every_report_loads_its_images_and_fits_1280_px(reports):
    failures = []
    for page in reports:
        seen = browser.probe(page)
        name = page.parent.name
        if seen["innerWidth"] != browser.WIDTH:
            failures.append(f"{name}: window {seen['innerWidth']} px, not {browser.WIDTH}")
        if seen["scrollWidth"] > browser.WIDTH:
            failures.append(f"{name}: page {seen['scrollWidth']} px wide: {seen['wide']}")
        if seen["wide"]:
            failures.append(f"{name}: wider than the window: {seen['wide']}")
        if len(seen["images"]) < 3:
            failures.append(f"{name}: {len(seen['images'])} images")
        for img in seen["images"]:
            if not (img["complete"] and img["natural"] > 0):
                failures.append(f"{name}: image '{img['alt']}' did not load")
            elif img["shown"] > browser.WIDTH:
                failures.append(f"{name}: image '{img['alt']}' shown {img['shown']} px wide")
        browser.screenshot(page, page.with_suffix(".png"), seen["height"])
    assert not failures, "\n".join(failures)


def test_the_probe_sees_overflow_and_broken_images(tmp_path):
    """The check can fail: a page with a 2000-pixel table and a broken image."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><div style='width:2000px'>wide</div>"
        "<img src='data:image/png;base64,AAAA' alt='broken'></body></html>"
    )
    seen = browser.probe(page)
    assert seen["scrollWidth"] > browser.WIDTH and seen["wide"]
    assert [(i["alt"], i["natural"]) for i in seen["images"]] == [("broken", 0)]


def _playwright_page():
    """A Playwright page in Debian's Chromium (skips when Playwright is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    return sync_api.sync_playwright()


@pytest.mark.slow  # the reports fixture: four runs with plots and a comparison
def test_a_committee_reads_the_summary_first(reports):
    """Issue 22 item 8, read in a real browser (Playwright): every run report opens with a
    summary, within the first screen, that gives the caveat in one line, the schedule in
    words, a verdict per limit and the key risks with median, mean and interval; the
    comparison opens with its caveat."""
    with _playwright_page() as pw:
        chrome = pw.chromium.launch(executable_path=browser.chromium(),
                                    args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        page = chrome.new_page(viewport={"width": browser.WIDTH, "height": 900})
        try:
            for path in reports:
                page.goto(path.as_uri())
                if path.parent.name.startswith("compare-"):
                    caveat = page.locator("#caveat")
                    assert caveat.bounding_box()["y"] < 300
                    assert caveat.inner_text().startswith("Caveat:")
                    continue
                summary = page.locator("#summary")
                box = summary.bounding_box()
                assert box["y"] < 250 and box["y"] + box["height"] < 1400, path  # one screen
                assert page.locator("h2").first.inner_text() == "Summary"
                text = summary.inner_text()
                assert "Caveat:" in text and "Schedule" in text, text
                verdicts = summary.locator("li.verdict").all_inner_texts()
                assert len(verdicts) == 2, verdicts  # the two default limits
                for v in verdicts:
                    assert v.split(":")[0] in ("acceptable", "not acceptable",
                                               "undecided: run more draws"), v  # fmt: skip
                    assert "P(risk above the limit)" in v and "75th percentile" in v
                risks = summary.locator("tbody tr").all_inner_texts()
                assert len(risks) == 4 and all("median" in r and "mean" in r for r in risks)
                assert "_" not in " ".join(risks)  # events by their titles, not identifiers
        finally:
            chrome.close()
