"""Fast forward of a HiNAS mixed op (journal Eq. 1) that computes the same sum with less work.

`sum_k w_k * op_k(x)` computed op by op repeats work that the candidate ops
share. Every conv op (conv, sep and dil) starts with the same activation of the
same input, so the fused path computes `act(x)` once per edge instead of five
times (and keeps one saved tensor for backward instead of five). Every conv op
ends with a BatchNorm without affine parameters (`affine=False` in the
search), so `w_k * BN_k(y)` equals BN_k(y) with a per-channel scale of `w_k`:
the op weight is folded into that BatchNorm, which removes one multiply per op
forward and backward and the tensor it saves. The maths is unchanged (equal
within float rounding; tests/searchspaces/test_hinas_fast_paths.py compares it with
the op-by-op reference), and the modules, parameters and running statistics
are the ones of `MixedOp.ops`, so state dicts do not change.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.hinas.operations import ConvBN, SepConv
from searchspaces.layout import grad_like_input

NONE, SKIP = "none", "skip"


def batch_norms(norms: Sequence[nn.BatchNorm2d], features: torch.Tensor,
                scale: torch.Tensor | None) -> torch.Tensor:
    """The affine-free BatchNorms `norms` over their stacked channels (n*C, one norm: C),
    times `scale` (n*C,) when given, as one op. Follows `nn.BatchNorm2d.forward` for each
    of them (running statistics, momentum, batch count)."""
    first = norms[0]
    momentum = 0.0 if first.momentum is None else first.momentum
    if first.training and first.track_running_stats:
        for norm in norms:
            norm.num_batches_tracked.add_(1)
        if first.momentum is None:
            momentum = 1.0 / float(first.num_batches_tracked)
    tracked, single = first.running_mean is not None, len(norms) == 1
    mean = var = None
    if tracked:  # one norm updates its buffers in place; stacked ones are copied back
        mean = first.running_mean if single else torch.cat([n.running_mean for n in norms])
        var = first.running_var if single else torch.cat([n.running_var for n in norms])
    use_batch = first.training or not tracked
    out = F.batch_norm(features, mean, var, scale, None, use_batch, momentum, first.eps)
    if tracked and use_batch and not single:
        with torch.no_grad():
            for norm, new_mean, new_var in zip(norms, mean.chunk(len(norms)),
                                               var.chunk(len(norms))):
                norm.running_mean.copy_(new_mean)
                norm.running_var.copy_(new_var)
    return grad_like_input(out)  # a term of a node: its gradient is a slice of the cell's


def scaled_batch_norm(norm: nn.BatchNorm2d, features: torch.Tensor,
                      weight: torch.Tensor) -> torch.Tensor:
    """`weight * norm(features)` for a BatchNorm without affine parameters, as one op."""
    # (C,) all equal to the op weight. Contiguous: torch 2.13's CPU BatchNorm backward for
    # NHWC input and gradient reads a stride-0 (expanded) weight wrongly (measured: garbage).
    scale = weight.expand(features.shape[1]).contiguous()
    return batch_norms([norm], features, scale)


def conv_bn_tail(op: ConvBN, activated: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """ConvBN after its activation: conv, then the weighted BatchNorm."""
    _, conv, norm = op
    return scaled_batch_norm(norm, conv(activated), weight)


def sep_conv_tail(op: SepConv, activated: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """SepConv after its first activation; its last BatchNorm carries the weight."""
    hidden = activated
    for layer in list(op)[1:-1]:
        hidden = layer(hidden)
    return scaled_batch_norm(op[-1], hidden, weight)


def is_fusable(op: nn.Module) -> bool:
    """Ops that start with the shared activation and end with an affine-free BatchNorm."""
    return isinstance(op, ConvBN | SepConv) and not op[-1].affine


def fused_mixed_sum(ops: nn.ModuleDict, x: torch.Tensor, weights: torch.Tensor,
                    active: Sequence[bool]) -> torch.Tensor:
    """sum_k w_k * op_k(x) over the active ops with one shared activation (Eq. 1)."""
    terms, activated = [], None
    for (name, op), weight, on in zip(ops.items(), weights, active):
        if name == NONE or not on:
            continue
        if is_fusable(op):
            if activated is None:
                activated = op[0](x)  # the same activation module type in every op
            tail = conv_bn_tail if isinstance(op, ConvBN) else sep_conv_tail
            terms.append(tail(op, activated, weight))
        else:  # skip and anything else: the reference term
            terms.append(weight * op(x))
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
