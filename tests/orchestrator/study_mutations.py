"""Hypothesis strategies that turn a shipped study into a malformed one, by category.

The verdict of every case is decided here, never by the schema it tests. Seven
categories put a value at a key the oracle's hand-written table covers
(`fuzz_oracle.py`, applied by `fuzz_cases.py`): a wrong type, a number or boolean
written as a string, a number past a documented limit, NaN or infinity, a list too short
or too long, a name outside its documented choices, and any of these through `--set`;
each must be refused with one line naming that key. `at_limit` tries the documented
limits and choices themselves, which must be accepted; `table_cases` lists every one of
these values once, for a run that does not sample. The other categories are written by
hand and need no verdict per key: broken YAML, bad bytes, tags, alias bombs, duplicate
keys, unknown keys (in the sections the table names), missing required keys, bad `--set`
paths and contradictions across keys.

Text mutations work on the file as shipped (anchors and merge keys included);
structural ones on its parsed document, dumped back with every string quoted (so
that "yes" or "1e-3" stay strings).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from orchestrator.study.yamlfile import load_text
from tests.orchestrator.fuzz_cases import (
    DOTTED_MAPS,
    MINIMAL,
    NON_FINITE,
    Case,
    at_path,
    bad_lengths,
    bad_names,
    beyond,
    by_set,
    closed,
    dotted,
    dump,
    limit_cases,
    nodes,
    normalize,
    positions,
    profile_of,
    refused,
    replaced,
    space_name,
    strings,
    wrong_types,
)
from tests.orchestrator.fuzz_oracle import OPTIONS, STUDY, rule_for

STUDIES = Path(__file__).resolve().parents[2] / "studies"
SEARCHED = ("hinas", "modnas", "superkernel")  # docs/search-spaces.md: dncnn searches nothing
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


def shipped() -> list[Base]:
    bases = []
    for path in sorted(STUDIES.glob("*.yaml")):
        text = path.read_text()
        bases.append(Base(path.stem, text, load_text(text)))
    return bases


# --- the oracle's categories: a refused value at a covered key -----------------------------
VALUES: dict[str, Callable] = {
    "wrong_type": wrong_types, "yes_on_string": strings, "out_of_range": beyond,
    "nan_inf": lambda rule: NON_FINITE if rule.number else [], "list_length": bad_lengths,
    "bad_name": bad_names,
}


POSITIONS: dict[str, list] = {}


def covered(base: Base) -> list:
    """The base's positions the table covers (computed once per study)."""
    if base.name not in POSITIONS:
        POSITIONS[base.name] = positions(base.document)
    return POSITIONS[base.name]


def at_key(category: str):
    values = VALUES[category]

    @st.composite
    def strategy(draw, base: Base) -> Case:
        path, key, rule = draw(st.sampled_from([(p, k, r) for p, k, r in covered(base)
                                                if values(r)]))
        return at_path(category, base.name, base.document, path, key, rule,
                       draw(st.sampled_from(values(rule))))

    strategy.__name__ = category
    return strategy


def settable(base: Base) -> list[str]:
    """The table's keys a `--set` reaches (no list entries), the study's space's options."""
    space = space_name(base.document, ["search_space"])
    return [key for key in STUDY if "[]" not in key and "*" not in key] + \
        [f"search_space.options.{name}" for name in OPTIONS.get(space, {})]


@st.composite
def set_value(draw, base: Base) -> Case:
    key = draw(st.sampled_from(settable(base)))
    rule = rule_for(key, space_name(base.document, ["search_space"]))
    return by_set("set_value", base.name, base.text, key, rule,
                  draw(st.sampled_from(refused(rule))))


@st.composite
def at_limit(draw, base: Base) -> Case:  # the base is not used: limits have their own studies
    return draw(st.sampled_from(LIMITS))


# --- categories that need no table ---------------------------------------------------------
@st.composite
def unknown_key(draw, base: Base) -> Case:
    def extensible(path, value):
        key = dotted(normalize(path))
        return isinstance(value, dict) and (path[:1] == ["profiles"] and len(path) == 2 or
                                            key in DOTTED_MAPS or
                                            closed(key, space_name(base.document, path)))
    path = draw(st.sampled_from([p for p, v in nodes(base.document) if extensible(p, v)]))
    key = dotted(normalize(path))
    entry = {"arms.grid": ("search.bogus_key", [1]),
             "tune.space": ("search.bogus_key", {"type": "int", "low": 1, "high": 2}),
             }.get(key, ("search.bogus_key" if key in DOTTED_MAPS or path[:1] == ["profiles"]
                         and len(path) == 2 else "bogus_key", 2))
    return structural("unknown_key", base, [*path, entry[0]], entry[1])


@st.composite
def missing_key(draw, base: Base) -> Case:
    def required(path):  # study-keys.md: "required"; an awgn noise needs a sigma, jpeg a quality
        keys = normalize(path)
        return keys in (["name"], ["search_space"], ["search_space", "name"]) and \
            len(path) == len(keys) or keys[:2] == ["arms", "named"] and keys[-1:] == ["name"] \
            or keys[:2] == ["tune", "space"] and keys[-1:] == ["type"] \
            or keys[-2:] in (["noise", "sigma"], ["noise", "quality"]) and len(path) > 1
    paths = [p for p, _ in nodes(base.document) if required(p)]
    referenced = {arm.get("group") for arm in base.document.get("arms", {}).get("named", [])}
    paths += [["groups", g] for g in base.document.get("groups", {}) if g in referenced]
    return structural("missing_key", base, draw(st.sampled_from(paths)), None, remove=True)


def structural(category: str, base: Base, path: list, value: Any,
               remove: bool = False) -> Case:
    data = dump(replaced(base.document, path, value, remove))
    return Case(category, base.name, data, profile_of(path), (), ".".join(map(str, path)))


def cross_rules(base: Base) -> list[tuple[list, Any]]:
    """(path, value) pairs that contradict another key of the study (studies.md, study-keys.md
    comments: "< epochs", "<= lr", "[low, high]", "at most search.epochs", ...)."""
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
    if space in SEARCHED:
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
    path, _, _ = draw(st.sampled_from(covered(base)))
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


LIMITS = limit_cases()
CATEGORIES = {strategy.__name__: strategy for strategy in (
    *map(at_key, VALUES), set_value, at_limit, unknown_key, missing_key, cross_field,
    broken_yaml, duplicate_key, non_utf8, tag, alias_bomb, bad_set_path)}


@st.composite
def malformed(draw, bases: list[Base]) -> Case:
    base = draw(st.sampled_from(bases))
    return draw(CATEGORIES[draw(st.sampled_from(sorted(CATEGORIES)))](base))


def table_cases() -> list[Case]:
    """Every value the table refuses at every key a `--set` reaches, on the minimal study of
    each space (study keys on the first), then every documented limit: a bound widened or a
    type loosened anywhere in the table fails one of them, whatever the sampling draws."""
    cases, keys = [], [key for key in STUDY if "[]" not in key and "*" not in key]
    for space, document in MINIMAL.items():
        text = dump(document).decode()
        for key in keys + [f"search_space.options.{name}" for name in OPTIONS[space]]:
            rule = rule_for(key, space)
            cases += [by_set("table", document["name"], text, key, rule, value)
                      for value in refused(rule)]
        keys = []
    return cases + LIMITS


def family_cases(key: str, base: Base) -> list[Case]:
    """Every case of one key, in order: each value the table refuses at each of the key's
    positions in `base` (its list entries included) and through `--set`, then the key's
    documented limits (to be accepted)."""
    cases = [at_path(category, base.name, base.document, path, found, rule, value)
             for path, found, rule in covered(base) if found in (key, f"{key}.[]")
             for category, values in VALUES.items() for value in values(rule)]
    rule = rule_for(key, space_name(base.document, ["search_space"]))
    cases += [by_set("set_value", base.name, base.text, key, rule, value)
              for value in refused(rule)]
    return cases + [case for case in LIMITS if case.key == key]
