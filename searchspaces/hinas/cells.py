"""HiNAS inner space: mixed op, search cell, derived cell and the DARTS derivation rule
(journal Sec. 3.1, Eqs. 1-3).

Edges are numbered as in `topology.py`. A genotype cell is a list of nodes, each a list
of two `[op_name, input_index]` pairs with the same input numbering.

The search cell computes the same sums in three forms, chosen per cell when it is built
(`form`), with the same modules, so state dicts do not depend on the form:

- "reference": op by op, edge by edge, Eqs. 1-3 as written.
- "fused": edge by edge; each mixed op applies its ops' common activation once and folds
  each op weight w_k into that op's last BatchNorm as a per-channel scale (affine-free
  BatchNorms, the search's). One saved tensor instead of five per edge.
- "stacked" (the default): state by state; the n edges leaving one state are one op each:
  the activation once, the n edges' conv (and dilated conv) kernels stacked into ONE
  C -> n*C convolution and ONE BatchNorm over the n*C channels with the op weights
  folded in; separable convs edge by edge on the shared activation (grouped convolutions
  over the edges ran slower here); skip adds w * s, `none` nothing. At C = 10 (the
  journal's first level) the C -> C convolutions of the edge-by-edge forms run far below
  what a CPU or GPU reaches on wider ones.

Per channel nothing changes (BatchNorm statistics are per channel; each output channel of
a stacked convolution is its edge's own), so the forms agree within float rounding,
running statistics and gradients included (tests/searchspaces/test_hinas_fast_paths.py).
Weights exactly 0 (one-hot sampling) skip their ops: the stacked form then runs edge by
edge, fused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.hinas.batchnorms import batch_norms, scaled_batch_norm
from searchspaces.hinas.operations import OPS, ConvBN, SepConv, Zero
from searchspaces.hinas.topology import add_all, edge_index, num_edges
from searchspaces.layout import grad_like_input

NONE = "none"
CellForm = Literal["reference", "fused", "stacked"]
CELL_FORMS: tuple[str, ...] = ("reference", "fused", "stacked")


# --- reference form ---------------------------------------------------------------------
class MixedOp(nn.Module):
    """sum_k w_k * op_k(x) over all candidate ops (Eq. 1). `none` is never computed (it adds
    exactly zero), nor is an op whose weight is exactly 0. `fused`: with two or more
    active fusable ops, the fused form (`fused_forward`)."""

    def __init__(self, channels: int, primitives: Sequence[str], activation: str,
                 fused: bool = True) -> None:
        super().__init__()
        self.fused = fused
        self.ops = nn.ModuleDict(
            {name: OPS[name](channels, False, activation) for name in primitives}
        )

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, active: Sequence[bool]
    ) -> torch.Tensor:
        fusable = sum(on and is_fusable(op) for op, on in zip(self.ops.values(), active))
        if self.fused and fusable >= 2:
            return self.fused_forward(x, weights, active)
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

    def fused_forward(
        self, x: torch.Tensor, weights: torch.Tensor, active: Sequence[bool]
    ) -> torch.Tensor:
        """The same sum with one shared activation and the weights in the BatchNorms."""
        terms, activated = [], None
        for (name, op), weight, on in zip(self.ops.items(), weights, active):
            if name == NONE or not on:
                continue
            if is_fusable(op):
                if activated is None:
                    activated = op.activation(x)  # the same activation type in every op
                terms.append(scaled_batch_norm(op.norm, op.before_norm(activated), weight))
            else:  # skip and anything else: the reference term
                terms.append(weight * op(x))
        return add_all(terms)


class SearchCell(nn.Module):
    """Supercell: every node sums mixed ops over all earlier states; the output is the
    concat of the N nodes (Eqs. 2-3). `form` picks how the sums run (module docstring).
    `calls` counts forward runs, so tests and benchmarks can measure what cell sharing
    saves."""

    def __init__(self, channels: int, num_nodes: int, primitives: Sequence[str],
                 activation: str, form: CellForm = "stacked") -> None:
        super().__init__()
        if form not in CELL_FORMS:
            raise ValueError(f"cell form {form!r} (known: {', '.join(CELL_FORMS)})")
        self.num_nodes, self.form = num_nodes, form
        self.edges = nn.ModuleList(
            MixedOp(channels, primitives, activation, fused=form != "reference")
            for _ in range(num_edges(num_nodes))
        )
        self.calls = 0
        self.stackable = form == "stacked" and stackable(self.edges)

    def forward(
        self, two_back: torch.Tensor, previous: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        # two_back, previous: (B, C, H, W); weights: (E, K) softmax(alpha)
        self.calls += 1
        active = (weights != 0).tolist()  # one host sync per cell, not per op
        if self.stackable and all(map(all, active)):
            nodes = self.stacked_forward(two_back, previous, weights)
        else:
            nodes = self.edge_forward(two_back, previous, weights, active)
        return torch.cat(nodes, dim=1)  # (B, N*C, H, W)

    def edge_forward(self, two_back: torch.Tensor, previous: torch.Tensor,
                     weights: torch.Tensor, active: list[list[bool]]) -> list[torch.Tensor]:
        """The node states, edge by edge (reference or fused mixed ops)."""
        states = [two_back, previous]
        for node in range(self.num_nodes):
            start = edge_index(node, 0)
            terms = [
                self.edges[start + i](state, weights[start + i], active[start + i])
                for i, state in enumerate(states)
            ]
            states.append(add_all(terms))
        return states[2:]

    # --- stacked form -------------------------------------------------------------------
    def stacked_forward(self, two_back: torch.Tensor, previous: torch.Tensor,
                        weights: torch.Tensor) -> list[torch.Tensor]:
        """The node states, source by source: state s feeds node j when s <= j + 1, edge
        row `edge_index(j, s)`; node j is complete once the states before it have sent
        their terms."""
        states = [two_back, previous]
        pending: list[list[torch.Tensor]] = [[] for _ in range(self.num_nodes)]
        for source in range(self.num_nodes + 1):  # the last node feeds no edge
            if source >= 2:  # one layout fix per node for the gradients of all its terms
                states.append(grad_like_input(add_all(pending[source - 2])))
            targets = range(max(0, source - 1), self.num_nodes)
            rows = [edge_index(node, source) for node in targets]
            terms = source_terms([self.edges[row] for row in rows], states[source],
                                 weights[rows])
            for node, term in zip(targets, terms):
                pending[node].append(term)
        states.append(grad_like_input(add_all(pending[-1])))
        return states[2:]


def source_terms(edges: Sequence[MixedOp], state: torch.Tensor,
                 weights: torch.Tensor) -> list[torch.Tensor]:
    """sum_k w[e, k] op_k^e(state) for each edge e leaving `state`; weights (n, K)."""
    channels = state.shape[1]
    stacked = activated = None
    terms: list[list[torch.Tensor]] = [[] for _ in edges]
    for index, (name, first) in enumerate(edges[0].ops.items()):
        if isinstance(first, Zero):
            continue
        ops = [edge.ops[name] for edge in edges]
        if isinstance(first, nn.Identity):
            for edge_terms, weight in zip(terms, weights[:, index]):
                edge_terms.append(weight * state)
            continue
        if activated is None:
            activated = first.activation(state)  # the same activation type in every op
        if isinstance(first, ConvBN):
            scale = weights[:, index].repeat_interleave(channels)  # (n*C,)
            features = stacked_conv([op.conv for op in ops], activated)  # (B, n*C, H, W)
            term = batch_norms([op.norm for op in ops], features, scale)
            stacked = term if stacked is None else stacked + term
        else:  # separable: n small ops beat grouped convolutions here (measured)
            for edge_terms, op, weight in zip(terms, ops, weights[:, index]):
                edge_terms.append(scaled_batch_norm(op.norm, op.before_norm(activated), weight))
    if stacked is not None:  # split, not slices: backward concatenates in the same layout
        for edge_terms, part in zip(terms, stacked.split(channels, dim=1)):
            edge_terms.insert(0, part)
    return [add_all(edge_terms) if edge_terms else torch.zeros_like(state)
            for edge_terms in terms]


def stacked_conv(convs: Sequence[nn.Conv2d], features: torch.Tensor) -> torch.Tensor:
    """n dense convolutions (no bias) of one input as one, stacked along the outputs."""
    first = convs[0]
    weight = torch.cat([conv.weight for conv in convs])  # (n*C_out, C_in, k, k)
    return F.conv2d(features, weight, None, first.stride, first.padding, first.dilation)


def is_fusable(op: nn.Module) -> bool:
    """Ops that start with the shared activation and end with an affine-free BatchNorm."""
    return isinstance(op, ConvBN | SepConv) and not op.norm.affine


def stackable(edges: Sequence[MixedOp]) -> bool:
    """Cells whose edges hold the same ops, each fusable, skip or none."""
    names = list(edges[0].ops)
    return all(list(edge.ops) == names and all(
        is_fusable(op) or isinstance(op, nn.Identity | Zero) for op in edge.ops.values())
        for edge in edges)


# --- derived cell and derivation --------------------------------------------------------
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
