"""Issue 22 item 2: the search adds posterior draws to the candidates whose verdict is
undecided (P(exceed) within 2 MCSE of the threshold) until they resolve or a budget ends."""

from __future__ import annotations

from conftest import make_draws
from lenasim.search.refine import refine_undecided


def _rows(n_draws: int, ids: list[str], undecided_below: dict[str, int]) -> list[dict]:
    """A fake evaluation: candidate c is undecided while the cohort has fewer draws than
    ``undecided_below[c]``."""
    return [{"id": c, "n_draws": n_draws, "undecided": n_draws < undecided_below.get(c, 0)}
            for c in ids]  # fmt: skip


def test_undecided_candidates_get_more_draws_until_they_resolve():
    draws = make_draws(64, seed=1)
    cands = ["a", "b", "c"]
    need = {"b": 30, "c": 1000}  # b resolves at 32 draws, c never (the posterior has 64)
    calls = []

    def evaluate(subset, cohort):
        calls.append((list(subset), cohort.draws.n_draws))
        assert len(cohort.posterior_index) == cohort.draws.n_draws
        return _rows(cohort.draws.n_draws, list(subset), need)

    rows, info = refine_undecided(cands, _rows(8, cands, need), draws, 8, 5, evaluate)
    assert calls == [(["b", "c"], 16), (["b", "c"], 32), (["c"], 64)]
    assert [r["n_draws"] for r in rows] == [8, 32, 64]  # a untouched
    assert [r["undecided"] for r in rows] == [False, False, True]
    assert info.rounds == 3 and info.still_undecided == 1 and info.max_draws == 64
    assert "no more than 64 draws" in info.stopped


def test_no_time_left_means_no_refinement():
    draws = make_draws(64, seed=1)
    rows0 = _rows(8, ["a"], {"a": 100})
    rows, info = refine_undecided(["a"], rows0, draws, 8, 5, lambda s, c: 1 / 0,
                                  seconds_left=0.0)  # fmt: skip
    assert rows == rows0 and info.rounds == 0 and info.stopped == "the time budget ended"
