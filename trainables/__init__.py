"""Data, degradations, losses, metrics, Ray-free training loops and their Ray Tune adapters.

`lazy_face` is how a subpackage's face (its `__init__`) imports its names only when first
used, so that a command that needs a few of them (`validate`) does not pay for the rest
(Ray, MLflow, SciPy, matplotlib: seconds of imports)."""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def lazy_face(package: str) -> Callable[[str], Any]:
    """The module `__getattr__` (PEP 562) of the face of `package`: a name its `__init__`
    imports `from module import name` under `if TYPE_CHECKING:` is imported from that
    module when first asked for, then kept in the package."""
    where: dict[str, str] = {}

    def __getattr__(name: str) -> Any:
        if not where:
            tree = ast.parse(Path(sys.modules[package].__file__).read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    where.update({alias.asname or alias.name: node.module
                                  for alias in node.names})
        if name not in where or where[name] == "typing":
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
