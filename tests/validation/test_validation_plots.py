"""The calibration figure gives every outcome its own scale."""

from __future__ import annotations

import pandas as pd

from lenasim.validation import plots


def test_calibration_panels_have_their_own_scale(tmp_path, monkeypatch):
    rows = []
    for oc, obs, hi in (("flare_any", 20, 28), ("tls", 1, 3), ("flare_grade3plus", 0, 2),
                        ("neutropenia_grade34", 15, 25)):  # fmt: skip
        rows.append({"outcome": oc, "n": 40, "observed": obs, "pred_median": hi / 2,
                     "lo90": 0, "hi90": hi, "lo50": hi / 4, "hi50": hi / 1.5,
                     "inside90": True, "row_id": oc})  # fmt: skip
    seen = {}
    from matplotlib.figure import Figure

    # the panels' scales, read where the figure would be written; not written (the
    # drawing is 2/3 of the test's CPU and shows nothing about the scales; issue 22.12);
    # no docstring: pyplot, imported after this, would wrap it
    def keep(fig, *a, **k):
        seen.update({ax.get_title().split(" (")[0]: ax.get_ylim()[1] for ax in fig.axes})

    monkeypatch.setattr(Figure, "savefig", keep)
    assert plots.calibration_plot(pd.DataFrame(rows), tmp_path / "c.png") == tmp_path / "c.png"
    assert seen["tls"] < 0.1 and seen["flare_grade3plus"] < 0.1
    assert seen["flare_any"] > 0.7 and seen["neutropenia_grade34"] > 0.6
