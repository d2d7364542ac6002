"""The text of docs/configuration.md (written by `python -m lenasim.commands.docs`): the
reference of every scenario config key, from the pydantic schema (lenasim.simulation.scenario.Scenario and
the models it holds): each key with its type, unit, default, description and an example
(taken from the shipped configs where one sets it). Types are written in words.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from lenasim.core.limits import BANDS, DEFAULT_LIMITS, LIMIT_EVENTS, RiskLimit, RiskLimits
from lenasim.core.partners import PARTNERS
from lenasim.core.shipped import DEFAULT_SPEC
from lenasim.design.config import reference_markdown
from lenasim.simulation.scenario import Scenario

__all__ = ["OUT", "UNITS", "reference"]

REPO = Path(__file__).resolve().parents[3]
OUT = REPO / "docs" / "configuration.md"

# The unit of every leaf key (by its name; "-" for words, flags and names). A key without
# an entry is an error: a new key must say what it counts.
UNITS: dict[str, str] = {
    "name": "-", "description": "-", "mirrors": "evidence arm ids", "seed": "-",
    "population_effect": "-", "output": "path", "patients": "patients",
    "setting": "-", "elderly_share": "fraction (0-1)", "partners": "drug names",
    "steroid_prophylaxis": "yes/no", "cycle_days": "days", "days_on": "days of the cycle",
    "start_mg": "mg/day", "target_mg": "mg/day", "max_mg": "mg/day", "step_mg": "mg/day",
    "levels_mg": "mg/day", "reduction_levels_mg": "mg/day", "every": "`unit`s",
    "unit": "-", "first_step_after": "`unit`s", "cycles": "cycles",
    "no_lenalidomide": "yes/no", "on_neutropenia": "-", "on_flare_grade3plus": "-",
    "on_tls": "-", "escalate_only_if_tolerated": "yes/no", "on_lowest": "-",
    "spec": "path", "draws": "posterior draws", "max": "probability (0-1)",
    "cycle": "cycle number (from 1)", "cumulative": "yes/no", "each_cycle": "yes/no",
    "max_probability": "probability (0-1)", "capsules": "-",
    "female_share": "fraction (0-1)", "csv": "path", "profiles": "patients",
    "mean": "the characteristic's unit", "sd": "the characteristic's unit",
    "median": "the characteristic's unit", "gsd": "factor (>= 1)", "compare_starts": "mg/day", "crcl_below": "mL/min",
    "renal_dosing": "CrCl bands (mL/min) and their regimens", "dosing": "-",
}  # fmt: skip

# Examples of keys no shipped config sets (the shipped configs give the rest).
FALLBACK_EXAMPLES: dict[str, Any] = {
    "regimen.max_mg": 25,
    "regimen.escalation.step_mg": 5,
    "regimen.escalation.first_step_after": 2,
    "regimen.reduction_levels_mg": [2.5, 5],
    "regimen.first_cycle.cycle_days": 35,
    "regimen.first_cycle.no_lenalidomide": True,
    "rules.on_lowest": "discontinue",
    "limits.max_probability": 0.25,
    "limits.<event>.max": 0.02,
    "limits.<event>.cycle": 1,
    "limits.<event>.cumulative": True,
    "limits.<event>.each_cycle": True,
    "population.partners": ["fludarabine", "rituximab"],
    "population.elderly_share": 0.4,
    "population.steroid_prophylaxis": True,
    "posterior.spec": "../models/my_model.yaml",
    "regimen.capsules": "any",
    "regimen.dosing": "every_other_day",
    "population.characteristics.csv": "clinic_patients.csv",
    "population.characteristics.profiles": 32,
    "population.characteristics.female_share": 0.45,
    "compare_starts": [2.5, 10],
    # a characteristic's distribution, normal or log-normal (illustrative values)
    **{f"population.characteristics.{k}.{p}": v
       for k in ("age", "weight_kg", "creatinine_mg_dl", "alc", "node_cm", "prior_lines")
       for p, v in (("mean", 2), ("sd", 1), ("median", 2), ("gsd", 1.5))},
}  # fmt: skip

# How `regimen.dosing: every_other_day` enters the risk model (lenasim.core.exposure).
EVERY_OTHER_DAY = [
    "## Every other day",
    "",
    "`regimen.dosing: every_other_day` takes a dose on the first day of `days_on` and every "
    "second day after it, in each cycle (`days_on: [1, 28]`: days 1, 3, ..., 27). The risk "
    "model's dose terms act on exposure, and the exposure of a schedule is its average "
    "exposure a day over the days its doses cover: a dose of D mg every other day enters as "
    "D / 2 mg a day over two days, so 15 mg every other day is 7.5 mg daily to the model "
    "(equal risks under the `logit` link; the same days at risk under `cloglog_daily`). "
    "Why: lenalidomide's half-life is 3-4 h and its AUC is proportional to dose from 5 to "
    "400 mg (Chen et al., Cancer Chemother Pharmacol 2012), so nothing accumulates between "
    "doses and 15 mg every 48 h gives the AUC of 7.5 mg every 24 h. The fitted dose slopes "
    "come from trials that all dosed daily, where mg a day and AUC a day are one number: "
    "they cannot tell exposure from the peak concentration, which is twice as high every "
    "other day. Were toxicity to follow the peak, 15 mg every other day would be riskier "
    "than the model says. `dose.csv`'s mean dose is the dose on the days a dose is taken "
    "(15 mg); its intensity is mg per day of the cycle (7.5 mg/day). Example: "
    "`configs/patients/renal_label.yaml` (the EU SmPC's renal starting doses).",
]

MINIMAL = """name: my_schedule
seed: 1
population: {setting: relapsed}
regimen: {cycle_days: 28, days_on: [1, 21], start_mg: 10, cycles: 6}
"""


def _type(tp: Any) -> str:
    """A field's type in words."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:  # a constrained type: its base type in words
        return _type(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(_type(a) for a in inner)
        return text + (" (optional)" if len(inner) < len(args) else "")
    if origin in (list, tuple):
        if origin is tuple and len(args) == 2 and args[0] is args[1] is int:
            return "[first, last]"
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping (below)"
    return {bool: "true/false", int: "integer", float: "number", str: "text",
            Path: "path"}.get(tp, getattr(tp, "__name__", str(tp)))  # fmt: skip


def _yaml(v: Any) -> str:
    """A value as it is written in a config."""
    if isinstance(v, Path):
        v = str(v)
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, BaseModel):
        v = v.model_dump(mode="json", exclude_defaults=True)
    text = yaml.safe_dump(v, default_flow_style=True, sort_keys=False, width=1000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is None:
        return "none"
    if value == DEFAULT_SPEC:
        return "the shipped model (`lenasim/models/default.yaml`)"
    return f"`{_yaml(value)}`"


def _examples() -> dict[str, list[Any]]:
    """key path -> the values the shipped configs (alphabetically) give it."""
    out: dict[str, list[Any]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        if isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
            for x in node:  # a list of mappings (renal_dosing): its items' keys
                walk(x, path)
        out.setdefault(path, []).append(node)

    shipped = sorted((REPO / "configs").glob("*.yaml"))
    for cfg in shipped + sorted((REPO / "configs" / "patients").glob("*.yaml")):
        walk(yaml.safe_load(cfg.read_text()), "")
    return out


def _example(path: str, field, examples: dict[str, list[Any]]) -> Any:
    """A shipped config's value for the key, preferring one that is not the default."""
    values = examples.get(path) or []
    default = None if field.default is PydanticUndefined else field.default
    if field.default_factory is not None:
        default = field.default_factory()
    plain = [v for v in values if v != default and v not in ([], "", None)]
    if plain or values:
        return (plain or values)[0]
    if path.startswith("renal_dosing.regimen."):  # a regimen's key, as in `regimen`
        return _example(path.removeprefix("renal_dosing."), field, examples)
    return FALLBACK_EXAMPLES.get(path)


def _doc(model: type[BaseModel]) -> str:
    """The first paragraph of a model's docstring."""
    return _cell((model.__doc__ or "").strip().split("\n\n")[0])


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _section(model: type[BaseModel], prefix: str, examples: dict, out: list[str]) -> list:
    """The table of a model's keys; returns the nested models to document after it."""
    nested = []
    out += ["| key | type | unit | default | what it is | example |", "|---|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        tp = field.annotation
        inner = [a for a in (typing.get_args(tp) or (tp,)) if isinstance(a, type)]
        sub = next((a for a in inner if issubclass(a, BaseModel)), None)
        if sub is not None and name != "limits":
            nested.append((path, sub))
            out.append(f"| `{path}` | mapping, see [{path}](#{path.replace('.', '')}) | | "
                       f"{_default(field) if sub is None else 'see below'} | "
                       f"{_cell(field.description or '') or _doc(sub)} | |")  # fmt: skip
            continue
        if name == "limits":
            out.append(f"| `{path}` | mapping, see [limits](#limits) | | see below | "
                       f"{_cell(field.description or '')} | |")  # fmt: skip
            continue
        if name not in UNITS:
            raise KeyError(f"{path}: no unit in lenasim.pipeline.config_docs.UNITS; add one")
        example = _example(path, field, examples)
        if example is None:
            raise KeyError(f"{path}: no example (no shipped config sets it): add one to "
                           "FALLBACK_EXAMPLES in lenasim.pipeline.config_docs")  # fmt: skip
        out.append(f"| `{path}` | {_type(tp)} | {UNITS[name]} | {_default(field)} | "
                   f"{_cell(field.description or '')} | `{_yaml(example)}` |")  # fmt: skip
    return nested


def reference() -> str:
    """The text of docs/configuration.md."""

    examples = _examples()
    out = [
        "# Scenario configuration reference",
        "",
        "<!-- Generated from the pydantic schema by `python -m lenasim.commands.docs`; do not "
        "edit by hand (tests/project/test_docs.py fails when this file is out of date). -->",
        "",
        "A scenario config is a YAML file (`configs/*.yaml`): who is treated, with which "
        "schedule, under which dose-modification rules and risk limits, simulated over which "
        "posterior. It is validated strictly: an unknown key or value is refused with the "
        "file, the key path and the closest valid spelling. Paths written in a config are "
        "relative to the config file; without `output` the results go to `results/` in the "
        "current folder, and without `posterior.spec` the model shipped with lenasim is used. "
        "Examples below come from the shipped configs where one sets the key.",
        "",
        "The shortest valid config:",
        "",
        "```yaml",
        MINIMAL.rstrip(),
        "```",
        "",
        "## Top-level keys",
        "",
    ]
    queue = _section(Scenario, "", examples, out)
    while queue:
        path, model = queue.pop(0)
        out += ["", f"## {path}", "", _doc(model), ""]
        queue = _section(model, path, examples, out) + queue
    out += [
        "",
        "## limits",
        "",
        "Under `limits`, each event (" + ", ".join(f"`{e}`" for e in LIMIT_EVENTS) + ") takes "
        "one limit or a list of them; `max_probability` sets the overdose-control threshold. "
        "A limit is met when the posterior probability that the risk exceeds `max` is at "
        "most `max_probability` (escalation with overdose control, Babb et al., Stat Med "
        "1998). `limits: {}` states none.",
        "",
        f"Default: `{_yaml(DEFAULT_LIMITS.model_dump(mode='json', exclude_defaults=True)['events'])}` "
        f"with `max_probability: {DEFAULT_LIMITS.max_probability:g}`.",
        "",
        "```yaml",
        "limits:",
        "  tls: {each_cycle: true, max: 0.02}",
        "  flare_grade3plus: {cumulative: true, max: 0.05}",
        "  neutropenia: [{cycle: 1, max: 0.3}, {cumulative: true, max: 0.6}]",
        "  max_probability: 0.25",
        "```",
        "",
    ]
    _section(RiskLimit, "limits.<event>", examples, out)
    out.append("| `limits.max_probability` | number | probability (0-1) | "
               f"`{DEFAULT_LIMITS.max_probability:g}` | "
               f"{_cell(RiskLimits.model_fields['max_probability'].description or '')} | "
               f"`{FALLBACK_EXAMPLES['limits.max_probability']}` |")  # fmt: skip
    out += [
        "",
        "Reports also give the posterior probability of each interval of cycle-1 risk "
        "(OncoBayes2's interval probabilities):",
        "",
        "| event | intervals |",
        "|---|---|",
    ]
    for event, edges in BANDS.items():
        cuts = ", ".join(f"{100 * a:g}-{100 * b:g}%" for a, b in zip(edges, edges[1:]))
        out.append(f"| `{event}` | {cuts} |")
    out += ["", *EVERY_OTHER_DAY]
    out += [
        "",
        "## Partner drugs",
        "",
        "`population.partners` names drugs from this registry (lenasim.core.partners); "
        "the model's covariates are their classes.",
        "",
        "| drug | class |",
        "|---|---|",
    ]
    out += [f"| `{d}` | `{c}` |" for d, c in sorted(PARTNERS.items())]

    out += ["", *reference_markdown()]
    return "\n".join(out).rstrip("\n") + "\n"
