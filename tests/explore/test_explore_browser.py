"""The explorer in a real browser: Debian's Chromium driven by Playwright (it cannot
download its own browsers here), headless, against `python -m lenasim explore` started
as a user starts it, on the shipped posterior, with full runs written to a temporary
results folder. Open the app, change the starting dose and see the cycle-1 TLS risk move
the way the model says, trigger a validation message, download the config, and run full
runs from two tabs at once and find their folders.

Skipped, with the reason shown, when Chromium or Playwright is missing outside CI; in CI
(`.ci/run` installs Chromium, the test extra installs Playwright) a missing browser fails.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import browser

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "standard_25mg.yaml"  # 25 mg from day 1, no escalation
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip

# Playwright is imported by the fixture that uses it: these tests are slow, and importing
# it when the fast suite collects this module cost ~0.1 s (issue 22.12)
_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
_MISSING = [w for w, gone in (("Chromium (Debian: apt-get install chromium)",
                               browser.chromium() is None),
                              ("Playwright (pip install 'lenasim[explore]')", not _PLAYWRIGHT))
            if gone]  # fmt: skip
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(_MISSING) and not os.environ.get("CI"),
        reason=f"{' and '.join(_MISSING)} not installed; CI installs both, so there this test runs",
    ),  # fmt: skip
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app, served by the command itself on a free port; yields (url, results)."""
    root = tmp_path_factory.mktemp("explore")
    results = root / "results"
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO / "src"),
                                                       os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "lenasim", "explore", str(CONFIG), "--port", "0",
         "--results", str(results)],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+/", line)  # this machine only, by default
        assert m, f"no address printed: {line!r} {proc.stderr.read() if proc.poll() else ''}"
        yield m.group(0), results
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def chromium():
    import playwright.sync_api as pw

    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser.chromium(), headless=True, args=ARGS)
        yield b
        b.close()


def _open(chromium, url: str):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#c1-tls", timeout=60_000)
    return page


def _stamp(page) -> int:
    return int(page.get_attribute("#preview-stamp", "data-stamp") or 0)


def _set(page, fid: str, value) -> None:
    """Type a value into an input and leave it (Shiny sends numbers on change)."""
    page.fill(f"#{fid}", str(value))
    page.press(f"#{fid}", "Tab")


def _set_and_wait(page, fid: str, value) -> None:
    before = _stamp(page)
    _set(page, fid, value)
    page.wait_for_function(
        f"() => Number(document.querySelector('#preview-stamp')?.dataset.stamp || 0) > {before}",
        timeout=60_000,
    )


def _model_direction(start_from: float, start_to: float) -> np.ndarray:
    """The sign, per posterior draw, of the change in the model's cycle-1 TLS predictor
    (a typical patient of the config) when the starting dose moves: the oracle."""
    from lenasim.core.regimen import nominal_features
    from lenasim.core.vocabulary import covariate_features
    from lenasim.explore.pipeline_adapter import load_posterior
    from lenasim.simulation.scenario import load_scenario

    sc = load_scenario(CONFIG)
    draws = load_posterior(sc.posterior.spec).draws
    pop = sc.population

    def eta(start: float) -> np.ndarray:
        reg = sc.regimen.model_copy(update={"start_mg": start})
        f = {k: v[:1] for k, v in nominal_features(reg.expand(), 1).items()}
        f |= covariate_features(pop.setting, pop.partner_classes, pop.steroid_prophylaxis,
                                np.zeros(1), f["first"])  # fmt: skip
        return draws.eta("tls", f)[:, 0]

    return np.sign(eta(start_to) - eta(start_from))


def test_starting_dose_moves_cycle1_tls_as_the_model_says(app, chromium):
    url, _ = app
    page = _open(chromium, url)
    at_25 = float(page.get_attribute("#c1-tls", "data-value"))
    _set_and_wait(page, "regimen__start_mg", 5)
    at_5 = float(page.get_attribute("#c1-tls", "data-value"))
    direction = _model_direction(25.0, 5.0)
    assert np.all(direction == direction[0]) and direction[0] != 0  # monotone: one sign
    assert np.sign(at_5 - at_25) == direction[0], (at_25, at_5)
    assert page.locator("#svg-per_cycle svg.panel").count() == 4
    page.close()


def test_bad_input_shows_the_cli_message_at_the_field(app, chromium):
    url, _ = app
    page = _open(chromium, url)
    _set(page, "regimen__start_mg", -5)
    msg = page.locator("#err_regimen__start_mg .err")
    msg.wait_for(timeout=30_000)
    assert msg.inner_text() == "regimen.start_mg: must be >= 0.5 (got -5)"
    page.wait_for_function(
        "() => document.querySelector('#preview-stamp')?.textContent.includes('errors')"
    )
    _set(page, "regimen__start_mg", 10)
    msg.wait_for(state="detached", timeout=30_000)
    page.close()


def test_download_gives_the_scenario(app, chromium, tmp_path):
    from lenasim.simulation.scenario import load_scenario

    url, results = app
    page = _open(chromium, url)
    _set_and_wait(page, "regimen__start_mg", 15)
    with page.expect_download(timeout=30_000) as dl:
        page.click("#download")
    path = tmp_path / "downloaded.yaml"
    dl.value.save_as(path)
    sc = load_scenario(path)
    assert sc.regimen.start_mg == 15 and sc.name == "standard_25mg"
    assert Path(sc.output) == results
    page.close()


def test_full_runs_from_two_tabs_each_find_their_folder(app, chromium):
    from lenasim.simulation.scenario import load_scenario

    url, results = app
    tabs = []
    for name, start in (("tab_one", 25), ("tab_two", 5)):
        page = _open(chromium, url)
        _set(page, "name", name)
        _set(page, "population__patients", 40)
        _set(page, "posterior__draws", 20)
        _set_and_wait(page, "regimen__start_mg", start)
        tabs.append((page, name, start))
    for page, _, _ in tabs:  # both runs started before either has finished
        page.click("#full_run")
    for page, name, start in tabs:
        done = page.locator("#run-result")
        done.wait_for(timeout=120_000)
        folder = Path(done.get_attribute("data-folder"))
        assert folder == results / name
        assert (folder / "report.html").is_file() and (folder / "per_cycle.csv").is_file()
        assert load_scenario(folder / "scenario.yaml").regimen.start_mg == start
        with page.expect_download(timeout=30_000) as dl:  # the download is the run's config
            page.click("#download")
        assert Path(dl.value.path()).read_bytes() == (folder / "scenario.yaml").read_bytes()
        page.close()
    assert sorted(p.name for p in results.iterdir()) == ["tab_one", "tab_two"]
