"""A HiNAS search cell computed source by source: every edge that leaves one state runs
together (journal Eqs. 1-3, same sums as edge by edge).

A state s (the two inputs, then each node) feeds one mixed op per later node, and
every one of those mixed ops applies the same candidate ops, with their own
weights, to the same input. Computed edge by edge, a cell of width C runs many
small C -> C convolutions (C = 10 at the journal's first level), far below the
rate a CPU or GPU reaches on wider ones, and one BatchNorm, activation and
kernel launch per op and edge. Here the n edges leaving s are one op each:

- the activation of s once (every conv op starts with it);
- conv and dilated conv: ONE C -> n*C convolution with the n edges' kernels
  stacked, then ONE BatchNorm over the n*C channels;
- each edge's op weight w_k folded into that BatchNorm as a per-channel scale,
  as in `fused.py` (affine-free BatchNorms only);
- separable conv: edge by edge on the shared activation (`fused.sep_conv_tail`):
  grouped convolutions over the n edges ran slower than n small ones here;
- skip adds w_skip * s per edge; `none` adds nothing.

Per channel nothing changes (BatchNorm statistics are per channel; each
output channel of a stacked convolution is its edge's own), so the result
equals the edge-by-edge sum within float rounding, parameters, running
statistics and gradients included (tests/searchspaces/test_hinas_fast_paths.py).
The modules stay those of each edge's `MixedOp`: state dicts do not change.
Used when every op of the cell is active (weights exactly 0, e.g. one-hot
sampling, take the edge-by-edge path, which skips those ops).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.hinas.fused import batch_norms, sep_conv_tail
from searchspaces.hinas.operations import ConvBN, SepConv, Zero
from searchspaces.hinas.topology import add_all, edge_index
from searchspaces.layout import grad_like_input

STACKABLE = (ConvBN, SepConv)


def supports(edges: Sequence[nn.Module]) -> bool:
    """Cells whose edges hold the same ops, each stackable, skip or none."""
    names = list(edges[0].ops)
    for edge in edges:
        if list(edge.ops) != names:
            return False
        for op in edge.ops.values():
            stackable = isinstance(op, STACKABLE) and not op[-1].affine
            if not (stackable or isinstance(op, nn.Identity | Zero)):
                return False
    return True


def stacked_conv(convs: Sequence[nn.Conv2d], features: torch.Tensor) -> torch.Tensor:
    """n dense convolutions (no bias) of one input as one, stacked along the outputs."""
    first = convs[0]
    weight = torch.cat([conv.weight for conv in convs])  # (n*C_out, C_in, k, k)
    return F.conv2d(features, weight, None, first.stride, first.padding, first.dilation)


def conv_bn_stack(ops: Sequence[ConvBN], activated: torch.Tensor,
                  scale: torch.Tensor) -> torch.Tensor:
    """n ConvBN ops on one activated input: (B, n*C, H, W)."""
    features = stacked_conv([op[1] for op in ops], activated)
    return batch_norms([op[2] for op in ops], features, scale)


def source_terms(edges: Sequence[nn.Module], state: torch.Tensor,
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
            activated = first[0](state)  # the same activation module type in every op
        if isinstance(first, ConvBN):
            scale = weights[:, index].repeat_interleave(channels)  # (n*C,)
            term = conv_bn_stack(ops, activated, scale)  # (B, n*C, H, W)
            stacked = term if stacked is None else stacked + term
        else:  # separable: n small grouped-free ops beat grouped convolutions here (measured)
            for edge_terms, op, weight in zip(terms, ops, weights[:, index]):
                edge_terms.append(sep_conv_tail(op, activated, weight))
    if stacked is not None:  # split, not slices: backward concatenates in the same layout
        for edge_terms, part in zip(terms, stacked.split(channels, dim=1)):
            edge_terms.insert(0, part)
    return [add_all(edge_terms) if edge_terms else torch.zeros_like(state)
            for edge_terms in terms]


def cell_forward(edges: Sequence[nn.Module], num_nodes: int, two_back: torch.Tensor,
                 previous: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor]:
    """The cell's node states, source by source: state s feeds node j when s <= j + 1,
    edge row `edge_index(j, s)` of `weights` (E, K); node j is complete once the states
    before it have sent their terms. Returns the N node states."""
    states = [two_back, previous]
    pending: list[list[torch.Tensor]] = [[] for _ in range(num_nodes)]
    for source in range(num_nodes + 1):  # the last node feeds no edge
        if source >= 2:  # one layout fix per node for the gradients of all its terms
            states.append(grad_like_input(add_all(pending[source - 2])))
        targets = range(max(0, source - 1), num_nodes)
        rows = [edge_index(node, source) for node in targets]
        terms = source_terms([edges[row] for row in rows], states[source], weights[rows])
        for node, term in zip(targets, terms):
            pending[node].append(term)
    states.append(grad_like_input(add_all(pending[-1])))
    return states[2:]
