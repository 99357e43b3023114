"""Where a value of a study file sits in the schema: its accepted kinds, bounds and choices.

The fuzz test mutates the shipped studies at any path (the YAML document's own keys,
a profile's or an arm's dotted overrides, a grid axis, a search space's options) and
asks this module what the schema expects there, so that every mutation is one the
contract must refuse (a number beyond its documented bound, a type no member of a
union takes, a value outside a Literal).
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from searchspaces.registry import get_space
from studyspec.schema import RetrainSpec, SearchSpaceSpec, Study


@dataclass
class Slot:
    """What the schema accepts at one position."""

    kinds: set[str] = field(default_factory=set)  # int float bool str list dict none any
    literals: tuple = ()
    lower: float | None = None
    upper: float | None = None
    model: type[BaseModel] | None = None
    allows_empty: bool = True  # for lists


def unwrap(tp: Any) -> tuple[Any, list[Any]]:
    meta: list[Any] = []
    while get_origin(tp) is Annotated:
        tp, *extra = get_args(tp)
        for item in extra:
            meta += item.metadata if isinstance(item, FieldInfo) else [item]
    return tp, meta


def members(tp: Any) -> list[tuple[Any, list[Any]]]:
    tp, meta = unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [(m, meta + more) for arg in get_args(tp) for m, more in members(arg)]
    return [(tp, meta)]


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def slot_of(tp: Any, meta: list[Any]) -> Slot:
    slot = Slot()
    for member, more in members(tp) if tp is not None else [(Any, [])]:
        more = meta + more
        origin = get_origin(member)
        if member is Any:
            slot.kinds.add("any")
        elif member is bool:
            slot.kinds.add("bool")
        elif member in (int, float):
            slot.kinds |= {"int", "float"} if member is float else {"int"}
            for item in more:
                if isinstance(item, (annotated_types.Ge, annotated_types.Gt)):
                    slot.lower = getattr(item, "ge", getattr(item, "gt", None))
                if isinstance(item, (annotated_types.Le, annotated_types.Lt)):
                    slot.upper = getattr(item, "le", getattr(item, "lt", None))
        elif member is str:
            slot.kinds.add("str")
        elif member is type(None):
            slot.kinds.add("none")
        elif origin is Literal:
            slot.literals += get_args(member)
            slot.kinds |= {type(v).__name__.replace("NoneType", "none") for v in get_args(member)}
        elif origin in (list, tuple):
            slot.kinds.add("list")
            slot.allows_empty = not any(isinstance(m, annotated_types.MinLen) for m in more)
        elif origin is dict or is_model(member):
            slot.kinds.add("dict")
            slot.model = member if is_model(member) else slot.model
    return slot


def child(tp: Any, part: str | int) -> tuple[Any, list[Any]]:
    """The annotation one step down (a model's field, a list's item, a dict's value)."""
    for member, _ in members(tp):
        origin = get_origin(member)
        fields = {info.alias or name: info for name, info in member.model_fields.items()} \
            if is_model(member) else {}
        if isinstance(part, str) and part in fields:  # a study file's key (`retrain.from`)
            info = fields[part]
            return info.annotation, list(info.metadata)
        if origin is dict and isinstance(part, str):
            return unwrap(get_args(member)[1])
        if origin in (list, tuple) and isinstance(part, int):
            args = get_args(member)
            item = args[0] if origin is list or args[-1] is Ellipsis else args[min(part, 1)]
            return unwrap(item)
    return None, []


def study_slot(keys: list[str | int], space: str) -> Slot:
    """The slot at a path of real study keys (dotted overrides already split)."""
    tp, meta = Study, []
    for part in keys:
        if tp is SearchSpaceSpec and part == "options" or \
                tp is RetrainSpec and part == "space_options":
            tp, meta = get_space(space).options_model, []
            continue
        tp, meta = child(tp, part)
        if tp is None:
            return Slot(kinds={"unknown"})
    return slot_of(tp, meta)


def split(key: str | int) -> list[str | int]:
    return key.split(".") if isinstance(key, str) else [key]


def normalize(path: list[str | int]) -> list[str | int]:
    """A document path as study keys: the dotted keys of profiles, arm sets and grids are
    split, a grid axis entry, a categorical choice or a start_from value stands for the
    value of its key."""
    head = path[:2]
    if len(path) >= 3 and path[0] == "profiles":
        return normalize(split(path[2]) + path[3:])
    if len(path) >= 5 and head == ["arms", "named"] and path[3] == "set":
        return normalize(split(path[4]) + path[5:])
    if len(path) >= 4 and head == ["arms", "grid"]:
        return normalize(split(path[2]) + path[4:])
    if len(path) >= 5 and head == ["tune", "space"] and path[3] == "choices":
        return normalize(split(path[2]) + path[5:])
    if len(path) >= 4 and head == ["tune", "start_from"]:
        return normalize(split(path[3]) + path[4:])
    return path


def space_name(document: dict, path: list[str | int]) -> str:
    """The search space in effect where `path` points: the innermost profile or arm set that
    names one, else the study's."""
    name, node = document.get("search_space", {}).get("name"), document
    for part in path:
        if isinstance(node, dict):
            given = node.get("search_space.name") or (node.get("search_space") or {}).get("name") \
                if isinstance(node.get("search_space", {}), dict) else None
            name = given or name
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return name


def slot_at(document: dict, path: list[str | int]) -> Slot:
    return study_slot(normalize(path), space_name(document, path))
