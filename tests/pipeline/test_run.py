"""`python -m lenasim run` end to end on a synthetic posterior (tests/conftest.py):
the shipped configs run small, results are written atomically and only replaced with
--overwrite, failures come before any work and name the file and key, and `run` never
imports PyMC or PyTensor."""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from helpers import assert_leaves_unimported
from lenasim.commands.run import cmd_run
from lenasim.core.errors import ConfigError, PosteriorError
from lenasim.pipeline import run as pipeline
from lenasim.simulation.streams import select_draws

REPO = Path(__file__).resolve().parents[2]
# The configs as the posterior_workdir fixture copies them (relative to its folder, the
# cwd of these tests): their paths lead to its synthetic posterior and results folder.
# configs/search_*.yaml are search configs (tests/search/test_search_config.py), design_*.yaml
# design configs (tests/design/test_design_config.py).
SHIPPED = [Path("configs") / p.name for p in sorted((REPO / "configs").glob("*.yaml"))
           if not p.name.startswith(("search_", "design_"))]  # fmt: skip
SLOW_CFG = Path("configs/slow_escalation.yaml")


def args(*configs, **kw) -> Namespace:
    base = dict(overwrite=False, results=None, patients=50, draws=20, no_plots=True, quiet=True)
    base.update(kw)
    return Namespace(configs=[str(c) for c in configs], **base)


@pytest.mark.parametrize("cfg", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_runs_small(posterior_workdir, cfg, capsys):
    assert cmd_run(args(cfg)) == 0
    out = posterior_workdir / "results" / cfg.stem
    assert {p.name for p in out.iterdir()} == {
        "manifest.json", "per_cycle.csv", "cumulative.csv", "dose.csv", "draws.nc",
        "limits.csv", "bands.csv", "mirrored.csv", "caveats.json",
    }  # fmt: skip
    ds = xr.open_dataset(out / "draws.nc", engine="h5netcdf").load()
    assert ds.sizes["draw"] == 20 and ds.attrs["n_patients"] == 50
    assert np.isfinite(ds["per_cycle"].sel(cycle=1)).all()
    pc = pd.read_csv(out / "per_cycle.csv")
    assert list(pc.columns) == ["event", "cycle", "mean", "q05", "q50", "q95", "mcse", "n_draws"]
    assert len(pc) == 4 * ds.sizes["cycle"]
    assert ((pc["q05"] <= pc["mean"]) & (pc["mean"] <= pc["q95"])).all()
    cum = pd.read_csv(out / "cumulative.csv")
    for _, g in cum.groupby("event"):
        assert (np.diff(g["mean"]) >= -1e-12).all()  # cumulative never falls
    dose = pd.read_csv(out / "dose.csv")
    assert {"cycle", "planned_intensity", "dose_mean_mg", "dose_intensity", "share_at_target",
            "share_held", "share_stopped", "dose_mean_mg_q05", "dose_mean_mg_q95"} <= set(dose.columns)  # fmt: skip
    m = json.loads((out / "manifest.json").read_text())
    assert m["name"] == cfg.stem and m["seed"] == 20261123 and m["n_draws"] == 20
    assert set(m["hashes"]) == {"config", "evidence", "posterior", "posterior_index"}
    assert m["config"]["population"]["patients"] == 50  # overrides are recorded
    assert "cycle 1" in capsys.readouterr().out  # the compact table


def test_draws_selected_deterministically(posterior_workdir):
    idx = select_draws(60, 20, 20261123)
    assert len(set(idx)) == 20 and idx.min() >= 0 and idx.max() < 60
    np.testing.assert_array_equal(idx, select_draws(60, 20, 20261123))
    cmd_run(args(SLOW_CFG))
    ds = xr.open_dataset(posterior_workdir / "results/slow_escalation/draws.nc", engine="h5netcdf")
    np.testing.assert_array_equal(ds["posterior_index"], idx)


def test_same_config_same_numbers(posterior_workdir):
    cmd_run(args(SLOW_CFG, results="a"))
    cmd_run(args(SLOW_CFG, results="b"))
    a = xr.open_dataset("a/slow_escalation/draws.nc", engine="h5netcdf").load()
    b = xr.open_dataset("b/slow_escalation/draws.nc", engine="h5netcdf").load()
    xr.testing.assert_identical(a, b)
    assert (
        Path("a/slow_escalation/per_cycle.csv").read_text()
        == Path("b/slow_escalation/per_cycle.csv").read_text()
    )


def test_existing_result_needs_overwrite(posterior_workdir):
    cmd_run(args(SLOW_CFG))
    manifest = posterior_workdir / "results/slow_escalation/manifest.json"
    before = manifest.read_text()
    called = []
    with pytest.MonkeyPatch.context() as m:
        m.setattr(pipeline, "load_posteriors", lambda *a, **k: called.append(1))
        with pytest.raises(
            ConfigError,
            match=r"slow_escalation.yaml: results/slow_escalation already exists; pass --overwrite",
        ):
            cmd_run(args(SLOW_CFG))
    assert not called  # refused before loading or simulating anything
    cmd_run(args(SLOW_CFG, overwrite=True, patients=30))
    after = json.loads(manifest.read_text())
    assert after["n_patients"] == 30 and manifest.read_text() != before


def _boom(ds, out):
    (out / "per_cycle.csv").write_text("half")
    raise KeyboardInterrupt


def test_interrupted_run_leaves_nothing(posterior_workdir):
    results = posterior_workdir / "results"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(pipeline, "write_tables", _boom)
        with pytest.raises(KeyboardInterrupt):
            cmd_run(args(SLOW_CFG))
    assert list(results.iterdir()) == []
    # an earlier result survives an interrupted --overwrite
    cmd_run(args(SLOW_CFG))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(pipeline, "write_tables", _boom)
        with pytest.raises(KeyboardInterrupt):
            cmd_run(args(SLOW_CFG, overwrite=True))
    assert [p.name for p in results.iterdir()] == ["slow_escalation"]
    assert (results / "slow_escalation/per_cycle.csv").read_text() != "half"


def test_too_many_draws(posterior_workdir, monkeypatch):
    monkeypatch.setattr(pipeline, "run_job", lambda *a, **k: pytest.fail("simulated"))
    with pytest.raises(ConfigError) as err:
        cmd_run(args(SLOW_CFG, draws=None))  # the config's 1000 > 60 available
    msg = str(err.value)
    assert (
        str(SLOW_CFG) in msg and "posterior.draws: 1000 draws requested" in msg and "has 60" in msg
    )


@pytest.mark.parametrize("opt", ["patients", "draws"])
def test_zero_override(posterior_workdir, opt):
    with pytest.raises(ConfigError, match=f"--{opt}: must be >= 1"):
        cmd_run(args(SLOW_CFG, **{opt: 0}))


def test_bad_config_fails_before_any_work(posterior_workdir, monkeypatch):
    monkeypatch.setattr(pipeline, "load_posteriors", lambda *a, **k: pytest.fail("loaded"))
    bad = REPO / "tests/configs_bad/negative_dose.yaml"
    with pytest.raises(ConfigError, match="negative_dose.yaml: regimen.start_mg"):
        cmd_run(args(SLOW_CFG, bad))
    assert not (posterior_workdir / "results").exists()


def test_duplicate_names_refused(posterior_workdir):
    with pytest.raises(ConfigError, match="same results folder"):
        cmd_run(args(SLOW_CFG, SLOW_CFG))


def _config_with_spec(tmp: Path, spec: str) -> Path:
    text = (tmp / SLOW_CFG).read_text().replace("spec: ../models/default.yaml", f"spec: {spec}")
    p = tmp / "cfg.yaml"
    p.write_text(text)
    return p


def test_missing_spec(posterior_workdir):
    cfg = _config_with_spec(posterior_workdir, "models/nothere.yaml")
    with pytest.raises(ConfigError) as err:
        cmd_run(args(cfg))
    want = posterior_workdir / "models/nothere.yaml"  # relative to the config file
    assert f"{cfg}: posterior.spec: model spec {want} not found" in str(err.value)


def test_missing_posterior_file(posterior_workdir):
    from lenasim.model.posterior import load_posterior

    with pytest.raises(PosteriorError, match=r"models/other.nc: posterior not found; fit it with"):
        load_posterior(Path("models/other.nc"), Path("models/default.yaml"))


def test_missing_posterior_in_run_names_config(posterior_workdir, monkeypatch, capsys):
    (posterior_workdir / "models/default.nc").unlink()
    with pytest.raises(PosteriorError) as err:
        cmd_run(args(SLOW_CFG))
    assert f"{SLOW_CFG}: posterior.spec:" in str(err.value)
    assert "posterior not found" in str(err.value)
    assert "python -m lenasim fit" in str(err.value) and "--refit" in str(err.value)


def test_stale_posterior(posterior_workdir, monkeypatch, capsys):
    from builders import make_draws
    from lenasim.model.posterior import load_posterior, write_posterior

    write_posterior("models/default.nc", make_draws(60), {"evidence_hash": "0" * 64,
                    "spec_hash": "x", "converged": 1})  # fmt: skip
    with pytest.raises(PosteriorError, match="is stale: the evidence table changed since the fit"):
        load_posterior(Path("models/default.nc"), Path("models/default.yaml"))
    with pytest.raises(PosteriorError, match=f"{SLOW_CFG}: posterior.spec:") as err:
        cmd_run(args(SLOW_CFG))
    assert "is stale" in str(err.value) and "--refit" in str(err.value)
    assert "fitting" not in capsys.readouterr().err  # no fit starts without --refit


def test_refit_opts_in_to_fitting_a_stale_posterior(posterior_workdir, monkeypatch, capsys):
    import sys

    from builders import make_draws
    from lenasim.model.posterior import write_posterior

    fit = sys.modules["lenasim.model.fit"]  # the fixture's stub, which refuses to fit
    good = Path("models/default.nc").read_bytes()
    write_posterior("models/default.nc", make_draws(60), {"evidence_hash": "0" * 64,
                    "spec_hash": "x", "converged": 1})  # fmt: skip
    calls = []

    def fake_fit(spec_path, quiet=False):
        calls.append(Path(spec_path))
        Path("models/default.nc").write_bytes(good)

    monkeypatch.setattr(fit, "fit_spec", fake_fit)
    assert cmd_run(args(SLOW_CFG, refit=True)) == 0
    assert calls == [Path("models/default.yaml")]
    assert "--refit: fitting" in capsys.readouterr().err


def test_several_configs_write_a_comparison(posterior_workdir):
    cfgs = [SLOW_CFG, Path("configs/standard_25mg.yaml")]
    assert cmd_run(args(*cfgs)) == 0
    assert (posterior_workdir / "results/compare-slow_escalation-vs-standard_25mg").is_dir()


@pytest.mark.slow
def test_run_with_plots_does_not_import_pymc(posterior_workdir):
    """The real command in a fresh interpreter, plots and report included."""
    code = (
        "from lenasim.cli import main\n"
        f"rc = main(['run', {str(SLOW_CFG)!r}, '--draws', '10', '--patients', '40', '--quiet'])\n"
        "assert rc == 0, rc\n"
    )
    assert_leaves_unimported(code, ("pymc", "pytensor", "arviz"), cwd=posterior_workdir)
    out = posterior_workdir / "results/slow_escalation"
    assert (out / "report.html").is_file() and list(out.glob("*.png"))


@pytest.mark.slow  # end to end; the fast suite has tests/pipeline/test_run_imports.py (issue 22.12)
def test_a_run_imports_no_dask_and_no_predictive_stack_it_does_not_use(posterior_workdir):
    """Issue 22.11: `run` imports no Dask (xarray would import dask.array to ask whether
    the engine's arrays are Dask arrays), and without `mirrors` not SciPy's stats (the
    model's predictive module is NumPy-only since the pandas-free mirror, and imported
    with the mirror's module: tests/project/test_architecture checks that it is light)."""
    import yaml

    data = yaml.safe_load(SLOW_CFG.read_text())
    data.pop("mirrors")
    data["name"] = "no_mirror"
    (posterior_workdir / "configs/no_mirror.yaml").write_text(yaml.safe_dump(data))
    for cfg, unused in (("configs/no_mirror.yaml", ("dask", "distributed", "scipy.stats")),
                        (str(SLOW_CFG), ("dask", "distributed"))):  # fmt: skip
        code = (
            "from lenasim.cli import main\n"
            f"rc = main(['run', {cfg!r}, '--draws', '5', '--patients', '20', '--quiet', "
            "'--no-plots'])\n"
            "assert rc == 0, rc\n"
        )
        assert_leaves_unimported(code, unused, cwd=posterior_workdir)


def test_mirrors_are_checked_without_the_evidence_table():
    from lenasim.evidence.table import load_arms
    from lenasim.simulation.scenario import evidence_arm_ids

    assert evidence_arm_ids() == list(load_arms())


def test_manifest_versions_without_importing():
    """The manifest records library versions whether or not the run imported them,
    and does not import them for that."""
    import importlib.metadata

    assert pipeline.version_of("pandas") == pd.__version__ == importlib.metadata.version("pandas")
    assert pipeline.version_of("numpy") == np.__version__
    assert pipeline.version_of("no-such-package-xyz") == "not installed"
    if "nutpie" not in sys.modules:
        assert pipeline.version_of("nutpie") == importlib.metadata.version("nutpie")
        assert "nutpie" not in sys.modules


def test_python_dash_m_lenasim_exits_with_main_s_code_and_complete_output(tmp_path):
    """`python -m lenasim` ends the process without the interpreter's teardown once
    main() returns (src/lenasim/__main__.py): what it printed must all arrive, its files
    be complete, and its exit code be main()'s, for success and for an error alike."""
    cmd = [sys.executable, "-m", "lenasim", "run", str(SLOW_CFG), "--results", str(tmp_path),
           "--draws", "12", "--patients", "40", "--no-plots"]  # fmt: skip
    ok = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    # the whole output arrived: its last section (the mirrored trial) ends with this line
    assert "neutropenia" in ok.stdout and ok.stdout.rstrip().endswith("(not a held-out test).")
    out = tmp_path / "slow_escalation"
    per_cycle = pd.read_csv(out / "per_cycle.csv")
    assert len(per_cycle) == 4 * 12 and per_cycle["mean"].notna().all()
    assert json.loads((out / "manifest.json").read_text())["n_draws"] == 12
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)  # no --overwrite
    assert again.returncode == 2
    assert "already exists; pass --overwrite" in again.stderr


def test_the_pipeline_runs_a_config_mapping_in_memory_then_writes_it(posterior_workdir):
    """Issue 20.4: the public entry a web explorer calls: a config mapping (or a validated
    Scenario) in, the run's result in memory out, nothing written; writing the folder is
    a separate step that gives what `lenasim run` writes."""
    import yaml

    from lenasim.pipeline.posterior import ensure_posterior

    data = yaml.safe_load(SLOW_CFG.read_text())
    data["posterior"] = {"spec": "models/default.yaml", "draws": 5}
    data["population"]["patients"] = 20
    post = ensure_posterior(Path("models/default.yaml"))
    before = sorted(p.name for p in posterior_workdir.iterdir())
    res = pipeline.simulate_run(data, post, source="explorer")
    assert sorted(p.name for p in posterior_workdir.iterdir()) == before  # nothing written
    assert res.scenario.name == "slow_escalation" and res.index.size == 5
    assert set(res.ds.data_vars) and len(res.limits) == 2
    with pytest.raises(ConfigError, match="explorer: seed: must be a whole number"):
        pipeline.simulate_run(data | {"seed": "7"}, post, source="explorer")
    out = pipeline.write_run(res, posterior_workdir / "mem" / "slow_escalation", plots=False)
    cmd_run(args(SLOW_CFG, patients=20, draws=5, results="cmd"))
    for name in ("per_cycle.csv", "cumulative.csv", "dose.csv", "limits.csv", "bands.csv"):
        assert (out / name).read_bytes() == (Path("cmd/slow_escalation") / name).read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config_file"] is None and len(manifest["hashes"]["config"]) == 64
