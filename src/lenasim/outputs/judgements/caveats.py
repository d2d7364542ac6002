"""The caveats that travel with a run's numbers: how well the model predicted trials it
had not seen (the latest validation), which model terms the scenario uses are still
mostly prior, and how far the scenario's results move when the priors are widened.

- Validation: ``python -m lenasim validate`` writes ``<spec folder>/validation.json``
  beside the posterior (models/default.yaml -> models/default/validation.json), with
  its date and the hashes of the spec and evidence it validated; a run quotes it, and
  says so when the posterior was fitted to another spec or evidence since.
- Prior dominance: for every parameter the scenario uses, the overlap of its prior and
  posterior draws (the posterior file's ``prior`` and ``posterior`` groups): the area
  shared by the two densities, 1 when the data changed nothing. A posterior that moved
  away from the prior overlaps it little even when it is as wide (the frailty SD of
  neutropenia: wider, but far from the prior's mean), so the overlap sees both a
  contraction and a shift. At :data:`PRIOR_OVERLAP` or above the term is flagged: what
  the run says about it is mostly what the prior assumed. The threshold is the overlap
  of a normal prior with a posterior of the same mean and 0.7 of its SD (the data
  narrowed it by less than 30%), the former rule, which saw contraction only; it is
  estimated with the same estimator and draw counts (:func:`overlap_threshold`).
- Prior sensitivity: the shipped configs are simulated on the default posterior and on
  one with every prior scale multiplied (``validate --prior-scale 2``); a scenario of the
  same name quotes its shifts, and a shift of :data:`PRIOR_SHIFT` (2 percentage points)
  or more counts as moving.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lenasim.core.hazard import EVENTS, SEVERITY, HazardDraws
from lenasim.core.regimen import nominal_features
from lenasim.core.shipped import refuse_writing_installed_model
from lenasim.core.vocabulary import covariate_features, event_title
from lenasim.core.writers import replace_file
from lenasim.evidence.table import evidence_hash
from lenasim.model.posterior import load_group_draws
from lenasim.model.spec import load_spec

__all__ = [
    "PARAM_WORDS",
    "PRIOR_DOMINATED_RATIO",
    "PRIOR_OVERLAP",
    "PRIOR_SHIFT",
    "Caveats",
    "collect_caveats",
    "decision_caveat",
    "overlap",
    "overlap_threshold",
    "format_caveats",
    "rules_sentence",
    "terms_used",
    "validation_record_path",
    "write_validation_record",
]

PRIOR_DOMINATED_RATIO = 0.7
# The overlap of N(0, 1) and N(0, 0.7): the overlap at which a posterior of the prior's
# mean would have been flagged by the former SD-ratio rule (0.829; computed by quadrature).
PRIOR_OVERLAP = 0.83
PRIOR_SHIFT = 0.02
_OVERLAP_BINS = 40


def _block_words(block: str) -> str:
    """A hazard block in words: the event's title, or the conditional severity."""
    return "grade >= 3 share of flares" if block == SEVERITY else event_title(block)


PARAM_WORDS = {
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
    "cum_exposure": "exposure carried from earlier cycles",
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
    # A config without `rules`: what the protocol then does on each event (the defaults,
    # Rules.describe()); None when the config states its rules.
    no_rules: list[str] | None = None

    def to_json(self) -> dict:
        """The fields as a dict (its values are the caveats' own: JSON-able, not copied)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if out["no_rules"] is None:  # runs with rules write caveats.json as before
            del out["no_rules"]
        return out

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
    feature is not zero in some exposed cycle of the schedule taken as planned. The
    covariate features are those of :func:`lenasim.core.vocabulary.covariate_features`
    for the scenario's population (anyone aged 65 or more counts as elderly); a term
    neither it nor the exposure features know is counted as used, so a new term is
    flagged rather than silently skipped."""
    f = nominal_features(scenario.regimen.expand())
    on = f["exposed"] > 0
    pop = scenario.population
    cov = covariate_features(
        pop.setting, pop.partner_classes, pop.steroid_prophylaxis,
        float(pop.elderly_share > 0), np.asarray(f["first"], float),
    )  # fmt: skip
    out: dict[str, list[str]] = {}
    for block, names in terms.items():
        used = ["intercept"]
        if block != SEVERITY:
            used += (["tau"] if scenario.population_effect == "new_trial" else []) + ["sigma"]
        for t in names:
            feature = cov.get(t, f.get(t))
            if feature is None or np.any(np.abs(np.asarray(feature, float)[on]) > 1e-12):
                used.append(t)
        out[block] = used
    return out


def overlap(a: np.ndarray, b: np.ndarray, bins: int = _OVERLAP_BINS) -> float:
    """The overlap of two samples' densities: over 40 bins of equal mass in the pooled
    sample (fine where the draws are, so a heavy-tailed prior does not blur its bulk), the
    sum of the smaller of the two shares. 1 for the same distribution, 0 for disjoint
    ones; finite samples bias it slightly down (see :func:`overlap_threshold`). Computed
    on the sorted samples, with np.quantile's edges and np.histogram's counts bit for bit."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    pooled = np.sort(np.concatenate([a, b]))
    q = np.linspace(0.0, 1.0, bins + 1)
    nan = np.isnan(pooled[-1])  # NaN sorts last: NumPy's own functions (which refuse it)
    edges = np.unique(np.quantile(pooled, q) if nan else sorted_quantile(pooled, q))
    if edges.size < 2:
        return 1.0
    counts = [np.histogram(x, edges)[0] if nan else np.diff(np.concatenate([
        x.searchsorted(edges[:-1], "left"), x.searchsorted(edges[-1:], "right")]))
        for x in (a, b)]  # fmt: skip
    return float(np.minimum(counts[0] / a.size, counts[1] / b.size).sum())


def sorted_quantile(s: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(s, q)`` of a sorted sample without NaN by NumPy's arithmetic: index
    (n - 1) q, ``a + (b - a) t`` (``b - (b - a)(1 - t)`` where t >= 1/2)."""
    virtual = (s.size - 1) * np.asarray(q, float)
    prev = np.floor(virtual)
    nxt = prev + 1
    prev[virtual >= s.size - 1] = nxt[virtual >= s.size - 1] = -1
    gamma = virtual - prev
    a, b = s[prev.astype(np.intp)], s[nxt.astype(np.intp)]
    out = a + (b - a) * gamma
    np.subtract(b, (b - a) * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


@functools.cache
def overlap_threshold(n_prior: int, n_post: int) -> float:
    """:data:`PRIOR_OVERLAP` as :func:`overlap` estimates it from ``n_prior`` and
    ``n_post`` draws: the mean over 20 replicates (fixed seed) of the estimated overlap of
    N(0, 1) and N(0, 0.7), so the estimator's small-sample bias does not move the rule."""
    rng = np.random.default_rng(20261207)
    reps = [overlap(rng.normal(size=n_prior), rng.normal(scale=PRIOR_DOMINATED_RATIO,
                                                          size=n_post)) for _ in range(20)]  # fmt: skip
    return float(np.mean(reps))


def _values(d: HazardDraws, block: str, param: str) -> np.ndarray | None:
    if param == "intercept":
        return d.intercept.get(block)
    if param in ("tau", "sigma"):
        return getattr(d, param).get(block)
    return d.coefs.get(block, {}).get(param)


def prior_dominance(
    prior: HazardDraws, post: HazardDraws, used: dict[str, list[str]]
) -> list[dict]:
    """Per used parameter (both groups must have it): its prior-posterior ``overlap``,
    posterior SD / prior SD (``ratio``) and the posterior mean's shift from the prior
    mean in prior SDs (``shift``)."""
    rows = []
    for block in (*EVENTS, SEVERITY):
        for param in used.get(block, []):
            a, b = _values(prior, block, param), _values(post, block, param)
            if a is None or b is None or np.std(a) <= 1e-9 * (1 + abs(np.mean(a))):
                continue
            rows.append({
                "block": block, "param": param,
                "label": f"{_block_words(block)}: {PARAM_WORDS.get(param, param)}",
                "ratio": float(np.std(b) / np.std(a)),
                "shift": float(abs(np.mean(b) - np.mean(a)) / np.std(a)),
                "overlap": overlap(a, b),
                "threshold": overlap_threshold(int(np.size(a)), int(np.size(b))),
            })  # fmt: skip
    return rows


def collect_caveats(scenario, post, spec_path: str | Path) -> Caveats:
    """The caveats of a run of ``scenario`` over the loaded posterior ``post``."""
    path = validation_record_path(spec_path)
    c = Caveats(validation_file=str(path))
    if "rules" not in scenario.model_fields_set:  # the defaults change nothing: say so
        c.no_rules = list(scenario.rules.describe())
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
            (r for r in rows if r["overlap"] >= r["threshold"]), key=lambda r: -r["overlap"]
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


def decision_caveat(validation: dict | None) -> str:
    """The caveat of every page where a decision is read, in one sentence a haematologist
    understands first, the statistics behind it second.

    ``validation`` is the ``validation`` part of a run's caveats.json (the latest
    leave-one-trial-out record). When the model predicts the held-out trials no better
    than a random-effects meta-analysis blind to dose and schedule (ELPD difference below
    2 SE), the trials cannot rank schedules: the ranking is the dose prior's."""
    loto = (validation or {}).get("loto") or {}
    mm = loto.get("model_vs_meta") or {}
    if not loto:
        return (
            "Nothing shows yet that these trials can rank schedules: the ranking comes from "
            "the assumption that risk rises with dose. (The model has no leave-one-trial-out "
            "validation; run `python -m lenasim validate`.)"
        )
    stats = (
        f"leave-one-trial-out ({loto.get('date', 'date unknown')}): 90% intervals held "
        f"{_pct(loto['coverage90']['share'])} of {loto['n_rows']} held-out figures"
    )
    if mm and mm["diff"] < 2 * mm["se"]:
        return (
            "The trials cannot rank these schedules: the ranking comes from the assumption "
            "that risk rises with dose, and a probability near 0 or 1 that one schedule is "
            "riskier restates that assumption, not a trial result. (Statistics: the model "
            "predicts held-out trials no better than a random-effects meta-analysis blind to "
            f"dose and schedule, ELPD {mm['diff']:+.1f}, SE {mm['se']:.1f}; {stats}.)"
        )
    extra = f", ELPD against a dose-blind meta-analysis {mm['diff']:+.1f} (SE {mm['se']:.1f})"
    return (
        "The ranking of schedules rests on a model fitted to a few hundred patients, with "
        "risk assumed to rise with dose; read the differences with their intervals. "
        f"(Statistics: {stats}{extra if mm else ''}.)"
    )


def prior_sentence(c: Caveats, limit: int | None = None) -> str:
    """The terms the scenario uses that are mostly prior."""
    if not c.prior_measured:
        return "Prior dominance not measured: the posterior file has no prior draws."
    if not c.prior_dominated:
        return (
            "Every model term this scenario uses was moved by the data: each posterior "
            f"overlaps its prior by less than {PRIOR_OVERLAP:g}."
        )
    rows = c.prior_dominated if limit is None else c.prior_dominated[:limit]
    names = ", ".join(f"{r['label']} ({_overlap_of(r):.2f})" for r in rows)
    more = len(c.prior_dominated) - len(rows)
    tail = f" and {more} more (see the report)" if more > 0 else ""
    return (
        f"Mostly prior (the posterior overlaps the prior by {PRIOR_OVERLAP:g} or more: the "
        f"trials barely moved it), used by this scenario: {names}{tail}."
    )


def _overlap_of(row: dict) -> float:
    """A flagged row's overlap (a caveats.json of an older lenasim has the ratio only)."""
    return float(row.get("overlap", row.get("ratio", np.nan)))


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
        f"{event_title(r['event'])}, {r['quantity']}: {100 * r['shift']:+.1f} percentage points"
        for r in rows
    )
    more = len(moves) - len(rows)
    tail = f"; {more} more" if more > 0 else ""
    return f"Moves under priors {factor} wider: {words}{tail}."


def rules_sentence(c: Caveats) -> str | None:
    """For a config without ``rules``, what the protocol does on each event, in one
    sentence (None when the config states its rules)."""
    if c.no_rules is None:
        return None
    return ("No dose-modification rules in the config (no rule given), so the protocol "
            "carries on whatever happens: " + "; ".join(c.no_rules) + ".")  # fmt: skip


def format_caveats(c: Caveats) -> str:
    """The lines printed under the terminal table: the decision caveat first, then the
    validation, the prior-dominated terms and the prior sensitivity."""
    return "\n".join([
        "Caveat: " + decision_caveat(c.validation), validation_sentence(c),
        prior_sentence(c, limit=4), sensitivity_sentence(c, limit=3),
    ])  # fmt: skip
