"""The direct posterior reader names each variable's dimensions from the references of
its dimension scales (h5r.get_name): the names of the scales themselves."""

from __future__ import annotations

from pathlib import Path

import h5py

from lenasim.model.posterior import _dims

NC = Path(__file__).resolve().parents[2] / "src" / "lenasim" / "models" / "default.nc"


def test_dims_are_the_dimension_scales_names_for_every_variable():
    seen = 0
    with h5py.File(NC, "r") as f:
        for group in ("posterior", "prior"):
            for var in f[group].values():
                refs = var.attrs.get("DIMENSION_LIST")
                if refs is None:
                    continue
                names = tuple(f[r[0]].name.rsplit("/", 1)[-1] for r in refs)
                assert _dims(f, var) == names, var.name
                seen += 1
    assert seen >= 16
