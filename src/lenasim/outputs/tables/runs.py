"""Finished runs read back for a comparison: a run folder checked and loaded
(:func:`load_run`), whether two runs can be compared draw by draw (:func:`pairing`), what
differs between them besides the schedule (:func:`differences_in_setup`), and where their
comparison goes by default (:func:`default_out_dir`).

Runs simulated on the same posterior draws with the same seed (and the same cohort
size, population effect and posterior) share their random numbers, so the difference
between two scenarios is computed per posterior draw. Runs whose populations (setting,
share elderly, partner drugs, steroid prophylaxis) or cycle lengths differ are compared
all the same, with a warning: the difference then mixes the schedule with who is
treated, or with how long a cycle is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lenasim.core.errors import LenasimError
from lenasim.outputs.tables.netcdf_read import read_dataset
from lenasim.outputs.tables.verify import verify_run_folder

__all__ = [
    "EVENT_VARS",
    "Run",
    "default_out_dir",
    "differences_in_setup",
    "load_run",
    "pairing",
    "recorded",
    "unique_names",
]

EVENT_VARS = ("per_cycle", "cumulative")
# manifest path -> fallback attribute of draws.nc
PAIRING_FIELDS: tuple[tuple[tuple[str, ...], str | None], ...] = (
    (("hashes", "posterior"), None),
    (("hashes", "posterior_index"), None),
    (("seed",), "seed"),
    (("n_patients",), "n_patients"),
    (("population_effect",), "population_effect"),
)


@dataclass
class Run:
    """A finished run: its folder, draws and manifest (empty if the file is absent);
    ``memo``: what is derived from it once for a whole comparison (its posterior draws,
    :func:`lenasim.outputs.judgements.tipping.ref_posterior`)."""

    name: str
    path: Path
    ds: Any  # xarray.Dataset
    manifest: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict, repr=False, compare=False)


def load_run(path: Path | str) -> Run:
    """Load ``draws.nc`` and ``manifest.json`` of a result folder.

    Raises LenasimError naming the folder if it or its draws are missing, and naming the
    file when the folder does not pass :func:`lenasim.outputs.tables.verify.verify_run_folder`
    (its manifest, the hashes of its files, its limits).
    """
    path = Path(path)
    if not path.is_dir():
        raise LenasimError(
            f"result folder {path} does not exist; run `python -m lenasim run CONFIG` first"
        )
    draws = path / "draws.nc"
    if not draws.is_file():
        raise LenasimError(
            f"result folder {path} has no draws.nc; it is not a finished run "
            f"(re-run the scenario with `python -m lenasim run`)"
        )
    manifest = verify_run_folder(path)  # the manifest, the files' hashes, the limits
    try:
        ds = read_dataset(draws)  # xr.load_dataset's Dataset, ~30% faster for lenasim's files
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        raise LenasimError(f"cannot read {draws}: {err}") from err
    missing = [v for v in EVENT_VARS if v not in ds]
    if missing:
        raise LenasimError(f"{draws} lacks the variable(s) {', '.join(missing)}")
    name = str(manifest.get("name") or ds.attrs.get("scenario") or path.name)
    return Run(name=name, path=path, ds=ds, manifest=manifest)


def recorded(run: Run, keys: tuple[str, ...], attr: str | None) -> Any:
    """A value the run recorded: at ``keys`` in its manifest, else the draws' attribute
    ``attr``."""
    node: Any = run.manifest
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    if node is None and attr is not None:
        node = run.ds.attrs.get(attr)
    if isinstance(node, np.generic):
        node = node.item()
    return node


def _brief(v: Any) -> str:
    """A value for a message: long hashes cut to 12 characters."""
    s = repr(v)
    return s if len(s) <= 24 else s[:13] + "...'"


def pairing(ref: Run, other: Run) -> tuple[bool, list[str]]:
    """Whether ``other`` can be compared with ``ref`` draw by draw, and if not, why.

    Paired needs the same posterior (hash), the same posterior draws (hash of the
    index and the ``posterior_index`` coordinate), seed, n_patients and
    population_effect.
    """
    reasons: list[str] = []
    for keys, attr in PAIRING_FIELDS:
        label = ".".join(keys)
        a, b = recorded(ref, keys, attr), recorded(other, keys, attr)
        if a is None or b is None:
            who = ", ".join(r.name for r, v in ((ref, a), (other, b)) if v is None)
            reasons.append(f"{label} is not recorded for {who}")
        elif str(a) != str(b):
            reasons.append(f"{label} differs: {ref.name}={_brief(a)}, {other.name}={_brief(b)}")
    na, nb = ref.ds.sizes["draw"], other.ds.sizes["draw"]
    if na != nb:
        reasons.append(f"number of posterior draws differs: {ref.name}={na}, {other.name}={nb}")
    elif "posterior_index" in ref.ds.coords and "posterior_index" in other.ds.coords:
        ia = np.asarray(ref.ds["posterior_index"].values)
        ib = np.asarray(other.ds["posterior_index"].values)
        if not np.array_equal(ia, ib):
            reasons.append(
                f"posterior_index (the draws used) differs between {ref.name} and {other.name}"
            )
    return not reasons, reasons


def unique_names(runs: list[Run]) -> list[str]:
    names, seen = [], {}
    for r in runs:
        n = r.name
        if n in seen:
            seen[n] += 1
            n = f"{n} ({r.path})"
        else:
            seen[n] = 0
        names.append(n)
    return names


# (what, path in the manifest's config): who is treated and how long a cycle is
_SETUP_FIELDS = (
    ("setting", ("population", "setting")),
    ("share elderly", ("population", "elderly_share")),
    ("partner drugs", ("population", "partners")),
    ("steroid prophylaxis", ("population", "steroid_prophylaxis")),
    ("cycle length (days)", ("regimen", "cycle_days")),
    ("first cycle length (days)", ("regimen", "first_cycle", "cycle_days")),
)


def _config_value(run: Run, keys: tuple[str, ...]) -> Any:
    node: Any = run.manifest.get("config")
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node


def differences_in_setup(ref: Run, other: Run) -> list[str]:
    """What differs between two runs besides the schedule: population, prophylaxis,
    cycle length (from the configs in their manifests; nothing for runs without one)."""
    if not isinstance(ref.manifest.get("config"), dict) or not isinstance(
        other.manifest.get("config"), dict
    ):
        return []
    out = []
    for what, keys in _SETUP_FIELDS:
        a, b = _config_value(ref, keys), _config_value(other, keys)
        if what == "first cycle length (days)" and (a is None or b is None):
            continue
        if a != b:
            show = (lambda v: ", ".join(v) or "none") if what == "partner drugs" else str
            out.append(f"{what} {show(a)} vs {show(b)}")
    return out


def default_out_dir(result_dirs: list[Path], names: list[str]) -> Path:
    """results/compare-<name1>-vs-<name2>... next to the first run."""
    slug = "-vs-".join(n.replace(os.sep, "_").replace(" ", "_") for n in names)
    return Path(result_dirs[0]).parent / f"compare-{slug}"
