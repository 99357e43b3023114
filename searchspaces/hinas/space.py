"""The registered "hinas" search space (options in `options.py`): factories, one-hot
fixture, genotype validation.

Genotype `arch` format (JSON data only):

    {
      "cells": [cell, ...],   # one per alpha set: num_layers cells when layerwise, else 1
      "levels": [0, 1, 1],    # width level of each layer (index into width_multipliers)
      "num_nodes": 4,         # N, nodes per cell
      "layerwise": true,      # LWAS: cells[l] is layer l's cell; else cells[0] everywhere
      "residual": true        # ResL: output = input - predicted noise
    }

A cell is a list of N nodes; a node is exactly two `[op_name, input_index]`
pairs with strictly ascending input indices (one canonical form per network).
Inputs of node i: 0 = two-back input, 1 = previous layer, 2 + j = node j < i.
Ops are names from the genotype's primitive list, never "none". Levels start
from the stem at level 0 and move by at most one per layer, so levels[0] is 0
or 1. The number of layers is len(levels).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from searchspaces.genotype import Genotype, require_keys
from searchspaces.hinas.cells import NONE
from searchspaces.hinas.derived import HiNASNetwork
from searchspaces.hinas.operations import OPS
from searchspaces.hinas.options import HiNASOptions
from searchspaces.hinas.supernet import SPACE_NAME, HiNASSupernet
from searchspaces.registry import SearchSpace, register_space

ARCH_KEYS = ("cells", "levels", "num_nodes", "layerwise", "residual")


@register_space
class HiNASSpace(SearchSpace):
    """HiNAS, journal version (Zhang et al., memory-efficient hierarchical NAS)."""

    name = SPACE_NAME
    options_model = HiNASOptions
    default_strategy = "bilevel"

    def build_supernet(self, options: dict[str, Any], in_channels: int) -> HiNASSupernet:
        return HiNASSupernet(self.parse_options(options), in_channels)

    def build_derived(
        self, genotype: Genotype, options: dict[str, Any], in_channels: int
    ) -> nn.Module:
        if genotype.space != SPACE_NAME:
            raise ValueError(f"space: expected {SPACE_NAME!r}, got {genotype.space!r}")
        self.validate_arch(genotype)
        return HiNASNetwork(genotype, self.parse_options(options), in_channels)

    def validate_arch(self, genotype: Genotype) -> None:
        validate_arch(genotype)

    def tiny_options(self) -> dict[str, Any]:
        return {"num_layers": 2, "num_nodes": 2, "width": 4, "stem_channels": 8}

    def set_one_hot(self, supernet: HiNASSupernet) -> Genotype:  # type: ignore[override]
        """Node i of alpha set k takes inputs (k mod (i+1), i+1) with ops cycling through
        the non-none primitives; levels zig-zag 1, 2, 1, ... (clipped to the levels)."""
        options = supernet.options
        ops = [name for name in options.primitives if name != NONE]
        num_sets = supernet.alphas.shape[0]
        cells = [
            [
                [
                    [ops[(node + k) % len(ops)], k % (node + 1)],
                    [ops[(node + k + 1) % len(ops)], node + 1],
                ]
                for node in range(options.num_nodes)
            ]
            for k in range(num_sets)
        ]
        top = len(options.width_multipliers) - 1
        levels = [min(layer % 2 + 1, top) for layer in range(options.num_layers)]
        return supernet.load_arch(cells, levels)


# --- genotype validation ------------------------------------------------------------------
def validate_arch(genotype: Genotype) -> None:
    """Raise ValueError naming the offending field if `genotype` is not a hinas genotype."""
    for name in genotype.primitives:
        if name not in OPS:
            raise ValueError(f"primitives: unknown op {name!r}")
    arch = require_keys(genotype.arch, ARCH_KEYS, "arch")
    num_nodes = _require_int(arch["num_nodes"], "arch.num_nodes", minimum=1)
    for key in ("layerwise", "residual"):
        if not isinstance(arch[key], bool):
            raise ValueError(f"arch.{key}: expected true or false, got {arch[key]!r}")
    levels = _validate_levels(arch["levels"])
    cells = arch["cells"]
    expected = len(levels) if arch["layerwise"] else 1
    if not isinstance(cells, list) or len(cells) != expected:
        raise ValueError(f"arch.cells: expected a list of {expected} cells")
    allowed = {name for name in genotype.primitives if name != NONE}
    for index, cell in enumerate(cells):
        _validate_cell(cell, num_nodes, allowed, f"arch.cells[{index}]")


def _require_int(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{field}: expected an integer >= {minimum}, got {value!r}")
    return value


def _validate_levels(levels: Any) -> list[int]:
    if not isinstance(levels, list) or not levels:
        raise ValueError("arch.levels: expected a non-empty list of width levels")
    previous = 0  # the stem
    for layer, level in enumerate(levels):
        _require_int(level, f"arch.levels[{layer}]", minimum=0)
        if abs(level - previous) > 1:
            raise ValueError(
                f"arch.levels[{layer}]: level {level} jumps by more than one from {previous}"
            )
        previous = level
    return levels


def _validate_cell(cell: Any, num_nodes: int, allowed: set[str], field: str) -> None:
    if not isinstance(cell, list) or len(cell) != num_nodes:
        raise ValueError(f"{field}: expected a list of {num_nodes} nodes")
    for node, pairs in enumerate(cell):
        where = f"{field}[{node}]"
        if not isinstance(pairs, list) or len(pairs) != 2:
            raise ValueError(f"{where}: expected two [op, input] pairs")
        inputs = []
        for slot, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ValueError(f"{where}[{slot}]: expected [op_name, input_index]")
            if pair[0] not in allowed:
                raise ValueError(f"{where}[{slot}]: unknown op {pair[0]!r}")
            inputs.append(_require_int(pair[1], f"{where}[{slot}] input index", minimum=0))
        if inputs[1] >= node + 2:
            raise ValueError(
                f"{where}: input index {inputs[1]} out of range (node {node} has {node + 2} inputs)"
            )
        if inputs[0] >= inputs[1]:
            raise ValueError(f"{where}: input indices must be strictly ascending, got {inputs}")
