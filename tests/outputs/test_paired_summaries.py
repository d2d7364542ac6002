"""The vectorised paired summaries of comparison.csv and dose_differences.csv give the same
numbers, bit for bit, as computing each cell on its own over its defined draws (the
per-cell loop they replaced, kept here as the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from lenasim.outputs.tables.paired import _NAMES, _summaries
from lenasim.outputs.tables.summaries import probability_mcse


def _per_cell(ref: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    ok = ~(np.isnan(ref) | np.isnan(other))
    flat_r, flat_o = ref.reshape(ref.shape[0], -1), other.reshape(other.shape[0], -1)
    flat_ok = ok.reshape(ok.shape[0], -1)
    out = {k: np.full(flat_r.shape[1], np.nan) for k in _NAMES}
    out["identical"] = np.zeros(flat_r.shape[1], bool)
    for j in range(flat_r.shape[1]):
        m = flat_ok[:, j]
        if not m.any():
            continue
        a, b = flat_r[m, j], flat_o[m, j]
        for prefix, x in (("ref", a), ("scen", b)):
            out[f"{prefix}_mean"][j] = x.mean()
            out[f"{prefix}_q05"][j], out[f"{prefix}_q95"][j] = np.quantile(x, [0.05, 0.95])
        d = b - a
        out["diff_mean"][j] = d.mean()
        q = np.quantile(d, [0.05, 0.5, 0.95])
        out["diff_q05"][j], out["diff_q50"][j], out["diff_q95"][j] = q
        out["diff_mcse"][j] = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else 0.0
        pos = a > 0
        out["n_ratio"][j] = pos.sum()
        if pos.any():
            q = np.quantile(b[pos] / a[pos], [0.05, 0.5, 0.95])
            out["ratio_q05"][j], out["ratio_q50"][j], out["ratio_q95"][j] = q
        hits = (d > 0).astype(float)
        out["p_riskier"][j] = hits.mean()
        out["p_riskier_mcse"][j] = probability_mcse(hits)
        out["identical"][j] = bool(np.all(d == 0))
    res = {k: v.reshape(ref.shape[1:]) for k, v in out.items()}
    res["n_draws"] = ok.sum(axis=0)
    return res


@pytest.mark.parametrize("draws", [1, 2, 57, 1000])
def test_summaries_equal_the_per_cell_computation_bit_for_bit(draws):
    rng = np.random.default_rng(draws)
    shape = (draws, 3, 7)
    ref = rng.beta(0.5, 3.0, shape)
    other = ref + rng.normal(0.0, 0.05, shape)
    ref[:, 0, 1] = 0.0  # no draw with a positive reference: no ratio
    ref[: draws // 2, 0, 2] = 0.0  # a ratio over some draws only
    other[:, 1, 3] = ref[:, 1, 3]  # identical in every draw
    ref[:, 2, 4] = np.nan  # no draw defines the cell
    ref[rng.random(draws) < 0.3, 2, 5] = np.nan  # some draws define it
    other[rng.random(draws) < 0.3, 2, 6] = np.nan
    got, want = _summaries(ref, other), _per_cell(ref, other)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k, strict=True)
