"""Overdose control over a partial order: the choice between candidates the order does not
compare is the in-trial model's (the larger posterior mean risk relative to its limit),
not the config's listing. Before, the next cohort went to the last allowed candidate in
the listed order, so in configs/design_untreated_partial.yaml the branch listed first
(`d21_5_to10`) never had a patient.

The model is the two-parameter logistic working model of test_design_update (prior
draws, one event, one limit) on a diamond: a root, two branches above it that the order
does not compare, and a top above both.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from lenasim.design.rules import OverdoseControl
from lenasim.design.trial import Data
from lenasim.design.update import DrawModel

# root, branch b1, branch b2 (riskier than b1 under the model), top
X = np.array([-1.4, -0.5, 0.3, 1.0])
DIAMOND = ((), (0,), (0,), (1, 2))


def _model(order: list[int], n: int = 2000, seed: int = 11) -> DrawModel:
    """The prior draws with the candidates listed in ``order`` (indices into X)."""
    rng = np.random.default_rng(seed)
    a, lb = rng.normal(-2.0, 0.8, n), rng.normal(-0.3, 0.4, n)
    p = expit(a[:, None] + np.exp(lb)[:, None] * X[None, order])
    return DrawModel(p=p[:, :, None, None], events=np.array([0]), limit_risk=p[:, :, None],
                     limit_max=np.array([0.30]), max_probability=0.25,
                     prior=np.full(n, 1.0 / n))  # fmt: skip


def _data(n: np.ndarray, y: np.ndarray) -> Data:
    return Data(y[:, None, None].astype(float), (n - y)[:, None, None].astype(float), n,
                y.astype(int), n)  # fmt: skip


def test_the_branch_is_chosen_by_the_model_whatever_the_listing():
    """From the root, tried without events, both branches are allowed; the next cohort
    goes to the riskier one (b2) whether it is listed before or after b1."""
    n, y = np.array([3, 0, 0, 0]), np.zeros(4, int)
    listed = OverdoseControl(_model([0, 1, 2, 3]), 1.0, DIAMOND)
    swapped = OverdoseControl(_model([0, 2, 1, 3]), 1.0, DIAMOND)  # b2 listed first
    assert listed.model.acceptable(listed.model.weights(_data(n, y))[0])[:3].all()
    assert listed.decide(_data(n, y), 0, 0).next == 2
    assert swapped.decide(_data(n, y), 0, 0).next == 1  # b2, at its listed position


def test_decisions_do_not_depend_on_how_incomparable_candidates_are_listed():
    """On 300 random data sets, the diamond listed as (root, b1, b2, top) and as (root, b2,
    b1, top) gives the same next candidate, the same stop and the same selection (mapped
    back by name). The old rule (last allowed in listed order) fails this."""
    perm = [0, 2, 1, 3]  # listing B's position i holds listing A's candidate perm[i]
    a_rule = OverdoseControl(_model([0, 1, 2, 3]), 1.0, DIAMOND)
    b_rule = OverdoseControl(_model(perm), 1.0, DIAMOND)
    rng = np.random.default_rng(3)
    differ = 0
    for _ in range(300):
        n = rng.integers(0, 7, 4) * rng.integers(0, 2, 4)
        n[0] = max(n[0], 3)
        y = rng.binomial(n, rng.uniform(0.0, 0.5))
        cur = int(rng.choice(np.flatnonzero(n > 0)))
        da, db = _data(n, y), _data(n[perm], y[perm])
        ca = a_rule.decide(da, cur, 0)
        cb = b_rule.decide(db, perm.index(cur), 0)
        assert ca.stop == cb.stop
        if ca.stop is None:
            assert perm[cb.next] == ca.next
        sa, sb = a_rule.select(da, cur, 0), b_rule.select(db, perm.index(cur), 0)
        assert (sa == sb == -1) or perm[sb] == sa
        differ += ca.next not in (0, 3)
    assert differ > 20  # the branches were in play, not only the root and the top


def test_a_chain_needs_no_model():
    """On a chain the order alone decides (the highest allowed): the model's risks are
    not asked for (a stub without them works)."""

    class _Fixed:
        def weights(self, data):
            return np.ones(1), 1e9

        def acceptable(self, w):
            return np.array([True, True, True])

    chain = ((), (0,), (1,))
    n = np.array([3, 3, 0])
    rule = OverdoseControl(_Fixed(), 1.0, chain)
    assert rule.decide(_data(n, n * 0), 1, 1).next == 2
    assert rule.select(_data(n, n * 0), 1, 1) == 1
