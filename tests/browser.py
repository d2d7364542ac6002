"""Headless Chromium for the report tests: load a page in a 1280-pixel-wide window and
report what a reader's browser sees (images loaded, the page's width), and take
screenshots. Debian's chromium; `.ci/run` installs it when missing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

WIDTH = 1280
CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")  # fmt: skip

# Appended to a copy of the page: after load, what the browser laid out, as JSON.
_PROBE = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.from(document.images).map(function (im) {
    return {alt: im.alt, complete: im.complete, natural: im.naturalWidth,
            shown: Math.round(im.getBoundingClientRect().width)};
  });
  var wide = [];
  document.querySelectorAll("body *").forEach(function (el) {
    var r = el.getBoundingClientRect();
    var box = el.closest(".wide");
    if (r.right > window.innerWidth + 0.5 && !(box && box !== el)) {
      wide.push(el.tagName + " " + (el.className || "") + " right=" + Math.round(r.right));
    }
  });
  var out = {innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
             height: document.documentElement.scrollHeight, images: imgs, wide: wide.slice(0, 20)};
  var pre = document.createElement("pre");
  pre.id = "lenasim-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


HOW_TO_RUN = (
    "install Chromium to run them (Debian: apt-get install chromium; it is looked for at "
    f"{CHROMIUM}, then on PATH); .ci/run installs it, and with CI=true a missing Chromium "
    "fails these tests instead of skipping them"
)


def chromium() -> str | None:
    """The browser's path, or None when it is not installed. ``LENASIM_CHROMIUM``, when
    set, is the only path tried (tests/project/test_ci.py uses it to hide the browser)."""
    forced = os.environ.get("LENASIM_CHROMIUM")
    if forced is not None:
        return forced if os.access(forced, os.X_OK) else None
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


def in_ci() -> bool:
    """Whether the environment says this is CI (``CI`` set to true, 1 or yes)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_without_chromium():
    """The mark for a browser test module: skipped, with how to run it, when Chromium is
    missing outside CI; in CI (``CI=true``) never skipped, so a missing browser fails."""
    import pytest

    return pytest.mark.skipif(
        chromium() is None and not in_ci(),
        reason=f"browser test skipped: Chromium is not installed; {HOW_TO_RUN}",
    )


def _run(args: list[str], profile: Path) -> str:
    if chromium() is None:
        raise RuntimeError(f"Chromium is not installed; {HOW_TO_RUN}")
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"chromium failed ({res.returncode}): {res.stderr[-2000:]}")
    return res.stdout


def probe(page: Path) -> dict:
    """Load ``page`` (a copy with the probe script) at 1280 px and return what it saw."""
    with tempfile.TemporaryDirectory(prefix="lenasim-browser-") as tmp:
        tmp = Path(tmp)
        copy = tmp / "page.html"
        copy.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                        encoding="utf-8")  # fmt: skip
        dom = _run([f"--window-size={WIDTH},900", "--virtual-time-budget=10000", "--dump-dom",
                    copy.as_uri()], tmp / "profile")  # fmt: skip
    m = re.search(r'<pre id="lenasim-probe">(.*?)</pre>', dom, flags=re.S)
    if m is None:
        raise RuntimeError("the page's probe did not run (no result in the DOM)")
    import html

    return json.loads(html.unescape(m.group(1)))


def screenshot(page: Path, out: Path, height: int) -> Path:
    """A screenshot of the whole page (``height`` pixels tall) at 1280 px."""
    with tempfile.TemporaryDirectory(prefix="lenasim-browser-") as tmp:
        _run([f"--window-size={WIDTH},{min(height, 30000)}", f"--screenshot={out}",
              page.resolve().as_uri()], Path(tmp) / "profile")  # fmt: skip
    return out
