"""HiNAS inner space: mixed op, search cell, derived cell and the DARTS derivation
rule (journal Sec. 3.1, Eqs. 1-3; SPEC 2.2).

Edges are numbered as in `topology.py`. A genotype cell is a list of nodes, each
a list of two `[op_name, input_index]` pairs with the same input numbering.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from searchspaces.hinas import fanout
from searchspaces.hinas.fused import fused_mixed_sum, is_fusable
from searchspaces.hinas.operations import OPS
from searchspaces.hinas.topology import add_all, edge_index, num_edges

NONE = "none"


class MixedOp(nn.Module):
    """sum_k w_k * op_k(x) over all candidate ops (Eq. 1).

    `none` is never computed (it adds exactly zero), and neither is an op whose
    weight is exactly 0 (e.g. single-path sampling with one-hot weights). With two or
    more active conv ops the same sum is computed by `fused_mixed_sum` (one shared
    activation, weights folded into the BatchNorms); `reference` forces op by op."""

    reference = False  # class-wide switch for tests and FLOP counting

    def __init__(self, channels: int, primitives: Sequence[str], activation: str) -> None:
        super().__init__()
        self.ops = nn.ModuleDict(
            {name: OPS[name](channels, False, activation) for name in primitives}
        )

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, active: Sequence[bool]
    ) -> torch.Tensor:
        fusable = sum(on and is_fusable(op) for op, on in zip(self.ops.values(), active))
        if fusable >= 2 and not self.reference:
            return fused_mixed_sum(self.ops, x, weights, active)
        return self.reference_forward(x, weights, active)

    def reference_forward(
        self, x: torch.Tensor, weights: torch.Tensor, active: Sequence[bool]
    ) -> torch.Tensor:
        out = None
        for (name, op), weight, on in zip(self.ops.items(), weights, active):
            if name == NONE or not on:
                continue
            term = weight * op(x)
            out = term if out is None else out + term
        return torch.zeros_like(x) if out is None else out


class SearchCell(nn.Module):
    """Supercell: every node sums mixed ops over all earlier states; the output is
    the concat of the N nodes (Eqs. 2-3). `calls` counts forward runs, so tests and
    benchmarks can measure what cell sharing saves. The edges leaving one state run
    together (`fanout.py`) unless `stack_edges` is off or an op weight is exactly 0."""

    stack_edges = True  # class-wide switch for tests and benchmarks

    def __init__(
        self, channels: int, num_nodes: int, primitives: Sequence[str], activation: str
    ) -> None:
        super().__init__()
        self.num_nodes = num_nodes
        self.edges = nn.ModuleList(
            MixedOp(channels, primitives, activation) for _ in range(num_edges(num_nodes))
        )
        self.calls = 0
        self.stackable = fanout.supports(self.edges)  # edges leaving a state run together

    def forward(
        self, two_back: torch.Tensor, previous: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        # two_back, previous: (B, C, H, W); weights: (E, K) softmax(alpha)
        self.calls += 1
        active = (weights != 0).tolist()  # one host sync per cell, not per op
        stack = self.stack_edges and self.stackable and not MixedOp.reference
        if stack and all(map(all, active)):
            return torch.cat(fanout.cell_forward(  # (B, N*C, H, W)
                self.edges, self.num_nodes, two_back, previous, weights), dim=1)
        states = [two_back, previous]
        for node in range(self.num_nodes):
            start = edge_index(node, 0)
            terms = [
                self.edges[start + i](state, weights[start + i], active[start + i])
                for i, state in enumerate(states)
            ]
            states.append(add_all(terms))
        return torch.cat(states[2:], dim=1)  # (B, N*C, H, W)


class DerivedCell(nn.Module):
    """Discrete cell from a genotype: each node sums its two chosen (op, input) edges."""

    def __init__(self, channels: int, nodes: Sequence[Sequence[Sequence]], activation: str) -> None:
        super().__init__()
        self.inputs = [[int(input_index) for _, input_index in node] for node in nodes]
        self.ops = nn.ModuleList(
            nn.ModuleList(OPS[name](channels, True, activation) for name, _ in node)
            for node in nodes
        )

    def forward(self, two_back: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        states = [two_back, previous]  # (B, C, H, W) each
        for inputs, ops in zip(self.inputs, self.ops):
            states.append(add_all([op(states[i]) for i, op in zip(inputs, ops)]))
        return torch.cat(states[2:], dim=1)  # (B, N*C, H, W)


def derive_cell(weights: torch.Tensor, primitives: Sequence[str], num_nodes: int) -> list:
    """DARTS rule on softmax(alpha) (E, K): per node keep the 2 incoming edges with the
    strongest non-`none` op, each with its argmax non-`none` op. Pairs are listed by
    ascending input index, the canonical order the genotype requires."""
    candidates = [k for k, name in enumerate(primitives) if name != NONE]
    rows = weights.detach()[:, candidates].tolist()
    cell = []
    for node in range(num_nodes):
        start = edge_index(node, 0)
        strengths = [max(rows[start + i]) for i in range(node + 2)]
        kept = sorted(sorted(range(node + 2), key=lambda i: -strengths[i])[:2])
        cell.append([[primitives[candidates[_argmax(rows[start + i])]], i] for i in kept])
    return cell


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)
