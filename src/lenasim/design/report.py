"""report.md of a design: a summary a committee reads first, then the details.

The summary: the design in one sentence, the caveat in one line, one row per truth
(P(stop for toxicity), the most often selected candidate, P(the selected exceeds each
limit), mean patients, the candidates truly within every limit) and one sentence per
truth on its stops for toxicity: a *false stop* is a trial that stops for toxicity
although at least one candidate was truly within every limit (its truth's risks, the
ones ``p_selected_over_limit`` uses). Then per truth the candidates' true risks and the
operating characteristics with readable labels, the decision table in words and what
the numbers cannot say. Identifiers (candidates, truths) appear in code spans only.

Every number is read from the result's tables (``operating_characteristics.csv``,
``trials.csv``), so the report says what the CSVs say. Zero counts are written as
"0 of T trials" with the 95% upper bound 3/T (the rule of three).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from lenasim.core.vocabulary import event_title
from lenasim.design.config import DesignConfig
from lenasim.design.simulate import DesignResult

__all__ = ["CAVEAT", "design_report", "false_stops"]

CAVEAT = (
    "the truths come from a posterior whose schedule differences rest on the dose priors "
    "(the published trials cannot rank these schedules), so these operating "
    "characteristics are only as good as that assumption."
)

_STOPS = {
    "too_toxic": "stopped for toxicity (the lowest candidate unacceptable), none selected",
    "enough_patients": "ended with enough patients on the candidate recommended next (none "
    "is selected when no candidate tried is acceptable at the end)",
    "max_patients": "ended at the maximum number of patients",
    "design_end": "ended by the rule's own conclusion (3+3)",
}


def _order_words(cfg) -> str:
    if cfg.order == "intensity":
        return "planned mg per day over the cycles"
    if cfg.order == "partial":
        return ("a partial order: each candidate is compared only with those it is stated "
                "to be above; others are not ranked, and between them the next cohort (and "
                "the selection) goes to the one the in-trial posterior expects nearest its "
                "limits: the larger mean risk relative to the limit")  # fmt: skip
    return "as listed in the config, not checked against planned intensity"


def _above_words(cfg, name: str) -> str:
    if cfg.order != "partial":
        return ""
    above = next((c.above for c in cfg.candidates if c.name == name), None) or []
    return "; above " + ", ".join(f"`{a}`" for a in above) if above else "; a least intense one"


def _stop_words(cfg) -> str:
    """The stop for toxicity, when it is not the escalation rule's own threshold."""
    d = cfg.decide
    if d.rule != "overdose_control" or (d.stop_probability is None and d.min_patients_to_stop
                                        is None):  # fmt: skip
        return ""
    p = cfg.limits.max_probability if d.stop_probability is None else d.stop_probability
    text = f"; the trial stops for toxicity when the lowest candidate's P(risk > limit) > {p:g}"
    if d.min_patients_to_stop is not None:
        text += f" once it has at least {d.min_patients_to_stop} patients"
    return text


def _num(v: float, digits: int = 1) -> str:
    if v is None or np.isnan(v):
        return "n/a"
    v = round(float(v), digits)
    return f"{(v if v != 0 else 0.0):,.{digits}f}"  # never "-0.0"


def _pct(v: float, se: float, n: int) -> str:
    """A proportion of n trials with its MCSE; 0 and n trials as counts (0 with its 95%
    upper bound 3/n)."""
    if np.isnan(v):
        return "n/a"
    k = int(round(v * n))
    if k == 0:
        return f"0 of {n:,} trials (95% upper bound {_num(300 / n)}%)"
    if k == n or round(100 * se, 1) == 0 or round(100 * (1 - v), 1) == 0:
        return f"{k:,} of {n:,} trials"  # an MCSE that would read "± 0.0"
    return f"{_num(100 * v)}% (± {_num(100 * se)})"


def _mean(v: float, se: float, digits: int = 2) -> str:
    if np.isnan(v):
        return "n/a"
    if se == 0 or np.isnan(se):
        return f"{_num(v, digits)} in every trial" if se == 0 else _num(v, digits)
    if round(se, digits) == 0:  # not "± 0.00"
        return f"{_num(v, digits)} (± < {_num(0.5 * 10**-digits, digits + 1)})"
    return f"{_num(v, digits)} (± {_num(se, digits)})"


def _ordinal(p: float) -> str:
    if p == 50:
        return "median"
    n = f"{p:g}"
    suffix = "th" if n.endswith(("11", "12", "13")) or "." in n else {
        "1": "st", "2": "nd", "3": "rd"}.get(n[-1], "th")  # fmt: skip
    return f"{n}{suffix} percentile"


def _truth_words(truth) -> str:
    if truth.kind == "new_trial":
        return "a new trial: each simulated trial its own truth, a posterior draw with a new trial effect"
    if truth.kind == "percentile":
        return (f"one fixed truth: the posterior draw at the {_ordinal(truth.percentile)} of "
                "risk on the starting candidate")  # fmt: skip
    shifts = ", ".join(f"{event_title(k).lower()} odds x {math.exp(v):.1f}"
                       for k, v in truth.trial_effect.items())  # fmt: skip
    return f"a user-written truth: each trial a posterior draw, in a trial with {shifts}"


def _within(risks: np.ndarray, lmax: np.ndarray) -> np.ndarray:
    """(T, J) True where the candidate's true risk is within every limit in that trial."""
    return (risks <= lmax[None, None, :]).all(axis=2)


def false_stops(stops: np.ndarray, within: np.ndarray, start: int) -> dict[str, tuple]:
    """P(stop for toxicity although some candidate / the starting candidate was truly
    within every limit) with its binomial MCSE: stops (T,), within (T, J)."""
    tox = stops == "too_toxic"
    out = {}
    for key, hit in (("any", tox & within.any(axis=1)), ("start", tox & within[:, start])):
        p = float(hit.mean())
        out[key] = (p, math.sqrt(p * (1 - p) / hit.size))
    return out


class _View:
    """One truth's operating characteristics, looked up by (quantity, candidate, what)."""

    def __init__(self, oc: pd.DataFrame):
        self.oc = oc = oc.fillna({"candidate": "", "what": ""})
        self._rows: dict[tuple[str, str, str], tuple[float, float]] = {}
        for key in zip(oc.quantity, oc.candidate, oc.what, oc.value, oc.mcse, strict=True):
            self._rows.setdefault(key[:3], (float(key[3]), float(key[4])))  # the first row

    def get(self, quantity: str, candidate: str = "", what: str = "") -> tuple[float, float]:
        return self._rows.get((quantity, candidate, what), (np.nan, np.nan))


def _code(names) -> str:
    return ", ".join(f"`{n}`" for n in names)


def design_report(cfg: DesignConfig, res: DesignResult, posterior_note: str) -> str:
    """The Markdown report (see the module docstring)."""
    names = [c.name for c in cfg.candidates]
    words = {c.name: c.regimen.describe() for c in cfg.candidates}
    limits = list(cfg.limits.items())
    lnames = [lim.describe(ev) for ev, lim in limits]
    lshort = [event_title(ev).lower() for ev, _ in limits]
    lmax = np.array([lim.max for _, lim in limits])
    n, start = cfg.trials, cfg.start_index
    truths = {t.name: t for t in cfg.truths}
    views = {t: _View(g) for t, g in res.oc.groupby("truth", sort=False)}

    lines = [f"# Design `{cfg.name}`", "", "## Summary", "", cfg.description.strip(), "",
             f"**Caveat:** {CAVEAT}", "",
             f"{n:,} simulated trials per truth; posterior: {posterior_note}; rule: "
             f"{cfg.decide.rule.replace('_', ' ')}; cohorts of {cfg.trial.cohort_size}, at most "
             f"{cfg.trial.max_patients} patients, starting at `{cfg.trial.start}`. Values are "
             "over the simulated trials, ± their Monte Carlo SE (percentage points for "
             f"percentages); \"0 of {n:,} trials\" comes with its 95% upper bound 3/{n:,} "
             "(the rule of three).", ""]  # fmt: skip
    head = ["truth", "P(stop for toxicity)", "most often selected"]
    head += [f"P(the selected exceeds the {s} limit)" for s in lshort]
    head += ["mean patients", "truly within every limit"]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    sentences, details = [], []
    for truth, v in views.items():
        risks = res.risks.get(truth)
        stops = res.trials.loc[res.trials.truth == truth, "stop"].to_numpy()
        sel = [(v.get("p_select", c)[0], c) for c in names]
        best_p, best = max(sel)
        best_txt = (f"`{best}`: {_pct(*v.get('p_select', best), n)}" if best_p > 0
                    else "none selected")  # fmt: skip
        row = [f"`{truth}`", _pct(*v.get("p_stop", what="too_toxic"), n), best_txt]
        row += [_pct(*v.get("p_selected_over_limit", what=ln), n) for ln in lnames]
        row.append(_mean(*v.get("patients"), digits=1))
        within_txt, sentence = "not recorded", ""
        if risks is not None and risks.size:
            within = _within(risks, lmax)
            fixed = bool(np.all(risks == risks[:1]))
            within_txt = _within_words(within, names, fixed)
            sentence = _stop_sentence(truth, v, stops, within, fixed, names, start, n)
        row.append(within_txt)
        lines.append("| " + " | ".join(row) + " |")
        sentences.append(sentence)
        details += _details(truth, truths.get(truth), v, risks, names, words, lnames, lshort,
                            lmax, n)  # fmt: skip
    lines += ["", "Truths:", ""]
    lines += [f"- `{t}`: {_truth_words(truths[t])}" for t in views if t in truths]
    lines += ["", "Stops for toxicity:", "", *[f"- {s}" for s in sentences if s]]
    lines += [
        "",
        "## Candidates and limits",
        "",
        "Candidates, in the design's order (" + _order_words(cfg) + "):",
        "",
    ]
    lines += [f"- `{c}`: {words[c]}" + _above_words(cfg, c) for c in names]
    lines += ["", "Limits (overdose control: a candidate is acceptable when P(risk > limit) "
              f"<= {cfg.limits.max_probability:g}{_stop_words(cfg)}):", ""]  # fmt: skip
    lines += [f"- {ln}" for ln in lnames]
    lines += ["", "A candidate is *truly within* a limit when its true risk under the truth, "
              f"the engine's risk for {cfg.population.patients:,} virtual patients, is at most "
              "the limit (what P(the selected exceeds a limit) uses); a candidate a few tenths "
              "of a point from a limit is near the line."]  # fmt: skip
    lines += details
    lines += _decision_table(cfg, res.decisions, names)
    caveats = list(_CAVEATS)
    if not cfg.update.frailty:
        caveats[1] = caveats[1].replace(_FRAIL, "each cycle independent given the draw")
    lines += ["", "## What these numbers cannot say", "", *caveats]
    return "\n".join(lines) + "\n"


def _within_words(within: np.ndarray, names: list[str], fixed: bool) -> str:
    if fixed:
        return _which(names, within[0])
    all_, none = within.all(axis=1).mean(), (~within.any(axis=1)).mean()
    return (f"varies by trial: all in {_num(100 * all_)}% of trials, none in "
            f"{_num(100 * none)}%")  # fmt: skip


def _which(names: list[str], ok: np.ndarray) -> str:
    """The candidates where ``ok``, in words: all, none, all but a few, or their list."""
    yes = [c for c, w in zip(names, ok, strict=True) if w]
    no = [c for c in names if c not in yes]
    if not no:
        return "all"
    if not yes:
        return "none"
    return f"all but {_code(no)}" if len(no) < len(yes) else _code(yes)


def _of_trials(text: str) -> str:
    return text if "trials" in text else f"{text} of trials"


def _stop_sentence(truth, v, stops, within, fixed, names, start, n) -> str:
    tox = _of_trials(_pct(*v.get("p_stop", what="too_toxic"), n))
    fs = false_stops(stops, within, start)
    if fixed:
        ok = within[0]
        if not ok.any():
            return (f"Under `{truth}` no candidate is truly within every limit, so its stops "
                    f"for toxicity, in {tox}, are right.")  # fmt: skip
        which = _which(names, ok)
        who = ("every candidate is" if ok.all() else
               ("every candidate" + which[3:] if which.startswith("all but") else which)
               + (" (the starting one among them)" if ok[start] else " (not the starting one)")
               + (" is" if ok.sum() == 1 or which.startswith("all but") else " are"))  # fmt: skip
        return (f"Under `{truth}` {who} truly within every limit, yet the trial stops for "
                f"toxicity in {tox}: each of these is a false stop.")  # fmt: skip
    return (f"Under `{truth}` (each trial its own truth) the trial stops for toxicity in "
            f"{tox}; false stops, where at least one candidate was truly within every limit: "
            f"{_of_trials(_pct(*fs['any'], n))}; of them, where the starting candidate was: "
            f"{_of_trials(_pct(*fs['start'], n))}.")  # fmt: skip


def _details(truth, spec, v, risks, names, words, lnames, lshort, lmax, n) -> list[str]:
    lines = ["", f"## Truth `{truth}`", ""]
    if spec is not None:
        lines += [_truth_words(spec)[0].upper() + _truth_words(spec)[1:] + ".", ""]
    fixed = risks is not None and risks.size and bool(np.all(risks == risks[:1]))
    what = "true risk" if fixed else "median true risk (trials within)"
    head = ["candidate"] + [f"{s}: {what}" for s in lshort]
    head += ["within every limit", "P(selected)", "mean patients"]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for j, c in enumerate(names):
        row = [f"`{c}`: {words[c]}"]
        if risks is not None and risks.size:
            r, ok = risks[:, j, :], risks[:, j, :] <= lmax[None, :]
            if fixed:
                row += [f"{_num(100 * r[0, li], 2)}% ({'within' if ok[0, li] else 'over'})"
                        for li in range(lmax.size)]  # fmt: skip
                row.append("yes" if ok[0].all() else "no")
            else:
                row += [f"{_num(100 * np.median(r[:, li]), 2)}% ({_num(100 * ok[:, li].mean())}%)"
                        for li in range(lmax.size)]  # fmt: skip
                row.append(f"in {_num(100 * ok.all(axis=1).mean())}% of trials")
        else:
            row += ["n/a"] * (lmax.size + 1)
        row += [_pct(*v.get("p_select", c), n), _mean(*v.get("patients", c))]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"No candidate selected: {_pct(*v.get('p_select', 'none'), n)}.", ""]
    head = ["limit", "P(the selected exceeds it)", "mean patients treated above it",
            "90% interval of its risk at the selected, width today (points)",
            "width after the trial (points)"]  # fmt: skip
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    none = v.get("p_select", "none")[0] == 1
    for ln in lnames:
        wp, wa = v.get("width_prior", what=ln), v.get("width_after", what=ln)
        if np.isnan(wp[0]):  # no trial selected a candidate, or a rule without a posterior
            gap = "no trial selects a candidate" if none else "the rule keeps no posterior"
            lines.append(f"| {ln} | {_pct(*v.get('p_selected_over_limit', what=ln), n)} | "
                         f"{_mean(*v.get('patients_over_limit', what=ln))} | {gap} | {gap} |")  # fmt: skip
            continue
        lines.append(f"| {ln} | {_pct(*v.get('p_selected_over_limit', what=ln), n)} | "
                     f"{_mean(*v.get('patients_over_limit', what=ln))} | "
                     f"{_mean(100 * wp[0], 100 * wp[1], 1)} | "
                     f"{_mean(100 * wa[0], 100 * wa[1], 1)} |")  # fmt: skip
    lines += ["", "| per trial | mean (± MCSE) |", "| --- | --- |"]
    ev = v.oc[v.oc.quantity == "patients_with_event"]
    rows = [("patients", _mean(*v.get("patients"))),
            ("of them backfilled", _mean(*v.get("patients_backfill")))]  # fmt: skip
    rows += [(f"patients with {event_title(e).lower()} at least once over their planned "
              "cycles", _mean(*v.get("patients_with_event", what=e))) for e in ev.what]  # fmt: skip
    rows += [("days from the first enrolment to the last decision",
              _mean(*v.get("duration_days"), digits=0)),
             ("dose intensity delivered (mg/day)", _mean(*v.get("dose_intensity", what="mg/day"))),
             ("decisions whose update had too few effective draws (an escalation became a stay)",
              _mean(*v.get("low_ess_decisions")))]  # fmt: skip
    lines += [f"| {a} | {b} |" for a, b in rows]
    lines += ["", "| how the trial ended | P (± MCSE) |", "| --- | --- |"]
    for reason, text in _STOPS.items():
        p = v.get("p_stop", what=reason)
        if not np.isnan(p[0]):
            lines.append(f"| {text} | {_pct(*p, n)} |")
    return lines


_COUNT = re.compile(r"(\d+)/(\d+) on (.+)")


def _decision_table(cfg: DesignConfig, dec: pd.DataFrame, names: list[str]) -> list[str]:
    fu = cfg.trial.followup_days

    def cohort(s: str, event: str) -> str:
        m = _COUNT.fullmatch(str(s))
        if not m:
            return ""
        return f"{m[1]} of {m[2]} on `{m[3]}` with {event}"

    def nxt(s: str) -> str:
        s = str(s)
        if s.startswith("stop ("):
            reason = s[6:-1]
            return (
                "stop: too toxic" if reason == "too_toxic" else f"stop: {reason.replace('_', ' ')}"
            )
        return f"`{s}`" if s in names else s

    lines = ["", "## Decision table (first two cohorts)", "",
             f"The next candidate after each outcome of the first two cohorts, the decision "
             f"taken {fu:g} days after each cohort started. A count is of patients with the "
             "limit's event in cycle 1; every other patient of both cohorts is assumed free "
             "of every event so far (no flare of any grade, no tumor lysis syndrome, no "
             "neutropenia): the update also counts low-grade flares, which this table takes "
             "as none. A grade >= 3 flare counts as a flare too.", "",
             "| first cohort | then | second cohort | next |", "| --- | --- | --- | --- |"]  # fmt: skip
    for r in dec.itertuples(index=False):
        event = event_title(r.event).lower()
        second = cohort(r.cohort_2, event) if str(r.cohort_2) not in ("", "nan") else ""
        nx = nxt(r.next) if second else ""
        lines.append(f"| {cohort(r.cohort_1, event)} | {nxt(r.then)} | {second} | {nx} |")
    return lines


_FRAIL = (
    "each patient's cycles sharing his frailty (`update.frailty`; a cycle's conditional "
    "risk is the engine's average patient's, not the patient's own dose path)"
)
_CAVEATS = [
    "- The truths are drawn from the lenasim posterior, whose schedule differences are "
    "carried by the monotone dose priors (leave-one-trial-out: the dose structure predicts "
    "no better than a meta-analysis that ignores dose). A design's operating "
    "characteristics are only as good as that spread of truths.",
    "- The in-trial update reweights the posterior's draws by a working likelihood over "
    "every event of the hazards the limits name (flares of any grade with their grade "
    "when a limit names grade >= 3 flare), " + _FRAIL + "; it has "
    "been checked against an exact grid posterior for a small dose-level model and against "
    "NUTS refits of the full model with the trial's patient-cycles "
    "(`benchmarks/README.md`). Below the ESS floor an escalation becomes a stay.",
    "- Events are placed at mid-cycle (as the engine does): an event is seen half a cycle "
    "after the cycle starts; follow-up without an event counts as the share of the cycle "
    "elapsed.",
    "- Monte Carlo SEs are those of the simulated trials; they do not include the "
    "posterior's own uncertainty about the truth beyond the spread of truths simulated.",
]
