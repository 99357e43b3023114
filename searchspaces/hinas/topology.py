"""Edge numbering of a HiNAS cell and the sum of its terms (journal Sec. 3.1).

Edges are numbered node by node: node i has one edge per earlier state, in the
order [two-back input, previous input, node 0, ..., node i-1], so node i's
edges start at `edge_index(i, 0)`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def num_edges(num_nodes: int) -> int:
    """Edges of a cell with `num_nodes` nodes: node i has 2 + i inputs."""
    return sum(2 + node for node in range(num_nodes))


def edge_index(node: int, input_index: int) -> int:
    """Row of the alpha matrix for the edge `input_index -> node`."""
    return sum(2 + earlier for earlier in range(node)) + input_index


def add_all(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum without stacking (no extra (n, ...) buffer: memory is what cell sharing saves)."""
    total = tensors[0]
    for tensor in tensors[1:]:
        total = total + tensor
    return total
