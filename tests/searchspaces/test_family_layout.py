"""Every search-space family has one module layout (issue 12, item 9): `space.py` (options,
registration, genotype validation), `supernet.py`, `derived.py` and `operations.py`, and
takes its registered name from `searchspaces/names.py`."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from searchspaces import names
from searchspaces.registry import get_space

FAMILIES = {"hinas": names.HINAS, "modnas": names.MODNAS, "superkernel": names.SUPERKERNEL}
ROOT = Path(__file__).resolve().parents[2] / "searchspaces"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_modules_and_name(family):
    for module in ("space", "supernet", "derived", "operations"):
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
