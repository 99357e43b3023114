"""A strict, safe YAML reader for study files: what PyYAML's safe loader lets through silently
is an error here.

- a key repeated in one mapping (PyYAML keeps the last one without a word);
- a document that expands (through aliases) to more nodes than a study file needs: an
  "alias bomb" grows exponentially when the study is copied, dumped or validated;
  recursive aliases likewise;
- python/* and other unknown tags (the safe loader already refuses them; the message
  says which tag);
- bytes that are not UTF-8.
Merge keys (`<<: *anchor`) stay allowed: the shipped studies share settings with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_NODES = 100_000  # expanded; the shipped ablations study has about 1,500


class YamlError(ValueError):
    """One line: what is wrong and where (line numbers are 1-based)."""


class StrictLoader(yaml.SafeLoader):
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
