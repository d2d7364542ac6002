"""More posterior draws for the candidates whose verdict is undecided.

A candidate is undecided when a limit that could decide its feasibility has P(exceed)
within 2 Monte Carlo standard errors of the overdose-control threshold
(:func:`lenasim.search.evaluate.candidate_row`). Such a verdict is noise: the same
schedule may pass at 100 draws and fail at 300. :func:`refine_undecided` re-evaluates
those candidates on twice as many posterior draws (evenly spaced over the chains, as the
first pass; the random streams are keyed by posterior index, so a draw gives the same
numbers in both passes), again and again, until every verdict is decided, the posterior
has no more draws, or the time budget ends. The other candidates keep their rows; each
row says on how many draws it rests (``n_draws``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lenasim.core.hazard import HazardDraws
from lenasim.search.evaluate import Cohort
from lenasim.search.space import Candidate
from lenasim.simulation.streams import select_draws

__all__ = ["Refinement", "refine_undecided"]

Evaluate = Callable[[list[Candidate], Cohort], list[dict]]


@dataclass(frozen=True)
class Refinement:
    """What the refinement did: rounds run, candidates re-evaluated (in total), those
    still undecided, the largest number of draws used and why it stopped."""

    rounds: int
    refined: int
    still_undecided: int
    max_draws: int
    stopped: str

    def describe(self) -> str:
        if not self.rounds:
            return "no undecided verdict" if not self.still_undecided else self.stopped
        return (f"{self.refined} undecided candidate evaluation(s) repeated on more draws in "
                f"{self.rounds} round(s), up to {self.max_draws} draws; "
                f"{self.still_undecided} still undecided ({self.stopped})")  # fmt: skip


def refine_undecided(
    cands: list[Candidate],
    rows: list[dict],
    draws: HazardDraws,
    first_draws: int,
    seed: int,
    evaluate: Evaluate,
    *,
    seconds_left: float | None = None,
) -> tuple[list[dict], Refinement]:
    """Re-evaluate the undecided rows on doubling numbers of posterior draws (see the
    module docstring). ``rows[i]`` is the row of ``cands[i]`` on ``first_draws`` draws;
    ``evaluate(candidates, cohort)`` returns their rows on a cohort. ``seconds_left``
    bounds the time (a round is started only when the last one, scaled to its size,
    fits in what is left)."""

    rows = list(rows)
    n_avail = draws.n_draws
    n, rounds, refined = first_draws, 0, 0
    per_unit = None  # seconds per candidate-draw, measured
    start = time.perf_counter()
    stopped = "every verdict decided"
    while True:
        todo = [i for i, r in enumerate(rows) if r.get("undecided")]
        if not todo:
            stopped = "every verdict decided"
            break
        if n >= n_avail:
            stopped = f"the posterior has no more than {n_avail} draws"
            break
        nxt = min(2 * n, n_avail)
        if seconds_left is not None:
            left = seconds_left - (time.perf_counter() - start)
            if left <= 0 or (per_unit is not None and per_unit * nxt * len(todo) > left):
                stopped = "the time budget ended"
                break
        index = select_draws(n_avail, nxt, seed)
        cohort = Cohort(draws.take(index), index)
        t = time.perf_counter()
        new = evaluate([cands[i] for i in todo], cohort)
        per_unit = (time.perf_counter() - t) / (nxt * len(todo))
        for i, row in zip(todo, new, strict=True):
            rows[i] = row
        n, rounds, refined = nxt, rounds + 1, refined + len(todo)
    still = sum(bool(r.get("undecided")) for r in rows)
    return rows, Refinement(rounds, refined, still, n, stopped)
