"""The oracle's table (`fuzz_oracle.py`) applied to study documents: which key a position
of a study file is, the values the table refuses or accepts there, and the fuzz cases made
of them, each with its expected verdict and the key a refusal must name.

A position's key comes from the document alone: the dotted keys of profiles, arm sets and
grid axes are split, and the search space in effect is the innermost one named.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from tests.orchestrator.fuzz_oracle import OPTIONS, STUDY, Rule, accepts, rule_for

WRONG = ["abc", 12345, 0.5, True, [1, 2], ["abc"], {"x": 1}, None]
STRINGS = {"bool": ["yes", "on", "no", "off", "True", "true", "1", "y"],
           "number": ["3", "1e-3", "0.5", "12", "inf", "1_000", "0x10"]}
NON_FINITE = [math.nan, math.inf, -math.inf]
DOTTED_MAPS = ("arms.grid", "tune.space", "arms.named.[].set", "baselines.[].set")


@dataclass(frozen=True)
class Case:
    category: str
    study: str  # the file stem
    data: bytes = field(repr=False)
    profile: str | None = None
    assignments: tuple[str, ...] = ()
    where: str = ""  # the mutated path, for the report of a failing example
    expect: str = "reject"  # or "accept": a documented limit
    key: str = ""  # the study key a refusal names ("": the file, or `where`)
    value: Any = None  # the value tried at `key`
    also: tuple[str, ...] = ()  # keys the refusal may name instead (`Rule.also_named`)

    def __repr__(self) -> str:
        return (f"Case({self.category}, {self.study}, {self.where!r}, expect={self.expect}, "
                f"value={self.value!r}, profile={self.profile}, set={self.assignments})")


class Quoted(yaml.SafeDumper):
    """Every string double-quoted: read back as a string, whatever it looks like."""


Quoted.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style='"'))


def dump(document: Any) -> bytes:
    return yaml.dump(document, Dumper=Quoted, sort_keys=False, allow_unicode=True).encode()


def flow(value: Any) -> str:
    """A value as the text of `--set key=value`."""
    text = yaml.dump(value, Dumper=Quoted, default_flow_style=True, width=math.inf)
    return text.removesuffix("...\n").strip()


# --- positions ------------------------------------------------------------------------------
def split(key: str | int) -> list[str | int]:
    return key.split(".") if isinstance(key, str) else [key]


def normalize(path: list[str | int]) -> list[str | int]:
    """A document path as study keys: the dotted keys of profiles, arm and baseline sets and
    grids are split; a grid entry, a categorical choice or a start_from value stands for
    the value of its key."""
    head = path[:2]
    if len(path) >= 3 and path[0] == "profiles":
        return normalize(split(path[2]) + path[3:])
    if len(path) >= 5 and head == ["arms", "named"] and path[3] == "set":
        return normalize(split(path[4]) + path[5:])
    if len(path) >= 4 and path[0] == "baselines" and path[2] == "set":
        return normalize(split(path[3]) + path[4:])
    if len(path) >= 4 and head == ["arms", "grid"]:
        return normalize(split(path[2]) + path[4:])
    if len(path) >= 5 and head == ["tune", "space"] and path[3] == "choices":
        return normalize(split(path[2]) + path[5:])
    if len(path) >= 4 and head == ["tune", "start_from"]:
        return normalize(split(path[3]) + path[4:])
    return path


def dotted(keys: list[str | int]) -> str:
    return ".".join("[]" if isinstance(part, int) else str(part) for part in keys)


def space_name(document: dict, path: list[str | int]) -> str:
    """The search space in effect where `path` points: the innermost profile or arm set that
    names one, else the study's."""
    name, node = (document.get("search_space") or {}).get("name"), document
    for part in path:
        if isinstance(node, dict):
            inner = node.get("search_space")
            given = node.get("search_space.name") or \
                (inner.get("name") if isinstance(inner, dict) else None)
            name = given if isinstance(given, str) else name
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return name


def rule_at(document: dict, path: list[str | int]) -> tuple[str, Rule] | None:
    """(the study key, its rule) of a position of the document, when the table has one."""
    key = dotted(normalize(path))
    rule = rule_for(key, space_name(document, path))
    return (key, rule) if rule is not None else None


def nodes(tree: Any, path: tuple = ()) -> list[tuple[list, Any]]:
    found = [(list(path), tree)] if path else []
    items = tree.items() if isinstance(tree, dict) else \
        enumerate(tree) if isinstance(tree, list) else []
    for key, value in items:
        found += nodes(value, (*path, key))
    return found


def positions(document: dict) -> list[tuple[list, str, Rule]]:
    """Every (path, key, rule) of the document the table covers; `published` aside."""
    found = []
    for path, _ in nodes(document):
        covered = rule_at(document, path) if path[0] != "published" else None
        if covered:
            found.append((path, *covered))
    return found


def closed(key: str, space: str) -> bool:
    """A section whose unknown keys are refused: a prefix of the table's keys (not a map of
    names such as `groups`) or the space's options."""
    if key in ("", "search_space.options", "retrain.space_options"):
        return True
    patterns = [*STUDY, *(f"search_space.options.{name}" for name in OPTIONS.get(space, {}))]
    for pattern in patterns:
        parts = pattern.split(".")
        for end in range(1, len(parts)):
            regex = re.escape(".".join(parts[:end])).replace(r"\*", r"[^.]+")
            if re.fullmatch(regex, key) and parts[end] != "*":
                return True
    return False


# --- values ---------------------------------------------------------------------------------
def wrong_types(rule: Rule) -> list:
    return [value for value in WRONG if not accepts(rule, value, kind_only=True)]


def strings(rule: Rule) -> list[str]:
    kind = "bool" if rule.boolean else "number" if rule.number else None
    return [text for text in STRINGS.get(kind, []) if not accepts(rule, text)]


def beyond(rule: Rule) -> list:
    """Numbers just past each documented limit (by one, and by the float next to it), past
    any limit (1e30), inside a refused gap, even where odd is due."""
    if rule.number is None:
        return []
    whole = rule.number == "int"
    found = [10**30, -(10**30)] if whole else [1e30, -1e30]
    for bound, refused, outward in ((rule.low, rule.open_low, -1), (rule.high, rule.open_high,
                                                                      1)):
        if bound is None:
            continue
        if whole:
            found.append(int(bound) + outward)
        else:
            found += [float(bound) + outward,
                      float(bound) if refused else math.nextafter(bound, outward * math.inf)]
    if rule.gap:
        found.append(sum(rule.gap) / 2)
    if rule.odd:
        low = int(rule.low or 0)
        found.append(low + low % 2)  # the first even number from the low limit
    return [value for value in found if not accepts(rule, value)]


def bad_names(rule: Rule) -> list[str]:
    """Names outside a closed set or text the rule refuses: made up, empty, the case or the
    spacing of a documented name changed."""
    if rule.text is None:
        return []
    names = ["bogus", "", "Set12", "val/PSNR"]
    for choice in rule.choices:
        names += [choice.upper(), choice.capitalize(), f" {choice}"]
    return [name for name in dict.fromkeys(names) if not accepts(rule, name)]


def bad_lengths(rule: Rule) -> list[list]:
    """An empty list where one entry is the least, one entry too many past the most."""
    if rule.items is None:
        return []
    good = limits(rule.items) or [typical(rule.items)]
    found = [[]] if rule.min_items >= 1 else []
    if rule.max_items is not None and good[0] is not None:
        found.append([good[0]] * (rule.max_items + 1))
    return [value for value in found if not accepts(rule, value)]


def typical(rule: Rule) -> Any:
    """An entry the rule takes, for lists of entries without limits (test sets, kernel
    sizes)."""
    for value in ("embedded", "sigma25", *rule.choices, "abc", 3, 0.5):
        if accepts(rule, value):
            return value
    return None


def limits(rule: Rule) -> list:
    """The documented limits themselves (or the float next to an open one), every
    documented choice (true and false), a one-entry list at each limit of its entries: all
    to be accepted."""
    if not rule.exact:
        return []
    found: list = [*rule.choices, *(True, False) * rule.boolean]
    if rule.number is not None:
        for end, bound, refused, inward in (("low", rule.low, rule.open_low, 1),
                                            ("high", rule.high, rule.open_high, -1)):
            if bound is not None and rule.exact in (True, end):
                found.append(int(bound) if rule.number == "int" else
                             math.nextafter(bound, inward * math.inf) if refused else
                             float(bound))
        if rule.gap:
            found.append(rule.gap[1])
    if rule.items is not None and rule.number is None and not rule.boolean:
        found += [[value] * max(rule.min_items, 1) for value in limits(rule.items)]
    return [value for value in found if accepts(rule, value)]


def refused(rule: Rule) -> list:
    """Every value the table refuses that the categories try."""
    return [*wrong_types(rule), *strings(rule), *beyond(rule), *NON_FINITE * bool(rule.number),
            *bad_names(rule), *bad_lengths(rule)]


# --- documents ------------------------------------------------------------------------------
def set_dotted(document: dict, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def replaced(document: dict, path: list, value: Any = None, remove: bool = False) -> dict:
    result = copy.deepcopy(document)
    node = result
    for part in path[:-1]:
        node = node[part]
    if remove:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return result


def profile_of(path: list) -> str | None:
    return path[1] if path[0] == "profiles" and len(path) > 2 else None


def at_path(category: str, name: str, document: dict, path: list, key: str, rule: Rule,
            value: Any) -> Case:
    """The document with `value` at `path`, to be refused naming `key`. A grid entry becomes
    its axis' only value: grid arms are named by their values, so an entry such as " joint"
    would name the arm of another ("two points of the grid are both named ..."), and the
    papers' rows (`published`) would name no arm."""
    entry = in_grid(path)
    document = replaced(document, path[:-1] if entry else path, [value] if entry else value)
    if entry:
        document.pop("published", None)
    return Case(category, name, dump(document), profile_of(path), (), dotted(path), "reject",
                key, value, rule.also_named)


def in_grid(path: list) -> bool:
    """An entry of a grid axis, in the study or in a profile."""
    rest = split(path[2]) + path[3:] if path[0] == "profiles" and len(path) > 2 else path
    return rest[:2] == ["arms", "grid"] and len(rest) == 4


def by_set(category: str, name: str, text: str, key: str, rule: Rule, value: Any) -> Case:
    """The study as shipped with `--set key=value`, to be refused naming `key`."""
    setting = f"{key}={flow(value)}"
    return Case(category, name, text.encode(), None, (setting,), setting, "reject", key, value,
                rule.also_named)


# Minimal studies of each space (the quickstart's sizes) in which the limits are tried:
# nothing else in them is near a limit or takes part in a check across keys.
MINIMAL: dict[str, dict] = {
    space: {
        "name": f"limits-{space}",
        "data": {"train": "embedded", "test": ["embedded"], "patch_size": 32,
                 "noise": {"type": "awgn", "sigma": 25}},
        "search_space": {"name": space, "options": options},
        "search": {"epochs": 3, "warmup_epochs": 1, "validate_from_epoch": 1},
    }
    for space, options in (
        ("hinas", {"num_layers": 2, "num_nodes": 2, "width": 4, "stem_channels": 8}),
        ("modnas", {"stages": 1, "levels": 2, "width": 8, "channel_multiple": 4}),
        ("superkernel", {"depth": 1, "width": 8}))
}


def limit_case(key: str, rule: Rule, value: Any) -> Case:
    document = copy.deepcopy(MINIMAL[rule.space])
    context = rule.context(value) if callable(rule.context) else rule.context
    for name, setting in {**context, key: value}.items():
        set_dotted(document, name, setting)
    return Case("at_limit", document["name"], dump(document), None, (), key, "accept", key,
                value)


def limit_cases() -> list[Case]:
    """Every documented limit and choice of the table, each in its minimal study."""
    keyed = [(key, rule) for key, rule in STUDY.items() if "[]" not in key and "*" not in key]
    for space, options in OPTIONS.items():
        keyed += [(f"search_space.options.{name}", replace(rule, space=space))
                  for name, rule in options.items()]
    return [limit_case(key, rule, value) for key, rule in keyed for value in limits(rule)]
