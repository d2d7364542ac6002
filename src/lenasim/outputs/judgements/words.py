"""A run's setup in words, for reports: the population, the dose-modification rules,
the between-trial effect, the mirrored arms and the posterior's diagnostics.

Everything reads the manifest's ``config`` (a plain dict, as ``run`` writes it) and
tolerates what older or hand-made manifests hold: a value it does not recognise is
shown as written rather than dropped.
"""

from __future__ import annotations

import json
from typing import Any

from lenasim.core.partners import PARTNERS
from lenasim.core.vocabulary import GATE, event_title
from lenasim.evidence.citations import plain_citation
from lenasim.evidence.table import load_arms

__all__ = [
    "diagnostics_rows",
    "effect_words",
    "mirrors_rows",
    "population_items",
    "population_words",
    "rules_items",
    "rules_words",
    "sampler_words",
    "subgroup_words",
]

_SETTINGS = {
    "relapsed": "relapsed or refractory CLL",
    "untreated": "previously untreated CLL",
    "consolidation": "consolidation after induction",
}
_ACTIONS = {
    "continue": "continue as planned",
    "hold": "hold the rest of the cycle; the next cycle stays at the level reached and "
    "takes no escalation step",
    "reduce": "hold the rest of the cycle; the next cycle one dose level lower",
    "discontinue": "stop lenalidomide",
}
# The rules' keys (`on_<event>`) and the event each acts on, titled by the vocabulary.
_EVENTS = {f"on_{e}": event_title(e) for e in ("neutropenia", "flare_grade3plus", "tls")}
# The subgroups of subgroups.csv (lenasim.simulation.population.SUBGROUPS) in words.
_SUBGROUPS = {
    "crcl_band": ("Creatinine clearance", "{} mL/min"),
    "age_band": ("Age", "{} years"),
    "bulky": ("Largest lymph node >= 5 cm (bulky)", "{}"),
}
# The convergence gate of `fit` (its thresholds: lenasim.core.vocabulary.GATE).
_GATE = {
    "max_rhat": ("Largest R-hat", f"<= {GATE.max_rhat}", lambda v: v <= GATE.max_rhat, "{:.3f}"),
    "min_ess_bulk": (
        "Smallest bulk ESS",
        f">= {GATE.min_ess:g}",
        lambda v: v >= GATE.min_ess,
        "{:.0f}",
    ),
    "min_ess_tail": (
        "Smallest tail ESS",
        f">= {GATE.min_ess:g}",
        lambda v: v >= GATE.min_ess,
        "{:.0f}",
    ),
    "divergences": ("Divergent transitions", "0", lambda v: v == 0, "{:.0f}"),
}


def _json(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def population_items(cfg: dict) -> list[tuple[str, str]]:
    """The virtual patients as (aspect, value) pairs."""
    pop = cfg.get("population")
    if not isinstance(pop, dict):
        return [("Population", str(pop))] if pop is not None else []
    out = []
    setting = pop.get("setting")
    if setting is not None:
        out.append(("Setting", _SETTINGS.get(str(setting), str(setting))))
    share = pop.get("elderly_share")
    if isinstance(share, int | float):
        out.append(("Aged 65 or more", f"{100 * share:.0f}%"))
    partners = pop.get("partners")
    if isinstance(partners, list):
        names = [f"{d} ({PARTNERS.get(d, 'class unknown').replace('_', '-')})" for d in partners]
        out.append(("Partner drugs", ", ".join(names) if names else "none (lenalidomide alone)"))
    steroid = pop.get("steroid_prophylaxis")
    if steroid is not None:
        out.append(("Steroid flare prophylaxis (first cycle)", "yes" if steroid else "no"))
    shown = {"patients", "setting", "elderly_share", "partners", "steroid_prophylaxis"}
    return out + [(str(k), str(v)) for k, v in pop.items() if k not in shown]


def population_words(cfg: dict, n_patients: Any = None) -> list[str]:
    """The virtual patients, one phrase each."""
    pop = cfg.get("population")
    n = n_patients
    if n is None and isinstance(pop, dict):
        n = pop.get("patients")
    head = [f"{n:,} virtual patients per posterior draw"] if isinstance(n, int) else []
    return head + [f"{k}: {v}" for k, v in population_items(cfg)]


def rules_items(cfg: dict) -> list[tuple[str, str]]:
    """The dose-modification rules as (aspect, what happens) pairs."""
    rules = cfg.get("rules")
    if not isinstance(rules, dict):
        return [("Rules", json.dumps(rules))] if rules is not None else []
    out = [(f"On {event[0].lower()}{event[1:]}", _ACTIONS.get(str(rules[key]), str(rules[key])))
           for key, event in _EVENTS.items() if key in rules]  # fmt: skip
    if "escalate_only_if_tolerated" in rules:
        out.append(("Escalation only while tolerated",
                    "yes: after a grade >= 3 event the next cycle takes no step, and the steps "
                    "of the event cycle's second half are not taken"
                    if rules["escalate_only_if_tolerated"] else "no"))  # fmt: skip
    lowest = rules.get("on_lowest")
    if lowest or any(rules.get(k) == "reduce" for k in _EVENTS):
        out.append(("Reducing at the lowest dose level", str(lowest or "discontinue")))
    return out + [(str(k), str(v)) for k, v in rules.items()
                  if k not in {*_EVENTS, "escalate_only_if_tolerated", "on_lowest"}]  # fmt: skip


def rules_words(cfg: dict) -> list[str]:
    """The dose-modification rules, one sentence each."""
    return [f"{k}: {v}." for k, v in rules_items(cfg)]


def effect_words(v: Any) -> str | None:
    """What the population effect means for the intervals."""
    return {
        "new_trial": "A new trial: each virtual cohort draws its own between-trial effect, so "
        "the intervals hold the spread between trials.",
        "typical": "A typical trial: no between-trial effect, so the intervals describe the "
        "average trial (narrower than a new trial's).",
    }.get(str(v), None if v is None else str(v))


def mirrors_rows(mirrors: Any) -> list[dict]:
    """The mirrored evidence arms: id, label and plain citation (as far as known)."""
    if not mirrors:
        return []
    ids = [mirrors] if isinstance(mirrors, str) else list(mirrors)
    try:
        arms, cite = load_arms(), plain_citation
    except Exception:  # noqa: BLE001 - the report names the arms even without the table
        arms, cite = {}, str
    out = []
    for a in ids:
        arm = arms.get(a)
        out.append({
            "id": a,
            "label": getattr(arm, "label", ""),
            "citation": cite(getattr(arm, "citation", "")) if arm else "",
        })  # fmt: skip
    return out


def diagnostics_rows(attrs: dict) -> list[dict]:
    """The posterior's convergence diagnostics against the fit's gate."""
    diag = _json(attrs.get("diagnostics"))
    diag = diag if isinstance(diag, dict) else {}
    diag = diag | {k: attrs[k] for k in _GATE if k in attrs and k not in diag}
    rows = []
    for key, (what, gate, ok, fmt) in _GATE.items():
        v = diag.get(key)
        if not isinstance(v, int | float):
            continue
        where = diag.get(f"{key}_at")
        rows.append({
            "measure": what + (f" ({where})" if where else ""),
            "value": fmt.format(v), "gate": gate, "ok": bool(ok(v)),
        })  # fmt: skip
    return rows


def sampler_words(attrs: dict) -> str | None:
    """'nutpie, 4 chains x 1000 draws after 1000 tuning steps (target acceptance 0.95)'."""
    s = _json(attrs.get("sampler"))
    if not isinstance(s, dict):
        return None
    text = (
        f"{s.get('backend', 'NUTS')}, {s.get('chains', '?')} chains x {s.get('draws', '?')} "
        f"draws after {s.get('tune', '?')} tuning steps"
    )
    if "target_accept" in s:
        text += f" (target acceptance {s['target_accept']})"
    return text


def subgroup_words(subgroup: str, level: Any) -> str:
    """A subgroup of subgroups.csv in words ("Creatinine clearance 30-60 mL/min"); one
    this module does not know is shown as written."""
    what, unit = _SUBGROUPS.get(str(subgroup), (str(subgroup), "{}"))
    return f"{what}: {unit.format(level)}"
