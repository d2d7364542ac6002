"""The caveats that travel with a run's numbers: how well the model predicted trials it
had not seen (the latest validation), which model terms the scenario uses are still
mostly prior, and how far the scenario's results move when the priors are widened.

- Validation: ``python -m lenasim validate`` writes ``<spec folder>/validation.json``
  beside the posterior (models/default.yaml -> models/default/validation.json), with
  its date and the hashes of the spec and evidence it validated; a run quotes it, and
  says so when the posterior was fitted to another spec or evidence since.
- Prior dominance: for every parameter the scenario uses, posterior SD / prior SD from
  the posterior file's ``prior`` and ``posterior`` groups. Above
  :data:`PRIOR_DOMINATED_RATIO` (0.7: the data narrowed the prior by less than 30%) the
  term is flagged: what the run says about it is mostly what the prior assumed.
- Prior sensitivity: the shipped configs are simulated on the default posterior and on
  one with every prior scale multiplied (``validate --prior-scale 2``); a scenario of the
  same name quotes its shifts, and a shift of :data:`PRIOR_SHIFT` (2 percentage points)
  or more counts as moving.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lenasim.core.hazard import EVENTS, SEVERITY, HazardDraws
from lenasim.core.shipped import refuse_writing_installed_model
from lenasim.core.writers import replace_file

__all__ = [
    "PRIOR_DOMINATED_RATIO",
    "PRIOR_SHIFT",
    "Caveats",
    "collect_caveats",
    "format_caveats",
    "terms_used",
    "validation_record_path",
    "write_validation_record",
]

PRIOR_DOMINATED_RATIO = 0.7
PRIOR_SHIFT = 0.02

_BLOCK_WORDS = {
    "flare": "flare",
    "tls": "TLS",
    "neutropenia": "neutropenia",
    SEVERITY: "grade >= 3 share of flares",
}
_PARAM_WORDS = {
    "intercept": "baseline risk",
    "tau": "between-trial SD",
    "sigma": "patient frailty SD",
    "log_dose": "dose",
    "log_frac_on": "days on drug per cycle",
    "first": "first exposure",
    "first_log_dose": "starting dose",
    "rise": "dose rise",
    "log_cycle": "cycle number",
    "restart": "restart after days off",
    "untreated": "untreated setting",
    "consolidation": "consolidation setting",
    "elderly": "age 65 or more",
    "anti_cd20": "anti-CD20 partner",
    "chemo": "chemotherapy partner",
    "cdk_inhibitor": "CDK inhibitor partner",
    "steroid": "steroid prophylaxis",
}
_VALIDATION_PARTS = ("loto", "loto_no_dose", "model_comparison", "prior_sensitivity", "sbc")


def validation_record_path(spec_path: str | Path) -> Path:
    """models/default.yaml -> models/default/validation.json (beside the posterior plots)."""
    return Path(spec_path).with_suffix("") / "validation.json"


def write_validation_record(spec_path: str | Path, summary: dict, done: dict[str, bool]) -> Path:
    """Store the latest validation beside the posterior, for runs to quote.

    ``summary`` is validate's summary.json; ``done`` says which parts this validation
    ran (``loto``, ``prior_sensitivity``, ``sbc``): those are replaced, with today's
    date, and the parts of an earlier record are kept with theirs.
    """
    from lenasim.evidence.table import evidence_hash
    from lenasim.model.spec import load_spec

    refuse_writing_installed_model(spec_path, "validate")
    path = validation_record_path(spec_path)
    old = json.loads(path.read_text()) if path.is_file() else {}
    stamp = {
        "date": datetime.now(UTC).date().isoformat(),
        "spec_hash": load_spec(spec_path).hash(),
        "evidence_hash": evidence_hash(),
    }
    record = {"spec": str(spec_path)} | {k: v for k, v in old.items() if k in _VALIDATION_PARTS}
    ran = {"loto": ("loto", "loto_no_dose", "model_comparison")}
    for part, on in done.items():
        if not on:
            continue
        for key in ran.get(part, (part,)):
            if key in summary:
                record[key] = {**summary[key], **stamp}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, default=float) + "\n"
    return replace_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


@dataclass
class Caveats:
    """What a run's reader must know besides the numbers (JSON-able; ``caveats.json``)."""

    validation_file: str
    validation: dict | None = None  # the parts of validation.json, or None
    validation_stale: list[str] = field(default_factory=list)  # why it is of another model
    prior_measured: bool = False  # whether the posterior file had prior draws
    prior_dominated: list[dict] = field(default_factory=list)  # label, ratio (used terms)
    sensitivity: list[dict] | None = None  # prior-sensitivity rows of this scenario
    sensitivity_factor: float | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Caveats:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def moves(self) -> list[dict]:
        """Prior-sensitivity rows whose mean moves by PRIOR_SHIFT or more, largest first."""
        rows = [r for r in self.sensitivity or [] if abs(r["shift"]) >= PRIOR_SHIFT]
        return sorted(rows, key=lambda r: -abs(r["shift"]))


def terms_used(scenario, terms: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """Per block (event or severity), the parameters a scenario's cohort switches on: the
    intercept and frailty always, the trial SD for a new trial, and each term whose
    feature is not zero in some cycle of the schedule taken as planned."""
    from lenasim.core.regimen import nominal_features

    f = nominal_features(scenario.regimen.expand())
    on = f["exposed"] > 0
    pop = scenario.population
    cov = {
        "untreated": pop.setting == "untreated",
        "consolidation": pop.setting == "consolidation",
        "elderly": pop.elderly_share > 0,
        "steroid": pop.steroid_prophylaxis and bool((f["first"][on] > 0).any()),
        **{c: c in pop.partner_classes for c in ("anti_cd20", "chemo", "cdk_inhibitor")},
    }
    out: dict[str, list[str]] = {}
    for block, names in terms.items():
        used = ["intercept"]
        if block != SEVERITY:
            used += (["tau"] if scenario.population_effect == "new_trial" else []) + ["sigma"]
        for t in names:
            if t in cov:
                used += [t] if cov[t] else []
            elif t in f and np.any(np.abs(np.asarray(f[t])[on]) > 1e-12):
                used.append(t)
        out[block] = used
    return out


def _values(d: HazardDraws, block: str, param: str) -> np.ndarray | None:
    if param == "intercept":
        return d.intercept.get(block)
    if param in ("tau", "sigma"):
        return getattr(d, param).get(block)
    return d.coefs.get(block, {}).get(param)


def prior_dominance(
    prior: HazardDraws, post: HazardDraws, used: dict[str, list[str]]
) -> list[dict]:
    """Posterior SD / prior SD of every used parameter (both groups must have it)."""
    rows = []
    for block in (*EVENTS, SEVERITY):
        for param in used.get(block, []):
            a, b = _values(prior, block, param), _values(post, block, param)
            if a is None or b is None or np.std(a) <= 1e-9 * (1 + abs(np.mean(a))):
                continue
            rows.append({
                "block": block, "param": param,
                "label": f"{_BLOCK_WORDS[block]}: {_PARAM_WORDS.get(param, param)}",
                "ratio": float(np.std(b) / np.std(a)),
            })  # fmt: skip
    return rows


def collect_caveats(scenario, post, spec_path: str | Path) -> Caveats:
    """The caveats of a run of ``scenario`` over the loaded posterior ``post``."""
    from lenasim.model.posterior import load_group_draws

    path = validation_record_path(spec_path)
    c = Caveats(validation_file=str(path))
    if path.is_file():
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            record = {}
            c.validation_stale = [f"{path} is not valid JSON; run validate again"]
        c.validation = {k: v for k, v in record.items() if k in _VALIDATION_PARTS} or None
        loto = (c.validation or {}).get("loto") or {}
        for key, what in (("spec_hash", "the model spec"), ("evidence_hash", "the evidence")):
            if loto and loto.get(key) != post.attrs.get(key):
                c.validation_stale.append(f"{what} changed since the validation")
        ps = (c.validation or {}).get("prior_sensitivity")
        if ps:
            c.sensitivity_factor = float(ps.get("factor", np.nan))
            c.sensitivity = [r for r in ps.get("table", []) if r.get("config") == scenario.name]
    prior = load_group_draws(post.path, "prior")
    if prior is not None:
        c.prior_measured = True
        used = terms_used(scenario, post.draws.terms)
        rows = prior_dominance(prior, post.draws, used)
        c.prior_dominated = sorted(
            (r for r in rows if r["ratio"] > PRIOR_DOMINATED_RATIO), key=lambda r: -r["ratio"]
        )
    return c


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def validation_sentence(c: Caveats) -> str:
    """One sentence on the latest leave-one-trial-out validation (or its absence)."""
    loto = (c.validation or {}).get("loto")
    if not loto:
        return (
            f"Not validated: no leave-one-trial-out result in {c.validation_file} (run "
            "`python -m lenasim validate`), so how often these intervals hold a new trial's "
            "figures is unchecked."
        )
    c90, c50 = loto["coverage90"], loto["coverage50"]
    mb = loto.get("model_vs_baseline") or {}
    text = (
        f"Validation of {loto.get('date', 'unknown date')} (each trial predicted by the model "
        f"fitted without it): the 90% intervals held {_pct(c90['share'])} of "
        f"{loto['n_rows']} held-out figures (nominal 90%), the 50% intervals "
        f"{_pct(c50['share'])}"
    )
    if mb:
        text += f"; ELPD against a dose-blind pooled baseline {mb['diff']:+.1f} (SE {mb['se']:.1f})"
    mm = loto.get("model_vs_meta") or {}
    if mm:
        text += (
            f", against a random-effects meta-analysis that ignores dose and schedule "
            f"{mm['diff']:+.1f} (SE {mm['se']:.1f})"
        )
        if mm["diff"] < 2 * mm["se"]:
            text += (
                ": the model predicts new trials no better than one blind to the schedule, so "
                "differences between schedules rest on the stated dose priors"
            )
    text += "."
    if c90["share"] < 0.85:
        text += " Read the intervals as a lower bound on the uncertainty."
    if c.validation_stale:
        text += f" It is of an earlier model: {'; '.join(c.validation_stale)}."
    return text


def prior_sentence(c: Caveats, limit: int | None = None) -> str:
    """The terms the scenario uses that are mostly prior."""
    if not c.prior_measured:
        return "Prior dominance not measured: the posterior file has no prior draws."
    if not c.prior_dominated:
        return (
            f"Every model term this scenario uses was narrowed by the data to below "
            f"{PRIOR_DOMINATED_RATIO:g} of its prior SD."
        )
    rows = c.prior_dominated if limit is None else c.prior_dominated[:limit]
    names = ", ".join(f"{r['label']} ({r['ratio']:.2f})" for r in rows)
    more = len(c.prior_dominated) - len(rows)
    tail = f" and {more} more (see the report)" if more > 0 else ""
    return (
        f"Mostly prior (posterior SD above {PRIOR_DOMINATED_RATIO:g} x prior SD), used by this "
        f"scenario: {names}{tail}."
    )


def sensitivity_sentence(c: Caveats, limit: int | None = None) -> str:
    """How the scenario's results move when the priors are widened."""
    if c.sensitivity is None:
        return "Prior sensitivity not measured (`python -m lenasim validate --prior-scale 2`)."
    if not c.sensitivity:
        return (
            "Prior sensitivity not measured for this scenario (validate simulates the shipped "
            "configs by name)."
        )
    factor = f"x{c.sensitivity_factor:g}" if c.sensitivity_factor else "widened"
    moves = c.moves
    if not moves:
        return (
            f"Under priors {factor} wider, no headline number of this scenario moves by "
            f"{100 * PRIOR_SHIFT:g} percentage points or more."
        )
    rows = moves if limit is None else moves[:limit]
    words = "; ".join(
        f"{r['event']} {r['quantity']} {100 * r['mean_default']:.1f}% -> "
        f"{100 * r['mean_widened']:.1f}%"
        for r in rows
    )
    more = len(moves) - len(rows)
    tail = f"; {more} more" if more > 0 else ""
    return f"Moves under priors {factor} wider: {words}{tail}."


def format_caveats(c: Caveats) -> str:
    """The lines printed under the terminal table."""
    return "\n".join(
        [validation_sentence(c), prior_sentence(c, limit=4), sensitivity_sentence(c, limit=3)]
    )
