"""A strict, safe YAML reader for study files: what PyYAML's safe loader lets through silently
is an error here.

- a key repeated in one mapping (PyYAML keeps the last one without a word);
- a document that expands (through aliases) to more nodes than a study file needs: an
  "alias bomb" grows exponentially when the study is copied, dumped or validated;
  recursive aliases likewise;
- python/* and other unknown tags (the safe loader already refuses them; the message
  says which tag), and the safe tags whose values JSON has no type for (`!!binary`,
  `!!set`, `!!omap`, `!!pairs`, `!!timestamp`): a study is plain data;
- bytes that are not UTF-8;
- YAML 1.1's implicit types: scalars are typed as YAML 1.2 (core schema) types them, so
  `yes`, `on`, `no`, `off` stay strings (the schema then refuses them where a boolean is
  due, instead of reading a boolean the author may not have meant), `1e-3` is a number,
  `010` is ten, `1:30` and `2024-01-01` are strings.
Merge keys (`<<: *anchor`) stay allowed: the shipped studies share settings with them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

MAX_NODES = 100_000  # expanded; the shipped ablations study has about 1,500
# libyaml's parser when PyYAML was built with it (ten times faster), the same rules either way
BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(ValueError):
    """One line: what is wrong and where (line numbers are 1-based)."""


# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution), first matches first
CORE_SCALARS = (
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    ("float", r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)", "-+.0123456789"),
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
)
YAML11_TYPES = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "null",
                                                           "timestamp")}


class StrictLoader(BASE_LOADER):
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in YAML11_TYPES]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_yaml_bool(self, node):
        return self.construct_scalar(node).lower() == "true"

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node)
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        return int(text[2:] if base != 10 else text, base)

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            if isinstance(key, (list, dict)):
                raise YamlError(f"a mapping key is a collection (line {line})")
            if key in seen:
                raise YamlError(f"key '{key}' appears twice in one mapping (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


for _name, _pattern, _first in CORE_SCALARS:
    StrictLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_name}",
                                       re.compile(f"^(?:{_pattern})$"), list(_first))
StrictLoader.add_constructor("tag:yaml.org,2002:bool", StrictLoader.construct_yaml_bool)
StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)


def refuse_tag(loader: StrictLoader, node: yaml.Node):
    raise yaml.constructor.ConstructorError(
        None, None, f"the tag {node.tag!r} is not plain data", node.start_mark)


for _name in ("binary", "set", "omap", "pairs", "timestamp"):
    StrictLoader.add_constructor(f"tag:yaml.org,2002:{_name}", refuse_tag)


def expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes the document has once every alias is expanded (memoised per node)."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_nodes:
        raise YamlError(f"an alias refers to itself (line {node.start_mark.line + 1})")
    open_nodes.add(id(node))
    children: list = []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    sizes[id(node)] = 1 + sum(expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(id(node))
    return sizes[id(node)]


def construct(text: str) -> Any:
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node, {}, set()) > MAX_NODES:
            raise YamlError(f"expands to more than {MAX_NODES:,} nodes through its aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_text(text: str) -> Any:
    try:
        return construct(text)
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark
        raise YamlError(f"{error.problem} (line {mark.line + 1})" if mark else
                        str(error.problem)) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise YamlError(f"not valid YAML{where}") from None
    except RecursionError:
        raise YamlError("nested too deeply") from None


def load_file(path: Path) -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise YamlError(f"not UTF-8 text (byte {error.start})") from None
    return load_text(text)
