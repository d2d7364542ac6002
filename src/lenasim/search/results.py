"""A finished search -> results/search-<name>/, written atomically.

Files: ``candidates.csv`` (ranked, feasible first), ``references.csv``, ``pareto.png``,
``comparison.csv`` (the best schedules against the first reference, paired),
``report.md``, ``manifest.json``, and full ``lenasim run`` result folders for the top k
(``top/01-c0042/``) and for the references (``references/<name>/``), each with the
``scenario.yaml`` that reruns it with the same numbers. The run folders are written by
the function the caller passes (``lenasim run``'s writer), so they are what ``run``
writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from lenasim.core.writers import record_files, write_atomically
from lenasim.outputs.judgements.caveats import decision_caveat, validation_record_path
from lenasim.search.config import SearchConfig
from lenasim.search.figures import plot_pareto, save_pareto
from lenasim.search.pareto import rank_table
from lenasim.search.report import Compared, paired_comparison, search_report
from lenasim.search.space import Candidate, Space, candidate_scenario

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

    from lenasim.simulation.scenario import Scenario

__all__ = [
    "SearchResult",
    "no_blanks",
    "reference_candidates",
    "search_caveat",
    "tables",
    "write_search",
]

FLOAT_FORMAT = "%.6g"
# Writes one `lenasim run` result folder for a scenario and returns its dataset.
RunWriter = Callable[["Scenario", Path], "xr.Dataset"]


def reference_candidates(cfg: SearchConfig) -> list[Candidate]:
    return [Candidate(r.name, r.regimen, r.steroid_prophylaxis) for r in cfg.references]


def tables(
    cfg: SearchConfig, candidate_rows: list[dict], reference_rows: list[dict]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ranked candidates and the references (with ``feasible``), as DataFrames."""
    import pandas as pd

    table = rank_table(pd.DataFrame(candidate_rows), cfg)
    refs = pd.DataFrame(reference_rows)
    if len(refs):
        refs.insert(0, "feasible", refs["max_excess"] <= 0)
    return table, refs


@dataclass
class SearchResult:
    """Everything the results folder is written from."""

    cfg: SearchConfig
    config_path: Path
    space: Space
    table: pd.DataFrame
    references: pd.DataFrame
    posterior: dict
    execution: dict
    manifest: dict = field(default_factory=dict)


def _scenario_yaml(sc: Scenario, header: str, folder: Path | None = None) -> str:
    """The scenario as a config file; with ``folder`` (where the file will live), its paths
    are written relative to it, as a config's paths are read."""
    data = sc.model_dump(mode="json", exclude_none=True)
    if folder is not None:
        here = os.path.abspath(folder)
        data["posterior"]["spec"] = os.path.relpath(os.path.abspath(sc.posterior.spec), here)
        data["output"] = os.path.relpath(os.path.abspath(sc.output), here)
    body = yaml.safe_dump(data, sort_keys=False)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


def write_search(
    result: SearchResult,
    out_dir: Path,
    *,
    write_run: RunWriter | None,
    overwrite: bool,
    plots: bool = True,
) -> None:
    """Write the results folder (see the module docstring); ``write_run`` None skips the
    run folders and the comparison."""
    cfg = result.cfg
    by_id = {c.id: c for c in result.space.candidates}

    def build(tmp: Path) -> None:
        no_blanks(result.table).to_csv(tmp / "candidates.csv", index=False,
                                       float_format=FLOAT_FORMAT)  # fmt: skip
        no_blanks(result.references).to_csv(tmp / "references.csv", index=False,
                                            float_format=FLOAT_FORMAT)  # fmt: skip
        folders: list[str] = []
        comparison = None
        if write_run is not None:
            top = []
            for _, row in result.table.head(cfg.top).iterrows():
                cand = by_id[row["id"]]
                name = f"top/{int(row['rank']):02d}-{cand.id}"
                ds = _run(cfg, cand, tmp, name, out_dir, result.config_path, write_run)
                top.append(Compared(int(row["rank"]), cand, ds))
                folders.append(name)
            refs = []
            for cand in reference_candidates(cfg):
                name = f"references/{cand.id}"
                ds = _run(cfg, cand, tmp, name, out_dir, result.config_path, write_run)
                refs.append(Compared(0, cand, ds))
                folders.append(name)
            if refs and top:
                comparison = paired_comparison(cfg, refs[0], top)
                comparison.to_csv(tmp / "comparison.csv", index=False, float_format=FLOAT_FORMAT)
        if plots:
            save_pareto(plot_pareto(result.table, cfg, result.references), tmp / "pareto.png")
        report = search_report(
            cfg,
            config_path=str(result.config_path),
            space=result.space,
            table=result.table,
            references=result.references,
            comparison=comparison,
            posterior=result.posterior,
            execution=_execution_text(result.execution),
            run_folders=folders,
            caveat=search_caveat(cfg),
        )
        (tmp / "report.md").write_text(report)
        manifest = {"lenasim_result": "search"} | dict(result.manifest) | {"run_folders": folders}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")

    write_atomically(out_dir, build, kind="search", overwrite=overwrite,
                     hint="change `name:` or `output:` in the search config, or pass --results DIR")  # fmt: skip


def _run(
    cfg: SearchConfig, cand: Candidate, tmp: Path, name: str, out_dir: Path, config_path: Path,
    write_run: RunWriter,
) -> xr.Dataset:  # fmt: skip
    """One run folder (tmp/name) and its scenario.yaml."""
    sc = candidate_scenario(cfg, cand)
    ds = write_run(sc, tmp / name)
    header = (
        f"{cand.id} of the schedule search {cfg.name} ({config_path}).\n"
        f"`python -m lenasim run {(Path(out_dir) / name).as_posix()}/scenario.yaml` reruns it "
        "with the numbers of the search."
    )
    (tmp / name / "scenario.yaml").write_text(_scenario_yaml(sc, header, Path(out_dir) / name))
    record_files(tmp / name)  # its manifest lists scenario.yaml too
    return ds


def no_blanks(df: pd.DataFrame) -> pd.DataFrame:
    """The table with no empty cell: a schedule parameter that does not apply to a
    schedule (the step of a dose-level ladder, the cadence of a fixed dose) is written
    "none", a target the schedule never reaches (``days_to_target``) "not reached"."""
    import numpy as np

    out = df.copy()
    for col in out.columns:
        missing = out[col].isna()
        if not _numeric(out[col].dtype):  # only text can be "" (a number's str never is)
            missing |= out[col].astype(str) == ""
        if not missing.any():
            continue
        fill = "not reached" if col == "days_to_target" else "none"
        shown = [FLOAT_FORMAT % v if isinstance(v, float | np.floating) else v for v in out[col]]
        out[col] = [fill if m else v for m, v in zip(missing, shown, strict=True)]
    return out


def _numeric(dtype) -> bool:
    """A NumPy bool, integer or float dtype (never an empty string)."""
    import numpy as np

    return isinstance(dtype, np.dtype) and dtype.kind in "biuf"


def search_caveat(cfg: SearchConfig) -> str:
    """The caveat of the search's ranking (:func:`lenasim.outputs.judgements.caveats.decision_caveat`)
    from the validation stored beside the posterior's spec."""

    path = validation_record_path(cfg.posterior.spec)
    try:
        record = json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        record = None
    return decision_caveat(record if isinstance(record, dict) else None)


def _execution_text(ex: dict) -> str:
    if ex.get("dask"):
        text = (f"on Dask ({ex['dask']}, {ex['slots']} worker threads, batches of "
                f"{ex['batch_size']} candidates)")  # fmt: skip
    else:
        text = f"in this process ({ex.get('threads')} schedules at a time, one engine thread each)"
    if ex.get("refinement"):
        text += f"; undecided verdicts: {ex['refinement']}"
    return text
