"""What every report page has: the time stamp, the embedded PNGs (read from the folder or
drawn), the decision files read back, and the scenario in words (the run's page and
each scenario of a comparison's)."""

from __future__ import annotations

import datetime as _dt
import io
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lenasim.outputs.judgements import words
from lenasim.outputs.report.html import data_uri
from lenasim.outputs.tables import frame

__all__ = ["fill_images", "images", "later_images", "read_csv", "scenario_section", "stamp",
           "truthy"]  # fmt: skip

_ALT = {
    "per_cycle.png": "Probability of each event per cycle with 50% and 90% intervals",
    "cumulative.png": "Cumulative incidence of each event with 50% and 90% intervals",
    "dose.png": "Dose delivered per cycle: mean dose, intensity against plan, dose changes",
    "per_cycle_overlay.png": "Per-cycle probability of each event, scenario by scenario",
    "cumulative_overlay.png": "Cumulative incidence of each event, scenario by scenario",
    "differences.png": "Differences from the reference scenario with 90% intervals",
    "dose_overlay.png": "Dose delivered per cycle, scenarios side by side",
}


def stamp() -> str:
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header (IHDR)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return 0, 0
    return struct.unpack(">II", png[16:24])


def images(folder: Path, names: Sequence[str], render_png: Any) -> list[dict]:
    """The PNGs of ``names`` in ``folder`` (drawn by ``render_png(name)`` when missing)."""
    out = []
    for name in names:
        path = folder / name
        png = path.read_bytes() if path.is_file() else _fig_png(render_png(name))
        w, h = _png_size(png)
        out.append({"png": png, "alt": _ALT.get(name, name), "width": w, "height": h})
    return out


def later_images(names: Sequence[str]) -> list[dict]:
    """What :func:`images` gives, with placeholders for the PNGs and their sizes: a page can
    be rendered before its PNGs are drawn, and :func:`fill_images` puts them in (the same
    text as rendering with :func:`images` then: a placeholder is letters and digits, which
    the template's escaping leaves as they are)."""
    return [{"png": f"LenasimPng{i}Uri", "alt": _ALT.get(name, name),
             "width": f"LenasimPng{i}Width", "height": f"LenasimPng{i}Height"}
            for i, name in enumerate(names)]  # fmt: skip


def fill_images(html: str, folder: Path, names: Sequence[str], render_png: Any) -> str:
    """``html`` rendered with :func:`later_images` (the same ``names``) with the PNGs of
    :func:`images` in place of the placeholders."""
    for i, img in enumerate(images(folder, names, render_png)):
        for key, value in (("Uri", data_uri(img["png"])), ("Width", str(img["width"])),
                           ("Height", str(img["height"]))):  # fmt: skip
            token = f"LenasimPng{i}{key}"
            if html.count(token) != 1:
                raise ValueError(
                    f"the page holds the placeholder {token} {html.count(token)} times"
                )
            html = html.replace(token, value)
    return html


def _fig_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    return buf.getvalue()


def read_csv(path: Path) -> frame.Columns | None:
    """A decision file read back (:func:`lenasim.outputs.tables.frame.read_csv`: typed as
    pandas types it, without pandas); None when it is missing, no columns when empty."""
    if not path.is_file():
        return None
    return frame.read_csv(path)


def truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes")
    return bool(v)


def scenario_section(manifest: dict, ds: Any) -> dict:
    """The scenario in words, from the manifest's config (the draws' attributes where the
    manifest lacks them)."""
    cfg = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    n_patients = manifest.get("n_patients") or ds.attrs.get("n_patients")
    n_draws = manifest.get("n_draws") or ds.sizes.get("draw")
    seed = manifest.get("seed", ds.attrs.get("seed"))
    effect = (manifest.get("population_effect") or cfg.get("population_effect")
              or ds.attrs.get("population_effect"))  # fmt: skip
    size = f"{n_patients} virtual patients x {n_draws} posterior draws, seed {seed}"
    return {
        "description": cfg.get("description") or "",
        "mirrors": words.mirrors_rows(cfg.get("mirrors")),
        "schedule": manifest.get("regimen_text") or (json.dumps(cfg["regimen"])
                                                      if "regimen" in cfg else ""),
        "population": words.population_words(cfg, n_patients),
        "rules": words.rules_words(cfg),
        "effect": words.effect_words(effect),
        "size": size,
        "missing_manifest": not manifest,
    }  # fmt: skip
