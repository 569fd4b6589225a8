"""The import graph keeps the layers of docs/architecture.md: no upward arrow, no circle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))  # import-linter's command
PACKAGES = (
    "scanner",
    "exporters",
    "engine",
    "store",
    "policy",
    "config",
    "collectors",
    "inventory",
    "simulator",
)


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the packages in `tree`, with the contracts of its pyproject.toml."""
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--config", "pyproject.toml"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _append(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code)


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "code", "broken"),
    [
        # An import hidden inside a function is still an arrow.
        (
            "store/hosts.py",
            "def _late() -> None:\n    from engine import grading  # noqa: F401\n",
            "Imports point down the data path",
        ),
        (
            "exporters/csv.py",
            "def _late() -> None:\n    from engine import writer  # noqa: F401\n",
            "Exporters read the store, never the engine",
        ),
        (
            "collectors/facts.py",
            "def _late() -> None:\n    import inventory.spec  # noqa: F401\n",
            "Imports point down the data path",
        ),
        (
            "inventory/spec.py",
            "def _late() -> None:\n    from inventory import csv_source  # noqa: F401\n",
            "No circles between the modules of any package",
        ),
    ],
)
def test_a_wrong_arrow_breaks_a_contract(
    tmp_path: Path, module: str, code: str, broken: str
) -> None:
    tree = _copy(tmp_path)
    _append(tree / module, code)
    result = _lint(tree)
    assert result.returncode != 0, result.stdout
    verdicts = [line for line in result.stdout.splitlines() if line.startswith(broken)]
    assert verdicts, result.stdout
    assert verdicts[0].endswith("BROKEN"), result.stdout
