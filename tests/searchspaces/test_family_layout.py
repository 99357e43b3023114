"""Every search-space family has one module layout: `options.py` (the options model, which
the networks take and which imports none of them), `space.py` (registration, genotype
validation), `supernet.py`, `derived.py` and `operations.py`, and takes its registered name
from `searchspaces/names.py`. No module of a family imports its `space.py` back (only the
family's `__init__` does, to register it)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from searchspaces import names
from searchspaces.registry import get_space

FAMILIES = {"hinas": names.HINAS, "modnas": names.MODNAS, "superkernel": names.SUPERKERNEL}
ROOT = Path(__file__).resolve().parents[2] / "searchspaces"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_modules_and_name(family):
    for module in ("options", "space", "supernet", "derived", "operations"):
        assert (ROOT / family / f"{module}.py").is_file(), f"{family}/{module}.py"
    space = importlib.import_module(f"searchspaces.{family}.space")
    assert get_space(FAMILIES[family]).name == FAMILIES[family]
    assert any(getattr(space, attr, None) is not None and isinstance(getattr(space, attr),
               type) and getattr(getattr(space, attr), "name", None) == FAMILIES[family]
               for attr in dir(space))


def test_names_are_defined_once():
    """No family module spells its own name as a string literal assignment."""
    for family, name in FAMILIES.items():
        for path in (ROOT / family).glob("*.py"):
            assert f'SPACE_NAME = "{name}"' not in path.read_text(), path


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_options_are_below_the_space(family):
    space = get_space(FAMILIES[family])
    assert space.options_model.__module__ == f"searchspaces.{family}.options"
    upward = f"searchspaces.{family}.space"
    for path in sorted((ROOT / family).glob("*.py")):
        if path.name in ("__init__.py", "space.py"):
            continue
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        assert upward not in imported, f"{path.name} imports {upward}"
