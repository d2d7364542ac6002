"""docs/configuration.md is generated from the config schema and kept up to date."""

from __future__ import annotations

from pathlib import Path

from lenasim.commands import docs

REPO = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_up_to_date():
    """Fails when the schema (a key, its default, its description) or the shipped configs
    changed and docs/configuration.md was not regenerated: run
    `python -m lenasim.commands.docs`."""
    current = (REPO / "docs" / "configuration.md").read_text()
    assert current == docs.reference(), "run `python -m lenasim.commands.docs`"


def test_check_flag_reports_a_stale_file(tmp_path, capsys):
    out = tmp_path / "configuration.md"
    assert docs.main(["--out", str(out)]) == 0
    assert docs.main(["--check", "--out", str(out)]) == 0
    out.write_text(out.read_text().replace("Virtual patients per posterior draw", "patients"))
    assert docs.main(["--check", "--out", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err


def test_every_key_of_the_schema_is_documented_with_unit_default_and_example():
    from pydantic import BaseModel

    from lenasim.simulation.scenario import Scenario

    text = docs.reference()
    rows = {line.split("|")[1].strip().strip("`"): line for line in text.splitlines()
            if line.startswith("| `")}  # fmt: skip

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            path = f"{prefix}.{name}" if prefix else name
            assert path in rows, path
            sub = getattr(field.annotation, "model_fields", None)
            nested = [a for a in getattr(field.annotation, "__args__", ())
                      if isinstance(a, type) and issubclass(a, BaseModel)]  # fmt: skip
            if name != "limits" and (sub is not None or nested):
                walk(nested[0] if nested else field.annotation, path)
            elif name != "limits":
                cells = [c.strip() for c in rows[path].split("|")[1:-1]]
                assert all(cells[i] for i in range(1, 6)), (path, cells)  # type to example

    walk(Scenario, "")


def test_the_minimal_example_is_a_valid_config(tmp_path):
    from lenasim.simulation.scenario import load_scenario

    p = tmp_path / "min.yaml"
    p.write_text(docs.MINIMAL)
    assert load_scenario(p).regimen.start_mg == 10


def test_types_are_written_in_words():
    """Issue 22.10: no Python type names ('list of Annotated') in the reference."""
    text = docs.reference()
    for internal in ("Annotated", "FieldInfo", "NoneType", "typing."):
        assert internal not in text, internal
    assert "| `regimen.reduction_levels_mg` | list of number |" in text
