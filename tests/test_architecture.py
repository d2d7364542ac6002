"""The layer contract of the stages (pyproject.toml, [tool.importlinter]; see
docs/architecture.md) holds for the package, and it catches a violation: the same
contract is run on a copy of the package with one forbidden import added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run `lint-imports` with the repository's contracts on the package under
    ``root/src`` (first on the path, so a copy shadows the installed package)."""
    env = os.environ | {"PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [sys.executable, "-c", LINT, str(REPO / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_package_keeps_the_contract():
    res = lint_imports(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


# module -> a forbidden import added to it, and the broken contract lint-imports reports
VIOLATIONS = {
    # a lower stage importing a higher one
    "core/regimen.py": ("import lenasim.outputs.summaries", "lenasim.core is not allowed to"),
    "model/spec.py": ("import lenasim.validation.report", "lenasim.model is not allowed to"),
    # the fit and the simulator share only core
    "simulation/scenario.py": ("import lenasim.model.spec", "lenasim.simulation is not allowed"),
    # PyMC outside the model stage, at the top of a module or inside a function
    "outputs/summaries.py": ("import pymc", "lenasim.outputs is not allowed to import pymc"),
    "evidence/table.py": ("def f():\n    import pytensor", "lenasim.evidence is not allowed to"),
}


def test_the_contract_fails_on_each_forbidden_import(tmp_path):
    """One copy of the package with all the violations (one lint-imports run): each is
    reported."""
    shutil.copytree(
        REPO / "src" / "lenasim",
        tmp_path / "src" / "lenasim",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"),
    )
    for module, (line, _) in VIOLATIONS.items():
        path = tmp_path / "src" / "lenasim" / module
        path.write_text(path.read_text() + f"\n{line}\n")
    res = lint_imports(tmp_path)
    assert res.returncode != 0
    for module, (_, broken) in VIOLATIONS.items():
        assert broken in res.stdout, (module, res.stdout)


# ----------------------------------------------------------- the docs say the contract


def contract_layers() -> list[list[str]]:
    """The layers of pyproject's "stages" contract, top first: each a list of the
    independent stages it holds (``a | b``), without the ``lenasim.`` prefix."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    (stages,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "stages"]
    return [
        [s.strip().strip("()").removeprefix("lenasim.") for s in layer.split("|")]
        for layer in stages["layers"]
    ]


def docs_table() -> dict[str, set[str]]:
    """docs/architecture.md's stage table: stage -> the stages its "may import" cell names."""
    import re

    rows = {}
    for line in (REPO / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 5:
            continue
        stage = re.match(r"`([a-z_]+)(?:/|\.py)`", cells[0]).group(1)
        rows[stage] = set(re.findall(r"`([a-z_]+)`", cells[-1]))
    return rows


def test_the_docs_table_says_what_the_contract_enforces():
    """Each stage's "may import" cell in docs/architecture.md names exactly the stages
    below it in pyproject's layer contract (the stages beside it excluded)."""
    import tomllib

    layers = contract_layers()
    table = docs_table()
    expected = {}
    for i, layer in enumerate(layers):
        below = {s for lower in layers[i + 1 :] for s in lower}
        for stage in layer:
            expected[stage] = below
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    for c in contracts["contracts"]:  # forbidden imports between stages narrow the layers
        if c["type"] == "forbidden":
            for source in c["source_modules"]:
                stage = source.removeprefix("lenasim.")
                banned = {m.removeprefix("lenasim.") for m in c["forbidden_modules"]}
                expected[stage] = expected.get(stage, set()) - banned
    assert set(table) == set(expected), "stages in the docs' table and in the contract differ"
    for stage, allowed in expected.items():
        assert table[stage] == allowed, (stage, sorted(table[stage] ^ allowed))
