"""`lenasim explore`: the preview's latency in a real browser, from a change in the form
to the redrawn preview (the SVG charts and tables), against the preview's own compute
time measured in this process on the same scenario (the reference: what the app cannot
go below).

    python benchmarks/explore_latency.py                 # 15 changes, no reference, then 15 with one
    python benchmarks/explore_latency.py --changes 5 --screenshot docs/explorer.png

Starts `python -m lenasim explore configs/standard_25mg.yaml --port 0` with a temporary
results folder, drives Debian's Chromium (/usr/bin/chromium) with Playwright, headless,
and alternates the starting dose between 20 and 25 mg. A change is timed from the moment
the value is typed and the field left (Shiny sends numbers on change) to the moment the
preview's stamp (``#preview-stamp[data-stamp]``) counts one more, which it does when the
new preview is in the page. Prints the median and 90th percentile, the compute reference
and their ratio, and the 1-minute load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "standard_25mg.yaml"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def compute_reference(repeats: int, reference: bool) -> list[float]:
    """Seconds the preview takes in process: simulate, judge, tables and SVG charts."""
    from lenasim.explore.charts import dose_svg, risk_svg
    from lenasim.explore.pipeline_adapter import preview
    from lenasim.explore.session import PREVIEW_DRAWS, PREVIEW_PATIENTS, preview_sections
    from lenasim.explore.session import reference_of as ref_of
    from lenasim.simulation.scenario import load_scenario

    sc = load_scenario(CONFIG)
    ref = (
        ref_of(sc, load_scenario(ROOT / "configs" / "slow_escalation.yaml")) if reference else None
    )
    out = []
    for i in range(repeats + 1):
        start = 20.0 if i % 2 else 25.0
        s = sc.model_copy(update={"regimen": sc.regimen.model_copy(update={"start_mg": start})})
        t0 = time.perf_counter()
        p = preview(s, draws=PREVIEW_DRAWS, patients=PREVIEW_PATIENTS, reference=ref)
        preview_sections(p)
        for var in ("per_cycle", "cumulative"):
            risk_svg(p.ds, var, p.reference)
        dose_svg(p.ds, p.reference)
        if i:  # the first loads the posterior
            out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=15, help="changes timed per case")
    ap.add_argument("--screenshot", default=None, metavar="PNG",
                    help="also save a screenshot of the app (with a reference) there")  # fmt: skip
    ap.add_argument("--json", default=None, metavar="FILE", help="write the numbers there")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    tmp = Path(tempfile.mkdtemp(prefix="lenasim-explore-bench-"))
    proc = subprocess.Popen([sys.executable, "-m", "lenasim", "explore", str(CONFIG),
                             "--port", "0", "--results", str(tmp / "results")],
                            cwd=tmp, env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    results: dict = {"load_start": load()}
    try:
        url = re.search(r"http://[\d.]+:\d+/", proc.stdout.readline()).group(0)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                  args=CHROMIUM_ARGS)  # fmt: skip
            page = b.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_selector("#c1-tls", timeout=60_000)
            for case in ("no reference", "reference (paired)"):
                if case.startswith("reference"):
                    page.select_option("#reference", "slow_escalation")
                    page.wait_for_selector("#paired", timeout=60_000)
                times = []
                for i in range(args.changes + 1):
                    before = int(page.get_attribute("#preview-stamp", "data-stamp"))
                    t0 = time.perf_counter()
                    now = page.input_value("#regimen__start_mg")
                    page.fill("#regimen__start_mg", "20" if now == "25" else "25")
                    page.press("#regimen__start_mg", "Tab")
                    page.wait_for_function(
                        "() => Number(document.querySelector('#preview-stamp')"
                        f"?.dataset.stamp || 0) > {before}", timeout=60_000)  # fmt: skip
                    if i:
                        times.append(time.perf_counter() - t0)
                ref = compute_reference(args.changes, case.startswith("reference"))
                med, ref_med = float(np.median(times)), float(np.median(ref))
                results[case] = {
                    "latency_median_s": round(med, 3),
                    "latency_p90_s": round(float(np.quantile(times, 0.9)), 3),
                    "compute_median_s": round(ref_med, 3),
                    "ratio_latency_to_compute": round(med / ref_med, 1),
                    "load": load(),
                }
                print(f"{case}: change -> redrawn preview median {med:.3f} s "
                      f"(p90 {results[case]['latency_p90_s']:.3f} s, {args.changes} changes); "
                      f"compute alone {ref_med:.3f} s; ratio {med / ref_med:.1f}; "
                      f"load {load()}", flush=True)  # fmt: skip
            if args.screenshot:
                page.fill("#regimen__start_mg", "25")
                page.press("#regimen__start_mg", "Tab")
                time.sleep(2)
                page.evaluate(
                    "() => { document.activeElement.blur(); window.scrollTo(0, 0); "
                    "document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; }); }"
                )
                time.sleep(0.5)
                page.screenshot(path=args.screenshot)
                print(f"screenshot: {args.screenshot}")
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
