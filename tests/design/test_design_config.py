"""Design configs: the shipped ones load; bad ones are refused with the file, the key and
the fix (exit code 2 from the command, never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lenasim.cli import main
from lenasim.core.errors import ConfigError
from lenasim.design.config import load_design

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs").glob("design_*.yaml"))


def test_there_is_a_shipped_design():
    assert [p.name for p in SHIPPED] == ["design_untreated.yaml", "design_untreated_partial.yaml"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_designs_load(path):
    cfg = load_design(path)
    assert cfg.trial.start in [c.name for c in cfg.candidates]
    assert cfg.posterior.spec.name == "default.yaml"


def _write(tmp_path: Path, change) -> Path:
    data = yaml.safe_load((REPO / "configs" / "design_untreated.yaml").read_text())
    change(data)
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _swap(d):
    d["candidates"][0], d["candidates"][1] = d["candidates"][1], d["candidates"][0]


BAD = {
    "typo": (lambda d: d["trial"].update(cohort_sise=3), "trial.cohort_sise: unknown key; did you mean 'cohort_size'?"),
    "start": (lambda d: d["trial"].update(start="cont2.5_slo"), "did you mean 'cont2.5_slow'?"),
    "order": (_swap, "candidates are not in order of intensity"),
    "boin": (lambda d: d["decide"].update(rule="boin"), "decide.target is required with rule: boin"),
    "backfill": (lambda d: d["trial"].pop("accrual_per_28_days"), "backfill_max needs trial.accrual_per_28_days"),
    "percentile": (lambda d: d["truths"].append({"name": "x", "kind": "percentile"}), "percentile is required"),
    "effect": (lambda d: d["truths"].append({"name": "x", "trial_effect": {"tls": 1}}), "trial_effect is required with kind: trial_effect and refused otherwise"),
    "effect_event": (lambda d: d["truths"].append({"name": "x", "kind": "trial_effect", "trial_effect": {"tlss": 1.0}}), "did you mean 'tls'?"),
    "rule": (lambda d: d["decide"].update(rule="crm"), "decide.rule: must be one of overdose_control, boin, three_plus_three"),
    "size": (lambda d: d["trial"].update(max_patients=2), "trial.max_patients (2) is below trial.cohort_size (3)"),
    "memory": (lambda d: d.update(trials=100_000, trial=dict(d["trial"], max_patients=300)), "GB for the patients' outcomes"),
    "followup": (lambda d: d.update(decide={"rule": "three_plus_three"}, trial=dict(d["trial"], followup_days=14)), "trial.followup_days (14) is shorter than a first cycle (28 days)"),
    "above_total": (lambda d: d["candidates"][1].update(above=["d21_2.5_ladder2w"]), "set order: partial"),
    "above_unknown": (lambda d: (d.update(order="partial"), d["candidates"][1].update(above=["d21_2.5_ladder"])), "did you mean 'd21_2.5_ladder2w'?"),
    "regimen": (lambda d: d["candidates"][0]["regimen"].update(start_mg=-1), "candidates[0].regimen.start_mg: must be >="),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_design_configs_name_file_key_and_fix(tmp_path, case):
    change, expected = BAD[case]
    path = _write(tmp_path, change)
    with pytest.raises(ConfigError) as err:
        load_design(path)
    assert str(err.value).startswith(str(path)), err.value
    assert expected in str(err.value), err.value


def test_an_order_as_listed_is_accepted(tmp_path):
    def swap_as_listed(d):
        _swap(d)
        d["order"] = "as_listed"

    cfg = load_design(_write(tmp_path, swap_as_listed))
    assert cfg.candidates[0].name == "d21_5_to10"


def test_a_partial_order():
    cfg = load_design(REPO / "configs" / "design_untreated_partial.yaml")
    assert cfg.below == ((), (0,), (0,), (2,), (1, 3), (4,))


def test_the_command_exits_2_with_the_message(tmp_path, capsys):
    path = _write(tmp_path, lambda d: d["trial"].update(cohort_sise=3))
    assert main(["design", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cohort_sise" in err and "Traceback" not in err
