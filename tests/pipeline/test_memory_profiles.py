"""Issue 24: the memory probe counts the representative patients (profiles) of a population
with characteristics, and the CrCl groups of renal_dosing (lenasim.pipeline.memory)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lenasim.cli import main
from lenasim.pipeline import memory
from lenasim.pipeline.memory import gb, scenario_memory, simulation_bytes
from lenasim.simulation.scenario import scenario_from_mapping

ROOT = Path(__file__).resolve().parents[2]
ADJUSTED = ROOT / "configs" / "patients" / "renal_origin_adjusted.yaml"


def _doc(profiles: int, tmp_path: Path) -> dict:
    doc = yaml.safe_load(ADJUSTED.read_text())
    doc["population"]["characteristics"]["profiles"] = profiles
    doc["output"] = str(tmp_path / "results")
    return doc


def test_the_profiles_and_the_renal_groups_raise_the_estimate(tmp_path):
    kw = scenario_memory(scenario_from_mapping(_doc(256, tmp_path), "x.yaml"))
    assert (kw["profiles"], kw["groups"], kw["levels"]) == (256, 2, 4)
    plain = {k: v for k, v in kw.items() if k not in ("profiles", "groups")}
    b256 = simulation_bytes(**kw)
    b32 = simulation_bytes(**(kw | {"profiles": 32}))
    one_group = simulation_bytes(**(kw | {"profiles": 32, "groups": 1}))
    assert b256 > 1.2 * b32 and b32 > 2 * simulation_bytes(**plain)
    assert b32 > one_group


@pytest.fixture
def room(monkeypatch, tmp_path):
    """Memory between the estimates of 32 and 256 profiles; one thread; loading a
    posterior fails the test (the refusal comes first)."""
    from lenasim.pipeline import run as run_cmd

    kw = scenario_memory(scenario_from_mapping(_doc(256, tmp_path), "x.yaml")) | {"threads": 1}
    free = (simulation_bytes(**kw) + simulation_bytes(**(kw | {"profiles": 32}))) // 2
    monkeypatch.setattr(memory, "available_memory", lambda: free)
    monkeypatch.setenv("LENASIM_THREADS", "1")
    monkeypatch.setattr(run_cmd, "load_posteriors", lambda *a, **k: pytest.fail("loaded"))
    return run_cmd, simulation_bytes(**kw), free


def test_a_run_with_too_many_profiles_is_refused_with_the_estimate_and_the_fix(
    tmp_path, capsys, room
):
    run_cmd, need, free = room
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(_doc(256, tmp_path)))
    rc = main(["run", str(path), "--no-plots", "--quiet"])
    _, err = capsys.readouterr()
    assert rc == 2 and "Traceback" not in err
    assert f"{path}: the simulation needs about {gb(need)} of memory at once" in err
    assert f"this machine has {gb(free)} available" in err
    assert "each of 256 representative patients" in err
    assert "population.characteristics.profiles: use fewer representative patients" in err
    assert not (tmp_path / "results").exists()
    few = tmp_path / "few.yaml"
    few.write_text(yaml.safe_dump(_doc(32, tmp_path)))
    assert len(run_cmd.prepare_jobs([str(few)])) == 1  # 32 profiles fit
