"""Hypothesis strategies that turn a shipped study into a malformed one, by category.

Text mutations work on the file as shipped (anchors and merge keys included);
structural ones on its parsed document, dumped back with every string quoted (so
that "yes" or "1e-3" stay strings). Every mutation is one the contract refuses: a
number beyond its documented bound (or beyond any bound: 1e30), a type that no
member of the field's union takes, a name outside its choices.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from orchestrator.study.yamlfile import load_text
from searchspaces.registry import get_space
from tests.orchestrator.study_schema_walk import normalize, slot_at

STUDIES = Path(__file__).resolve().parents[2] / "studies"
ALLOWED_EMPTY = (["arms", "named"], ["tune", "start_from"], ["baselines"])
NAMED = (["search_space", "name"], ["data", "train"], ["tune", "metric"], ["arms", "group"])
WRONG = {"str": "abc", "int": 12345, "float": 0.5, "bool": True, "list": [1, 2],
         "dict": {"x": 1}}
STRINGS = {"bool": ["yes", "on", "no", "off", "True", "1", "y"],
           "number": ["3", "1e-3", "0.5", "12", "inf", "1_000"]}
TAGS = ["!!python/object/apply:os.system ['true']", "!!python/name:builtins.print",
        "!!python/object/new:collections.OrderedDict []", "!!python/tuple [1, 2]",
        "!custom 3", "!!binary aGk=", "!!set {a: null}", "!!timestamp 2024-01-01"]
BROKEN = ["]]] {{{", "key: [unclosed", "\tsearch: {epochs: 3}", "- : -: {", "? [",
          'name: "unterminated', "  : bad", "&anchor *alias: x"]
BAD_BYTES = [b"\xff", b"\xfe\xfe", b"\xc3\x28", b"\xe9", b"\x80abc"]
BAD_SETS = ["search.epohcs=3", "search.epochs.deep=1", "=3", "search", "data.test.0=x",
            "search..epochs=1", "nosuch=1", "search_space.options.bogus=1", "name=[",
            "search.epochs=yes", "search.epochs='3'", "data.augment=on", "seeds=[]",
            "search.epochs=.nan", "tune.space.search.epochs={type: int}",
            "search.epochs=!!python/object/apply:os.system [ls]", "data.noise.sigma=-1",
            "search=3", "arms.grid.search.epochs=[]", "resources.search.gpu=1e-9"]


@dataclass(frozen=True)
class Base:
    name: str  # file stem
    text: str
    document: dict

    def __repr__(self) -> str:
        return f"Base({self.name})"


@dataclass(frozen=True)
class Case:
    category: str
    study: str
    data: bytes
    profile: str | None = None
    assignments: tuple[str, ...] = ()
    where: str = ""  # the mutated path, for the report of a failing example

    def __repr__(self) -> str:
        return f"Case({self.category}, {self.study}, {self.where!r}, profile={self.profile})"


def shipped() -> list[Base]:
    bases = []
    for path in sorted(STUDIES.glob("*.yaml")):
        text = path.read_text()
        bases.append(Base(path.stem, text, load_text(text)))
    return bases


class Quoted(yaml.SafeDumper):
    """Every string double-quoted: read back as a string, whatever it looks like."""


Quoted.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style='"'))


def dump(document: Any) -> bytes:
    return yaml.dump(document, Dumper=Quoted, sort_keys=False, allow_unicode=True).encode()


def nodes(tree: Any, path: tuple = ()) -> list[tuple[list, Any]]:
    found = [(list(path), tree)] if path else []
    items = tree.items() if isinstance(tree, dict) else \
        enumerate(tree) if isinstance(tree, list) else []
    for key, value in items:
        found += nodes(value, (*path, key))
    return found


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


def structural(category: str, base: Base, path: list, value: Any,
               remove: bool = False) -> Case:
    data = dump(replaced(base.document, path, value, remove))
    return Case(category, base.name, data, profile_of(path), (), ".".join(map(str, path)))


# --- one strategy per category; each returns a Case ---------------------------------------
def slots(base: Base, want) -> list[tuple[list, Any, Any]]:
    found = []
    for path, value in nodes(base.document):
        slot = slot_at(base.document, path)
        if not {"unknown", "any"} & slot.kinds and want(slot, value, path):
            found.append((path, value, slot))
    return found


def numeric(slot) -> bool:
    return bool({"int", "float"} & slot.kinds) and not {"str", "bool"} & slot.kinds


@st.composite
def wrong_type(draw, base: Base) -> Case:
    path, _, slot = draw(st.sampled_from(slots(base, lambda s, v, p: True)))
    kinds = [kind for kind in WRONG if kind not in slot.kinds]
    return structural("wrong_type", base, path, WRONG[draw(st.sampled_from(kinds))])


@st.composite
def yes_on_string(draw, base: Base) -> Case:
    path, _, slot = draw(st.sampled_from(slots(
        base, lambda s, v, p: "str" not in s.kinds and ("bool" in s.kinds or numeric(s)))))
    texts = STRINGS["bool" if "bool" in slot.kinds else "number"]
    return structural("yes_on_string", base, path, draw(st.sampled_from(texts)))


@st.composite
def out_of_range(draw, base: Base) -> Case:
    path, _, slot = draw(st.sampled_from(slots(base, lambda s, v, p: numeric(s))))
    whole = "float" not in slot.kinds
    beyond = [10**30 if whole else 1e30, -(10**30) if whole else -1e30]
    if slot.lower is not None:
        beyond.append(slot.lower - max(1, abs(slot.lower)))
    if slot.upper is not None:
        beyond.append(slot.upper + max(1, abs(slot.upper)))
    value = draw(st.sampled_from(beyond))
    return structural("out_of_range", base, path, int(value) if whole else float(value))


@st.composite
def nan_inf(draw, base: Base) -> Case:
    path, _, _ = draw(st.sampled_from(slots(base, lambda s, v, p: numeric(s))))
    return structural("nan_inf", base, path, draw(st.sampled_from([math.nan, math.inf,
                                                                     -math.inf])))


@st.composite
def empty_list(draw, base: Base) -> Case:
    lists = [path for path, value in nodes(base.document)
             if isinstance(value, list) and normalize(path)[-2:] not in ALLOWED_EMPTY
             and slot_at(base.document, path).kinds != {"unknown"}]
    return structural("empty_list", base, draw(st.sampled_from(lists)), [])


@st.composite
def bad_enum(draw, base: Base) -> Case:
    def named(slot, value, path):
        keys = normalize(path)
        return (bool(slot.literals) and "str" in slot.kinds) or keys in NAMED or \
            keys[:2] == ["data", "test"] and len(keys) == 3 or keys[-1:] == ["group"] or \
            keys[-1:] == ["metric"]
    path, _, _ = draw(st.sampled_from(slots(base, named)))
    return structural("bad_enum", base, path, draw(st.sampled_from(["bogus", "Adam", ""])))


@st.composite
def unknown_key(draw, base: Base) -> Case:
    def strict(path, value):
        keys = normalize(path)
        if not isinstance(value, dict) or path[:1] == ["groups"] and len(path) == 1:
            return False
        return slot_at(base.document, path).model is not None or keys in (
            ["arms", "grid"], ["tune", "space"], ["retrain", "scale_options"]) or \
            path[:1] == ["profiles"] and len(path) == 2 or keys[-1:] == ["set"]
    path = draw(st.sampled_from([p for p, v in nodes(base.document) if strict(p, v)]))
    keys, node = normalize(path), base.document
    for part in path:
        node = node[part]
    entry = {("arms", "grid"): ("search.bogus_key", [1]),
             ("tune", "space"): ("search.bogus_key", {"type": "int", "low": 1, "high": 2}),
             }.get(tuple(keys), ("search.bogus_key" if keys[-1:] == ["set"] or
                                 path[:1] == ["profiles"] and len(path) == 2
                                 else "bogus_key", 2))
    return structural("unknown_key", base, [*path, entry[0]], entry[1])


@st.composite
def missing_key(draw, base: Base) -> Case:
    def required(path, value):
        keys = normalize(path)
        return keys in (["name"], ["search_space"], ["search_space", "name"]) and \
            len(path) == len(keys) or keys[:2] == ["arms", "named"] and keys[-1:] == ["name"] \
            or keys[:2] == ["tune", "space"] and keys[-1:] == ["type"] \
            or keys[-2:] in (["noise", "sigma"], ["noise", "quality"]) and len(path) > 1
    paths = [p for p, v in nodes(base.document) if required(p, v)]
    referenced = {arm.get("group") for arm in base.document.get("arms", {}).get("named", [])}
    paths += [["groups", g] for g in base.document.get("groups", {}) if g in referenced]
    return structural("missing_key", base, draw(st.sampled_from(paths)), None, remove=True)


def cross_rules(base: Base) -> list[tuple[list, Any]]:
    """(path, value) pairs that contradict another field of the study."""
    doc, search = base.document, base.document.get("search", {})
    space, options = doc["search_space"]["name"], doc["search_space"].get("options", {})
    epochs = search.get("epochs", 100)
    rules = [(["search", "validate_from_epoch"], epochs),
             (["search", "weight_optimizer", "lr_min"], 0.05 + 2 * search.get(
                 "weight_optimizer", {}).get("lr", 0.025)),
             (["data", "noise"], {"type": "awgn", "sigma_range": [50, 10]}),
             (["data", "noise"], {"type": "jpeg", "sigma": 25}),
             (["tune", "scheduler"], {"grace_period": epochs + 1}),
             (["retrain", "test_keys"], ["sigma999"]),
             (["arms", "named"], [{"name": "x", "genotype": "genotypes/dncnn-17.json",
                                   "retrain": False}]),
             (["arms", "named"], [{"name": "twice"}, {"name": "twice"}]),
             (["arms", "grid"], {f"search.{key}": list(range(1, 11)) for key in
                                 ("epochs", "batch_size", "steps_per_epoch", "patience")}),
             (["tune", "space"], {"search.loss.ssim_lambda": {"type": "float", "low": 1.0,
                                                              "high": 0.5}}),
             (["tune", "space"], {"search.weight_optimizer.lr": {"type": "float", "low": 0,
                                                                 "high": 1, "log": True}}),
             (["tune", "space"], {"search.batch_size": {"type": "int", "low": 1.5, "high": 4}}),
             (["resources", "search", "gpu"], 1e-9)]
    if get_space(space).searchable:
        rules.append((["search", "warmup_epochs"], epochs))
    if space in ("modnas", "superkernel"):
        rules.append((["data", "patch_size"], 36))
    if space == "hinas":
        rules.append((["retrain", "scale_options"], {"width": 0.01}))
        rules.append((["retrain", "scale_options"], {"residual": 2}))
    if space == "superkernel":
        start = options.get("temperature", {}).get("start", 1)
        rules.append((["search_space", "options", "temperature", "end"], start * 2))
    if space == "modnas":
        rules.append((["search_space", "options", "channel_multiple"], options["width"] + 8))
        rules.append((["search_space", "options", "unfolding"], False))
    return rules


@st.composite
def cross_field(draw, base: Base) -> Case:
    path, value = draw(st.sampled_from(cross_rules(base)))
    document = copy.deepcopy(base.document)
    node = document
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    if path == ["tune", "space"]:
        document["tune"].pop("start_from", None)
    if path[:2] == ["retrain", "scale_options"]:  # not overridden back to a valid width
        document["retrain"].pop("space_options", None)
    return Case("cross_field", base.name, dump(document), None, (), ".".join(path))


def lines_of(base: Base) -> list[str]:
    return base.text.splitlines(keepends=True)


@st.composite
def broken_yaml(draw, base: Base) -> Case:
    lines = lines_of(base)
    at = draw(st.integers(0, len(lines)))
    text = "".join(lines[:at]) + draw(st.sampled_from(BROKEN)) + "\n" + "".join(lines[at:])
    return Case("broken_yaml", base.name, text.encode(), where=f"line {at + 1}")


def duplicable(line: str) -> bool:
    body = line.split("#")[0].strip()
    balanced = all(body.count(a) == body.count(b) for a, b in ("{}", "[]"))
    return ":" in body and not body.startswith(("-", "#")) and balanced and \
        body.split(":")[0].replace("_", "").replace(".", "").isalnum()


@st.composite
def duplicate_key(draw, base: Base) -> Case:
    lines = lines_of(base)
    at = draw(st.sampled_from([i for i, line in enumerate(lines) if duplicable(line)]))
    text = "".join(lines[: at + 1]) + lines[at] + "".join(lines[at + 1:])
    return Case("duplicate_key", base.name, text.encode(), where=f"line {at + 1}")


@st.composite
def non_utf8(draw, base: Base) -> Case:
    data = base.text.encode()
    at = draw(st.integers(0, len(data)))
    return Case("non_utf8", base.name, data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:])


@st.composite
def tag(draw, base: Base) -> Case:
    path, _, _ = draw(st.sampled_from(slots(base, lambda s, v, p: not isinstance(v, dict))))
    case = structural("tag", base, path, "@@TAG@@")
    data = case.data.replace(b'"@@TAG@@"', draw(st.sampled_from(TAGS)).encode())
    return Case("tag", base.name, data, case.profile, (), case.where)


@st.composite
def alias_bomb(draw, base: Base) -> Case:
    width = draw(st.integers(10, 30))
    lines = ["bomb0: &b0 [1, 2]"] + [f"bomb{i}: &b{i} [{', '.join([f'*b{i - 1}'] * width)}]"
                                     for i in range(1, 7)]
    bomb = draw(st.sampled_from(["\n".join(lines), "loop: &loop [1, *loop]"]))
    return Case("alias_bomb", base.name, (base.text + "\n" + bomb + "\n").encode())


@st.composite
def bad_set_path(draw, base: Base) -> Case:
    setting = draw(st.sampled_from(BAD_SETS))
    return Case("bad_set_path", base.name, base.text.encode(), None, (setting,), setting)


CATEGORIES = {strategy.__name__: strategy for strategy in (
    wrong_type, yes_on_string, out_of_range, nan_inf, empty_list, bad_enum, unknown_key,
    missing_key, cross_field, broken_yaml, duplicate_key, non_utf8, tag, alias_bomb,
    bad_set_path)}


@st.composite
def malformed(draw, bases: list[Base]) -> Case:
    base = draw(st.sampled_from(bases))
    return draw(CATEGORIES[draw(st.sampled_from(sorted(CATEGORIES)))](base))
