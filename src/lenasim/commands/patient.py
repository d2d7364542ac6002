"""`python -m lenasim patient CONFIG --age 74 --creatinine 1.4 --weight 68 --sex F
--node-cm 6 --alc 80` (or ``--patient FILE.yaml``; ``--json``): one patient's risks under
the config's schedule and its ``compare_starts`` (:mod:`lenasim.pipeline.patient`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lenasim.core.errors import ConfigError
from lenasim.core.vocabulary import event_title
from lenasim.core.yamlio import load_yaml
from lenasim.pipeline.patient import patient_risks

# command-line option -> characteristic
OPTIONS = {"age": "age", "creatinine": "creatinine_mg_dl", "weight": "weight_kg", "sex": "sex",
           "node_cm": "node_cm", "alc": "alc", "prior_lines": "prior_lines"}  # fmt: skip


def add_arguments(p: Any) -> None:
    """The options of ``patient`` (cli.py calls this)."""
    p.add_argument("config", metavar="CONFIG", help="a scenario config (its schedule and "
                   "compare_starts)")  # fmt: skip
    p.add_argument("--age", type=float, help="years")
    p.add_argument("--creatinine", type=float, help="serum creatinine, mg/dL")
    p.add_argument("--weight", type=float, help="kg")
    p.add_argument("--sex", help="F or M")
    p.add_argument("--node-cm", type=float, help="largest lymph node, cm (>= 5: bulky)")
    p.add_argument("--alc", type=float, help="absolute lymphocyte count, x 10^9/L")
    p.add_argument("--prior-lines", type=float, help="prior lines of therapy (recorded)")
    p.add_argument("--patient", metavar="FILE", help="a YAML of the characteristics "
                   "(age, sex, weight_kg, creatinine_mg_dl, alc, node_cm, prior_lines)")  # fmt: skip
    p.add_argument("--draws", type=int, default=200, help="posterior draws (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON for other programs")


def _given(args: Any) -> dict[str, Any]:
    given: dict[str, Any] = {}
    if args.patient:
        doc = load_yaml(Path(args.patient), ConfigError, "patient file")
        if not isinstance(doc, dict):
            raise ConfigError(f"{args.patient}: must be a mapping of characteristics")
        given.update(doc)
    for opt, key in OPTIONS.items():
        v = getattr(args, opt, None)
        if v is not None:
            given[key] = v
    return given


def _cell(x: dict[str, float]) -> str:
    return f"{100 * x['mean']:5.1f}% [{100 * x['q05']:4.1f}-{100 * x['q95']:5.1f}]"


def _text(r: dict[str, Any]) -> str:
    d = r["drivers"]
    who = ", ".join(f"{k} {v}" for k, v in r["patient"].items()) or "reference patient"
    lines = [f"{r['scenario']}: {who}", ""]
    if d["crcl_ml_min"] is not None:
        f = d["exposure_factor"]
        lines.append(f"CrCl (Cockcroft-Gault) {d['crcl_ml_min']} mL/min, band {d['crcl_band']}: "
                     f"exposure factor {f['q50']:.2f} (90% {f['q05']:.2f}-{f['q95']:.2f}) x mg")  # fmt: skip
    for k in [k for k in d if k.startswith("odds_ratio_")]:
        x = d[k]
        if abs(x["q50"] - 1) > 1e-12:
            lines.append(f"{k[11:]}: odds ratio {x['q50']:.2f} (90% {x['q05']:.2f}-{x['q95']:.2f})")
    lines += [f"PRIOR-DOMINATED: {d['prior_only']}.", ""]
    for s in r["schedules"]:
        levels = " -> ".join(f"{x:g}" for x in s["levels_mg"])
        lines.append(f"{s['source']}: {s['regimen']}")
        lines.append(f"start {s['start_mg']:g} mg (levels {levels} mg): mean [90% interval]")
        lines.append(f"  {'event':<28} cycle  per cycle            cumulative")
        n_cyc = max(x["cycle"] for x in s["risks"])
        shown = sorted({1, 2, 3, n_cyc} & set(range(1, n_cyc + 1)))
        for x in s["risks"]:
            if x["cycle"] in shown:
                lines.append(f"  {event_title(x['event']):<28} {x['cycle']:>5}  "
                             f"{_cell(x['per_cycle'])}  {_cell(x['cumulative'])}")  # fmt: skip
        lines.append("")
    lines.append(f"({r['draws']} posterior draws x {r['patients']} virtual copies of the patient)")
    return "\n".join(lines)


def cmd_patient(args: Any) -> int:
    """CLI handler (module docstring)."""
    if args.draws < 1:
        raise ConfigError(f"--draws: must be a whole number >= 1 (got {args.draws})")
    r = patient_risks(args.config, _given(args), draws=args.draws)
    sys.stdout.write((json.dumps(r, indent=1) if args.json else _text(r)) + "\n")
    return 0
