"""Plain citations for what users read: authors, journal, year (and volume:page).

The evidence table's ``source`` and ``citation`` fields also say where lenasim's
curators found each figure (seed files such as "seed 001 s3.1", "(evidence notes)",
web addresses). That is provenance for the table's maintainers; reports, the terminal
and figures cite the publication only. The full fields stay in the table and in
``python -m lenasim evidence --csv``.
"""

from __future__ import annotations

import re

__all__ = ["plain_citation", "trial_citation"]

# Parenthesised remarks about where a figure was found, not what was published.
_INTERNAL_PAREN = re.compile(
    r"\s*\((?=[^()]*\b(?:seed|seeds|notes?|evidence)\b)[^()]*\)", flags=re.IGNORECASE
)
_SEED = re.compile(r"(?:,\s*)?\bseeds? \d{3}(?:\s+(?:s\d[\d.]*|Table \d+|Fig \d+))*", re.I)
_URL = re.compile(r"(?:,\s*)?(?:abstract at |summary at )?\bhttps?://\S+", re.IGNORECASE)
_FILE = re.compile(r"\b\d{3}_[0-9a-f]{8,}\.txt\b|\bevidence-notes\.md\b(?::\S*)?")
_LEAD = re.compile(r"^(?:notes?|evidence notes),\s*", re.IGNORECASE)


def plain_citation(text: str) -> str:
    """``text`` without the curators' pointers (seed files, notes, web addresses).

    >>> plain_citation("Ferrajoli A et al., Blood 2008;111:5291 (commentary: Blood 2008, seed 002)")
    'Ferrajoli A et al., Blood 2008;111:5291'
    >>> plain_citation("Chen CI et al., J Clin Oncol 2011;29:1175, abstract (seed 003)")
    'Chen CI et al., J Clin Oncol 2011;29:1175, abstract'
    """
    parts = []
    for part in _split(str(text)):
        p = _FILE.sub("", part)
        p = _INTERNAL_PAREN.sub("", p)
        p = _URL.sub("", p)
        p = _SEED.sub("", p)
        p = _LEAD.sub("", p.strip())
        p = re.sub(r"\s{2,}", " ", p).strip(" ,")
        if p:
            parts.append(p)
    # "Blood 2008;111:5291" was split at its ';': join volume and page parts back on.
    out: list[str] = []
    for p in parts:
        if out and re.fullmatch(r"[\d()]+(?::[\d\-]+)?(?:[ ,].*)?", p):
            out[-1] = f"{out[-1]};{p}"
        else:
            out.append(p)
    return "; ".join(dict.fromkeys(out))


def _split(text: str) -> list[str]:
    """Split at the semicolons outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == ";" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def trial_citation(arms) -> str:
    """The plain citation of a trial from its arms (each distinct citation once)."""
    return " / ".join(dict.fromkeys(plain_citation(a.citation) for a in arms))
