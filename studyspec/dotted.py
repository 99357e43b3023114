"""Dotted keys (`search.epochs`) on nested plain dicts: overrides, arms, Optuna params."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set `tree[a][b][c] = value` for key "a.b.c", creating missing levels."""
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"{key}: '{part}' is not a section")
        node = child
    node[leaf] = value


def get_dotted(tree: Mapping[str, Any], key: str, default: Any = None) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def with_overrides(tree: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `tree` with every dotted override applied."""
    result = copy.deepcopy(dict(tree))
    for key, value in overrides.items():
        set_dotted(result, key, copy.deepcopy(value))
    return result


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of a nested dict as (dotted key, value); lists stay leaves."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{path}.")
        else:
            yield path, value
