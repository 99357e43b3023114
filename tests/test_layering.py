"""Packages depend one way: studyspec and searchspaces below trainables, trainables below
orchestrator; bench may use them all. Every import of every module is checked."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package -> the project packages it may import
ALLOWED = {
    "searchspaces": {"searchspaces"},
    "studyspec": {"studyspec", "searchspaces"},
    "trainables": {"trainables", "studyspec", "searchspaces"},
    "orchestrator": {"orchestrator", "trainables", "studyspec", "searchspaces"},
}
PROJECT = set(ALLOWED) | {"bench"}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


def test_every_import_points_down():
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for target in sorted(imported_packages(path) - allowed):
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert wrong == []


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from orchestrator.runner import run_study\n")
    assert imported_packages(module) == {"orchestrator"}
